"""``GET /api/quality``: which points of a site are missing, stale, gappy or flatlined.

Computed from the hourly rollups (exact at unaligned range edges), never from a raw scan
of the range; see :mod:`tsgate.core.quality` for what each figure means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.limits import check_fetch_budget
from tsgate.api.negotiation import choose_encoding, compressed, encode_body, wants_msgpack
from tsgate.api.services import services_of
from tsgate.core.model import MS_PER_DAY
from tsgate.core.quality import Assessed, PointProfile, holds, profile_of, summary_of
from tsgate.errors import BadParameter, TooLarge
from tsgate.series.hourly import Judging, assess_points, names_digest
from tsgate.wire.ace import format_time, format_times, parse_range

MAX_QUALITY_POINTS = 10_000
MAX_QUALITY_DAYS = 92
_KEPT_HEADERS = {"content-encoding", "vary"}  # of a sent answer, sent again with it


async def quality(request: Request) -> Response:
    services = services_of(request)
    q = request.query_params
    site = (q.get("site") or "").strip()
    if not site:
        raise BadParameter("site", "is required (a site name, e.g. demo_campus)")
    start_ms, end_ms = parse_range(q.get("start"), q.get("end"), names=("start", "end"))
    if end_ms - start_ms > MAX_QUALITY_DAYS * MS_PER_DAY:
        raise TooLarge(
            "max_quality_days", f"end: at most {MAX_QUALITY_DAYS} days per quality request"
        )
    tolerance = _number(q.get("flat_tolerance"), "flat_tolerance", at_least=0.0) or 0.0
    stale_after_s = _number(q.get("stale_after"), "stale_after", at_least=0.0)
    low, high = _number(q.get("low"), "low"), _number(q.get("high"), "high")
    if low is not None and high is not None and low > high:
        raise BadParameter("high", f"must not be below low ({low:g})")
    token = token_of(request, services.settings.upstream_token)
    await services.catalog.fresh(site, token)
    version, profiles = await _profiles(request, site, q.get("points"))
    floor_ms = int(services.settings.cov_gap_floor_s * 1000)
    by_name = {p.name: p for p in profiles}

    async def judge(names: Sequence[str]) -> dict[str, tuple[str, int]]:
        # the chart's rule (its gap bands): each point's mode (the observed one counting)
        # and gap limit (for a point whose value holds, by the cadence its stored periods
        # over the range show)
        observed = await services.catalog.observed_modes(
            site, [n for n in names if by_name[n].observed_decides]
        )
        modes = {n: by_name[n].mode_given(observed.get(n)) for n in names}
        held = [n for n in names if holds(by_name[n].kind, modes[n])]
        cadences = await services.catalog.observed_cadences(site, held, (start_ms, end_ms))
        return {
            n: (modes[n], by_name[n].gap_ms(modes[n], floor_ms, cadences.get(n))) for n in names
        }

    # the modes and limits the points would be judged by now: a kept answer judged by
    # others is not shown (the gaps, staleness and coverage of a point follow them)
    shown = _shown(await judge([p.name for p in profiles]), profiles)
    zone = await services.zones.zone_of(site, token)
    reader, memo = services.reader, services.quality
    binary = wants_msgpack(request)
    key = (
        site,
        await reader.generation(site),
        version,
        names_digest([p.name for p in profiles]),
        start_ms,
        end_ms,
        tolerance,
        stale_after_s,
        low,
        high,
        floor_ms,
        binary,
        choose_encoding(request.headers.get("accept-encoding", "")),
    )
    kept = memo.answer(key, reader.clock_ms(), (zone, *shown))
    if kept is not None:
        await reader.check_site(site, token)  # kept answers are served only to readers
        return Response(kept.body, 200, headers=kept.headers, media_type=kept.media_type)
    judging = Judging(
        cadence_ms=[p.cadence_s * 1000 for p in profiles],
        # unless told, stale once the silence up to now is a gap (see gap_limits)
        stale_after_ms=[None if not stale_after_s else int(stale_after_s * 1000)] * len(profiles),
        bounds=[
            (p.low if low is None else low, p.high if high is None else high) for p in profiles
        ],
        flat_tolerance=tolerance,
    )

    async def budget(names: Sequence[str], hours: tuple[int, int]) -> None:
        # what is not stored yet is fetched inline: at most inline_fetch_samples a batch
        await check_fetch_budget(services, site, names, *hours, token)

    judged: dict[str, tuple[str, int]] = {}  # each point's mode and gap limit, as judged

    async def gap_limits(names: Sequence[str]) -> tuple[list[int], list[bool]]:
        # judged once the samples are read (and their periods stored)
        judged.update(await judge(names))
        return (
            [judged[n][1] for n in names],
            [holds(by_name[n].kind, judged[n][0]) for n in names],
        )

    assessed, stats, now_ms = await assess_points(
        reader,
        site,
        [p.name for p in profiles],
        (start_ms, end_ms),
        judging,
        token=token,
        memo=memo,
        before_read=budget,
        gap_limits=gap_limits,
    )
    summary = summary_of(assessed, np.array([p.kind == "analog" for p in profiles], dtype=bool))
    modes = [judged[p.name][0] for p in profiles]  # as judged, once the samples were read
    body = {
        "metadata": {
            "siteId": site,
            "startTime": format_time(start_ms),
            "endTime": format_time(end_ms),
            "now": format_time(now_ms),
            "timeZone": zone,  # the site's (see tz=site)
            "flatTolerance": tolerance,
        },
        "summary": {
            "points": summary.points,
            "missing": summary.missing,
            "stale": summary.stale,
            "flatlined": summary.flatlined,
            "outOfRange": summary.out_of_range,
            "meanCoveragePct": summary.mean_coverage_pct,
            "samples": summary.samples,
        },
        "points": _items(assessed, profiles, modes, [judged[p.name][1] for p in profiles]),
    }
    data, media_type = encode_body(body, binary)
    headers = {"X-Cache-Status": stats.cache_status, "X-Cache-Source": stats.cache_source}
    response = compressed(request, data, media_type, headers=headers)
    # a past range's figures do not move with now: kept (as sent) until its samples could
    # change (never an answer served while upstream fails, nor one of a range reaching now)
    if not stats.stale and stats.changes_at_ms != 0 and not assessed.live.any():
        sent = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
        memo.keep_answer(
            key,
            until_ms=stats.changes_at_ms,
            shown=(zone, *_shown(judged, profiles)),
            body=bytes(response.body),
            media_type=media_type,
            headers={**sent, "X-Cache-Status": "HIT", "X-Cache-Source": "MEMORY"},
        )
    return response


def _shown(judged: dict[str, tuple[str, int]], profiles: Sequence[PointProfile]) -> list[str]:
    """Each point's mode and gap limit as judged, as a kept answer is shown by them."""
    return [f"{judged[p.name][0]}:{judged[p.name][1]}" for p in profiles]


