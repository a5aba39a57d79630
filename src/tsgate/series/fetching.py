"""How to fetch a plan from upstream: per-point reads, or the site's paginated stream."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence

from tsgate.core import extents
from tsgate.core.model import Series, concat
from tsgate.series.chunkstore import Fetched
from tsgate.series.planning import SAMPLE_MS, CachePolicy, Range
from tsgate.upstream.base import Upstream

# told of each page of a site stream as it arrives (the span streamed, the page per
# point), then of the span's end (None: every page of it has arrived)
PageSink = Callable[[Range, dict[str, Series] | None], None]


def site_stream_pays(plan: dict[str, list[Range]], site_points: int, policy: CachePolicy) -> bool:
    """Whether the site's paginated stream beats per-point reads for this plan.

    The stream carries every point of the site, one page after another; per-point reads
    carry only the asked points, ``concurrency`` at a time, one window per request. The
    site's size comes from the cached catalog; unknown (0) means per-point reads.
    """
    if not site_points or len(plan) < policy.site_stream_min_points:
        return False
    span_ms = sum(e - s for s, e in extents.merge([r for spans in plan.values() for r in spans]))
    site_pages = -(-site_points * (span_ms // SAMPLE_MS + 1) // policy.site_page_size)
    windows = sum(
        len(spans) + sum((e - s) // policy.point_window_ms for s, e in spans)
        for spans in plan.values()
    )
    rounds = -(-windows // max(1, policy.upstream_concurrency))
    return site_pages < rounds


async def per_point(
    upstream: Upstream, plan: dict[str, list[Range]], *, token: str
) -> list[Fetched]:
    # points that miss the same spans (the usual dashboard) share one batch of reads
    groups: dict[tuple[Range, ...], list[str]] = defaultdict(list)
    for name, spans in plan.items():
        groups[tuple(spans)].append(name)
    out: list[Fetched] = []

    async def fetch(span: Range, names: list[str]) -> None:
        found = await upstream.points_series(names, span[0], span[1], token=token)
        out.extend(Fetched(n, span, found.get(n, Series.empty(n)).crop(*span)) for n in names)

    await asyncio.gather(*(fetch(span, names) for spans, names in groups.items() for span in spans))
    return out


async def site_stream(
    upstream: Upstream,
    site: str,
    plan: dict[str, list[Range]],
    *,
    token: str,
    page_size: int,
    on_page: PageSink | None = None,
) -> tuple[list[Fetched], dict[str, list[Range]]]:
    """One stream of the site's pages per missing span (each page shown to ``on_page``).

    Every point the stream carries is stored for that span. A planned point the stream
    did not carry is not known to be empty (the stream leaves out points that are not
    collecting, whose history per-point reads still serve): it is returned in the second
    value, to be read per point.
    """
    spans = extents.merge([span for spans in plan.values() for span in spans])
    out: list[Fetched] = []
    left: dict[str, list[Range]] = defaultdict(list)
    for span in spans:
        parts: dict[str, list[Series]] = defaultdict(list)
        pages = upstream.site_pages(
            site, span[0], span[1], token=token, raw=True, page_size=page_size
        )
        async for page in pages:
            if on_page is not None:
                on_page(span, page)
            for name, series in page.items():
                if len(series):
                    parts[name].append(series)
        if on_page is not None:
            on_page(span, None)
        out.extend(Fetched(n, span, concat(n, p).crop(*span)) for n, p in parts.items())
        for name, wanted in plan.items():
            if name not in parts:
                left[name].extend(_clip(wanted, span))
    return out, {n: extents.merge(s) for n, s in left.items() if s}


def _clip(spans: Sequence[Range], span: Range) -> list[Range]:
    return [(max(s, span[0]), min(e, span[1])) for s, e in spans if s < span[1] and e > span[0]]
