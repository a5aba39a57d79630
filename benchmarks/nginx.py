"""(n) An nginx ``proxy_cache`` baseline, measured in the same run.

nginx (Debian's, ``scripts/nginx.sh``) with ``proxy_cache`` on its own config and cache
folder: in front of the simulator for the drop-in whole-site pages (warm, identity and
gzip), and in front of tsgate for the chart of (a) (nginx serving tsgate's bytes from its
cache). Skipped with a note when nginx is not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks import procs
from benchmarks.chart import CHART_HEADERS
from benchmarks.context import MS_PER_DAY, Bench, chart_params, fmt_ms, fmt_s, iso
from benchmarks.dropin import page_through
from benchmarks.plan import SITE
from benchmarks.report import Report, Row, ratio
from benchmarks.wire import fetch

NGINX_REPEATS = 3


def binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


NGINX_CONF = """\
{user}daemon off;
master_process on;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/tmp/body;
  proxy_temp_path {root}/tmp/proxy;
  fastcgi_temp_path {root}/tmp/fastcgi;
  uwsgi_temp_path {root}/tmp/uwsgi;
  scgi_temp_path {root}/tmp/scgi;
  proxy_cache_path {root}/cache levels=1:2 keys_zone=bench:32m max_size=4g inactive=2h
                   use_temp_path=off;
  gzip on;
  gzip_proxied any;
  gzip_comp_level 6;
  gzip_types application/json application/x-msgpack;
  server {{
    listen 127.0.0.1:{sim_port};
    location / {{ proxy_pass {sim}; {cache} proxy_set_header Accept-Encoding ""; }}
  }}
  server {{
    listen 127.0.0.1:{gw_port};
    location / {{ proxy_pass {gw}; {cache} }}
  }}
}}
"""
CACHE = (
    'proxy_http_version 1.1; proxy_set_header Connection ""; proxy_cache bench; '
    "proxy_cache_valid 200 2h; proxy_ignore_headers Cache-Control Expires Vary Set-Cookie; "
    "proxy_cache_key $request_uri|$http_accept|$http_accept_encoding|$http_authorization; "
    "proxy_buffers 64 64k; proxy_busy_buffers_size 256k;"
)


@contextlib.contextmanager
def nginx(program: str, workdir: Path, sim_url: str, gw_url: str) -> Iterator[tuple[str, str]]:
    """nginx on its own config and cache folder; yields the two proxies' base URLs."""
    root = workdir / "nginx"
    for sub in ("tmp", "cache"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sim_port, gw_port = procs.free_port(), procs.free_port()
    (root / "nginx.conf").write_text(
        NGINX_CONF.format(
            # as root, nginx's workers would drop to nobody, who cannot enter the bench's
            # private temporary folder
            user="user root;\n" if os.geteuid() == 0 else "",
            root=root,
            sim=sim_url,
            gw=gw_url,
            sim_port=sim_port,
            gw_port=gw_port,
            cache=CACHE,
        )
    )
    log = (root / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [program, "-p", str(root), "-c", str(root / "nginx.conf")], stdout=log, stderr=log
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), _listening(gw_port):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(root / 'error.log').read_text()[-500:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@contextlib.contextmanager
def _listening(port: int) -> Iterator[None]:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        yield


async def run(bench: Bench, report: Report, workdir: Path) -> None:
    found = binary()
    label = "(n) nginx proxy_cache baseline"
    if found is None:
        report.add(
            [Row(label, "skipped: nginx not installed (`bash scripts/nginx.sh` as root)", "–")]
        )
        return
    plan = bench.plan
    with nginx(found, workdir, bench.sim_url, bench.gateway_url) as (to_sim, to_gw):
        day_ms = bench.window(1)[1] - 20 * MS_PER_DAY
        page_size = plan.dropin_page_sizes[0]
        for encoding in ("identity", "gzip"):
            headers = {"Accept-Encoding": encoding}
            tsgate_s = await _pages(bench, bench.gateway_url + "/api", day_ms, page_size, headers)
            nginx_s = await _pages(
                bench, to_sim + "/api", day_ms, page_size, headers, upstream=True
            )
            report.add(
                [Row(f"(n) drop-in whole site 1 d, page_size={page_size:,}, {encoding}, warm",
                     f"every page, median of {NGINX_REPEATS}; baseline: nginx proxy_cache in "
                     "front of the simulator, warm", fmt_s(tsgate_s), fmt_s(nginx_s),
                     ratio(nginx_s, tsgate_s))]
            )  # fmt: skip
        names = bench.pick(plan.chart_points)
        start_ms, end_ms = bench.window(plan.chart_days)
        params = chart_params(
            names, start_ms, end_ms, max_points=plan.chart_max_points, layout="columnar"
        )
        tsgate_s = await _chart(bench, bench.gateway_url, params)
        nginx_s = await _chart(bench, to_gw, params)
        report.add(
            [Row(f"(a) chart {len(names)} pts × {plan.chart_days} d, warm",
                 f"median of {NGINX_REPEATS}; baseline: nginx proxy_cache serving tsgate's "
                 "answer from its cache", fmt_ms(tsgate_s), fmt_ms(nginx_s),
                 ratio(nginx_s, tsgate_s))]
        )  # fmt: skip
    report.notes.append(
        "(n) nginx 1 worker process (`scripts/nginx.sh` installs Debian's `nginx-light`) on "
        "its own config and cache folder, `proxy_cache` keyed by URI, `Accept` and token, "
        "valid 2 h, `gzip on` (level 6) for gzip requests; each read is made once to fill "
        "both caches (tsgate's and nginx's), then timed. The chart baseline is nginx "
        "in front of tsgate, serving tsgate's own bytes: the cost of sending a kept answer."
    )


async def _pages(
    bench: Bench,
    api: str,
    day_ms: int,
    page_size: int,
    headers: Mapping[str, str],
    *,
    upstream: bool = False,
) -> float:
    await page_through(bench, api, day_ms, page_size, upstream=upstream)  # fills the caches
    times = []
    for _ in range(NGINX_REPEATS):
        started = time.perf_counter()
        url = f"{api}/sites/{SITE}/timeseries/paginated"
        params: dict[str, str | int] = {
            "start_time": iso(day_ms),
            "end_time": iso(day_ms + MS_PER_DAY),
            "page_size": page_size,
            "raw_data": "true",
        }
        auth = {"Authorization": "Bearer bench"} if upstream else {}
        while True:
            got = await fetch(
                bench.http, url, params=params, headers={**auth, **headers}, timeout_s=300
            )
            got.check(f"page of {urlsplit(api).netloc}")
            body = got.decoded()
            cursor = body.get("next_cursor") if isinstance(body, dict) else None
            if not cursor:
                break
            params["cursor"] = cursor
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _chart(bench: Bench, base_url: str, params: dict[str, str | int]) -> float:
    url = f"{base_url}/api/timeseries"
    first = await fetch(bench.http, url, params=params, headers=CHART_HEADERS, timeout_s=600)
    first.check("chart for the nginx baseline")
    times = []
    for _ in range(NGINX_REPEATS):
        got = await fetch(bench.http, url, params=params, headers=CHART_HEADERS, timeout_s=600)
        got.check("warm chart")
        times.append(got.elapsed_s)
    return statistics.median(times)