def _items(
    assessed: Assessed,
    profiles: Sequence[PointProfile],
    modes: Sequence[str],
    gap_limits_ms: Sequence[int],
) -> list[dict[str, Any]]:
    """The answer's row of each point, from the figures of all (no per-point work but
    the row itself)."""
    reported = (~assessed.missing).tolist()
    lasts = format_times(assessed.last_ms)
    stale_ms = assessed.stale_ms.tolist()
    live = assessed.live.tolist()
    return [
        {
            "name": p.name,
            "unit": p.unit,
            "kind": p.kind,
            "mode": mode,
            "cadenceS": p.cadence_s,
            "samples": samples,
            "expected": expected,
            "coveragePct": coverage,
            "longestGapMs": longest,
            "gapLimitMs": limit,
            "gaps": gap_count,
            "gapMs": gap_time,
            "lastTime": lasts[i] if reported[i] else None,
            "staleMs": stale_ms[i] if reported[i] and live[i] else None,
            "stale": stale,
            "missing": not reported[i],
            "flatlineHours": flat,
            "outOfRangeHours": out,
            "hours": hours,
        }
        for i, (
            p,
            mode,
            limit,
            samples,
            expected,
            coverage,
            longest,
            gap_count,
            gap_time,
            stale,
            flat,
            out,
            hours,
        ) in (
            enumerate(
                zip(
                    profiles,
                    modes,
                    gap_limits_ms,
                    assessed.samples.tolist(),
                    assessed.expected.tolist(),
                    assessed.coverage_pct.tolist(),
                    assessed.longest_gap_ms.tolist(),
                    assessed.gaps.tolist(),
                    assessed.gap_ms.tolist(),
                    assessed.stale.tolist(),
                    assessed.flatline_hours.tolist(),
                    assessed.out_of_range_hours.tolist(),
                    assessed.hours.tolist(),
                    strict=True,
                )
            )
        )
    ]


async def _profiles(
    request: Request, site: str, raw_points: str | None
) -> tuple[int | None, list[PointProfile]]:
    """When the site's catalog was refreshed, and the points to assess: the named ones,
    else every point of the site that collects. The site's catalog is read once per
    refresh of it (the profiles are kept)."""
    services = services_of(request)
    version = await services.points.refreshed_at(site)
    known = services.quality.profiles(site, version)
    if known is None:
        _, catalog = await services.points.list(site, 0, MAX_QUALITY_POINTS + 1)
        known = {p["name"]: profile_of(p, services.kinds) for p in catalog}
        services.quality.keep_profiles(site, version, known)
    if raw_points:
        names = list(dict.fromkeys(n.strip() for n in raw_points.split(",") if n.strip()))
        if len(names) > MAX_QUALITY_POINTS:
            raise TooLarge("max_quality_points", f"at most {MAX_QUALITY_POINTS} points per request")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadParameter("points", f"not points of {site!r}: {', '.join(unknown[:5])}")
        return version, [known[n] for n in names]
    chosen = [p for p in known.values() if p.collects]
    if len(chosen) > MAX_QUALITY_POINTS:
        raise TooLarge("max_quality_points", f"at most {MAX_QUALITY_POINTS} points per request")
    return version, chosen


def _number(raw: str | None, name: str, *, at_least: float | None = None) -> float | None:
    """A finite number parameter (``None`` when absent), at least ``at_least`` if given."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BadParameter(name, f"{raw!r} must be a finite number")
    if at_least is not None and value < at_least:
        raise BadParameter(name, f"{raw!r} must be a finite number >= {at_least:g}")
    return value


def routes() -> list[Route]:
    return [Route("/api/quality", quality, methods=["GET"])]
