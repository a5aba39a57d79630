"""What each route takes and answers, for the OpenAPI document (``api/openapi.py``).

Keyed by the endpoint function, never by path: paths and methods come from the route
definitions themselves, so a route moved, renamed or added without an entry here makes
the document fail to build (and its test fail) instead of drifting. Parameter enums and
bounds are the constants the handlers check against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tsgate.api import (
    ace,
    admin,
    aggregations,
    chartimages,
    charts,
    files,
    frames,
    jobs,
    livestream,
    monitor,
    occupancy,
    ops,
    points,
    quality,
    timeseries,
)
from tsgate.api.bodies import MAX_DEPTH
from tsgate.core.frame import FILLS
from tsgate.core.rollups import AGGREGATES
from tsgate.jobs.exports import MEDIA_TYPES
from tsgate.jobs.model import FORMATS, JobState
from tsgate.series.chart import INTERVALS
from tsgate.wire.ace import PAGE_SIZES

JSON_TYPES = ("application/json", "application/x-msgpack")
PER_PAGE = (2, 10, 20, 30, 40, 50, 100, 500, 1000, 5000, 10000, 100000)


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # query | path | header
    schema: dict[str, Any]
    description: str = ""
    required: bool = False

    def to_openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": self.where, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        if self.required or self.where == "path":
            out["required"] = True
        return out


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    params: Sequence[Param] = ()
    body: dict[str, Any] | None = None  # a JSON schema of the request body
    ok: dict[int, tuple[str, Sequence[str], dict[str, Any]]] = field(default_factory=dict)
    description: str = ""
    auth: bool = True


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


TIME = _string(description="ISO 8601 (no zone: UTC), e.g. 2025-10-01T00:00:00")
SITE_QUERY = Param("site", "query", _string(minLength=1), "a site name", required=True)
POINTS_QUERY = Param(
    "points", "query", _string(minLength=1), "comma-separated point names", required=True
)
FORMAT = Param("format", "query", {"enum": ["json", "msgpack"]}, "else Accept decides")
ACE_RANGE = (
    Param("start_time", "query", TIME, required=True),
    Param("end_time", "query", TIME, required=True),
)
SITE_PATH = Param("site", "path", _string(minLength=1), "a site name")
JOB_ID = Param("job_id", "path", _string(), "a job id")
FILE_ID = Param("file_id", "path", _string(), "a file id")
FILE_TYPES = ("image/png", "image/jpeg", "application/pdf", "text/csv", "application/json")
_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}
CHART_ID = Param("chart_id", "path", _string(), "a saved chart id")

IMAGE_PARAMS = (
    Param(
        "width",
        "query",
        {"type": "integer", "minimum": chartimages.WIDTH_PX[0], "maximum": chartimages.WIDTH_PX[1]},
        "pixels (default 1200)",
    ),
    Param(
        "height",
        "query",
        {
            "type": "integer",
            "minimum": chartimages.HEIGHT_PX[0],
            "maximum": chartimages.HEIGHT_PX[1],
        },
        "pixels (default 600)",
    ),
    Param("theme", "query", {"enum": ["light", "dark"]}),
)
IMAGE_NOTE = (
    f"The saved range and points, downsampled to the width; at most "
    f"{chartimages.MAX_PIXELS:,} pixels. X-Cache-Status STALE: drawn from the cache only "
    "while upstream fails (the image says so)."
)

# a chart's aggregate: one of the named ones, or the hours in a state (timein:<state>)
CHART_AGG: dict[str, Any] = {
    "anyOf": [
        {"enum": sorted(AGGREGATES)},
        {"type": "string", "pattern": "^timein:-?[0-9]{1,9}$"},
    ]
}

CHART_QUERY = (
    SITE_QUERY,
    POINTS_QUERY,
    Param("start", "query", TIME, required=True),
    Param("end", "query", TIME, "after start", required=True),
    Param("interval", "query", {"enum": list(INTERVALS)}),
    Param("max_points", "query", {"type": "integer", "minimum": 4, "maximum": 1_000_000}),
    Param("agg", "query", CHART_AGG),
    Param("tz", "query", _string(), "UTC (default), site, or an IANA zone: local calendar buckets"),
    Param("compare", "query", _string(), "e.g. -7d: each series again, shifted from earlier"),
)

JOB_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "site", "points", "start", "end"],
    "properties": {
        "kind": {"enum": ["query", "export"]},
        "site": _string(minLength=1),
        "points": {"type": "array", "items": _string(minLength=1), "minItems": 1},
        "start": {"oneOf": [TIME, {"type": "integer", "description": "epoch ms"}]},
        "end": {"oneOf": [TIME, {"type": "integer", "description": "epoch ms"}]},
        "format": {"enum": list(FORMATS)},
        "interval": {"enum": list(INTERVALS)},
        "max_points": {"type": "integer", "minimum": 4, "maximum": 1_000_000},
        "agg": CHART_AGG,
        "layout": {"enum": ["series", "columnar"]},
        "tz": _string(description="a query's zone, as the chart API's tz (UTC, site, IANA)"),
        "compare": _string(description="a query's comparison, as the chart API's (e.g. -7d)"),
        "notify_url": _string(format="uri", description="http(s), a public address"),
    },
}
CHART_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["config"],
    "properties": {
        "name": _string(maxLength=charts.MAX_NAME_CHARS),
        "config": {
            "type": "object",
            "required": ["site", "points"],
            "properties": {
                "site": _string(minLength=1),
                "points": {"type": "array", "items": _string(minLength=1), "minItems": 1},
                "view": {"enum": list(charts.VIEWS)},
                "range": {"type": "object"},
            },
        },
    },
}


def _ok(status: int, schema: dict[str, Any], *types: str, what: str = "") -> dict[int, Any]:
    return {status: (what or "the answer", types or JSON_TYPES, schema)}


ANY_RESULT = tuple(dict.fromkeys(MEDIA_TYPES.values()))

# endpoints that are closures (built with their route) are named "module:function"
OPERATIONS: dict[Callable[..., Any] | str, Operation] = {
    "tsgate.api.metrics:scrape": Operation(
        "Prometheus text metrics",
        "operations",
        ok=_ok(200, {"type": "string"}, "text/plain"),
        auth=False,
    ),
    ops.health: Operation(
        "Health of the database, object store, cache and upstream",
        "operations",
        ok={
            200: ("healthy or degraded", JSON_TYPES, _ref("Health")),
            503: ("unhealthy", JSON_TYPES, _ref("Health")),
        },
        auth=False,
    ),
    ops.stats: Operation(
        "Hit ratios, samples served, upstream calls, store sizes, jobs by state",
        "operations",
        ok=_ok(200, {"type": "object"}),
    ),
    admin.invalidate_cache: Operation(
        "Drop cached data of a site, points and range (admin key)",
        "operations",
        params=(Param("X-Admin-Key", "header", _string(), "TSGATE_ADMIN_KEY"),),
        body={
            "type": "object",
            "required": ["site"],
            "properties": {
                "site": _string(minLength=1),
                "points": {"type": "array", "items": _string(minLength=1)},
                "start": TIME,
                "end": TIME,
            },
        },
        ok=_ok(200, {"type": "object"}),
    ),
    timeseries.timeseries: Operation(
        "A chart: raw, downsampled or aggregated series",
        "chart API",
        params=(
            *CHART_QUERY,
            Param("layout", "query", {"enum": ["series", "columnar"]}),
            FORMAT,
            Param("async", "query", {"type": "boolean"}, "false: 413 instead of a job"),
        ),
        ok={
            200: ("the chart", JSON_TYPES, _ref("Chart")),
            202: ("too large to fetch inline: a job", JSON_TYPES, _ref("Accepted")),
        },
    ),
    livestream.stream: Operation(
        "A live chart: the chart answer, then its new samples as they appear (SSE)",
        "chart API",
        params=(
            *CHART_QUERY,
            Param("layout", "query", {"enum": ["series", "columnar"]}, "of the initial event"),
            Param("format", "query", {"enum": ["json"]}, "an event stream is text"),
            Param(
                "Last-Event-ID",
                "header",
                _string(),
                "the id of the last event seen: the stream resumes after it",
            ),
        ),
        ok=_ok(
            200,
            {"type": "string"},
            "text/event-stream",
            what="events initial, samples, status, error, end (docs/api.md)",
        ),
    ),
    aggregations.aggregations: Operation(
        "Rollup rows (avg, min, max, sum, count, stddev, twavg, duty, starts, the hours "
        "in each state) per bucket",
        "chart API",
        params=(
            *CHART_QUERY[:4],
            Param("interval", "query", {"enum": list(aggregations.AGGREGATION_INTERVALS)}),
            CHART_QUERY[7],  # tz
            Param(
                "timein",
                "query",
                _string(),
                "states (integers, comma-separated) whose hours each row carries as "
                "timein:<state>; default every state a binary or multistate point held",
            ),
            FORMAT,
        ),
        ok=_ok(200, _ref("Aggregations")),
    ),
    points.search: Operation(
        "Search a site's points by name and tags",
        "chart API",
        params=(
            SITE_QUERY,
            Param("q", "query", _string(maxLength=points.MAX_QUERY_CHARS)),
            Param("tags", "query", _string(), f"comma-separated, at most {points.MAX_TAGS}"),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        ok=_ok(200, _ref("Search")),
    ),
    points.configured_points: Operation(
        "A site's configured points from the cached catalog (ACE page envelope)",
        "ACE drop-in",
        params=(
            SITE_PATH,
            Param("page", "query", {"type": "integer", "minimum": 1, "maximum": 1_000_000}),
            Param("per_page", "query", {"type": "integer", "minimum": 1, "maximum": 5000}),
            Param("bypass_cache", "query", {"type": "boolean"}),
        ),
        ok=_ok(200, _ref("Page")),
    ),
    ace.paged_passthrough: Operation(
        "Sites, or a site's points: upstream's page envelope with a correct page count",
        "ACE drop-in",
        params=(
            Param("page", "query", {"type": "integer", "minimum": 1}),
            Param("per_page", "query", {"enum": list(PER_PAGE)}),
        ),
        ok=_ok(200, _ref("Page")),
    ),
    ace.site_paginated: Operation(
        "A site's samples page by page (optionally only some points)",
        "ACE drop-in",
        params=(
            SITE_PATH,
            *ACE_RANGE,
            Param("page_size", "query", {"enum": list(PAGE_SIZES)}),
            Param("raw_data", "query", {"enum": ["true", "True", "1", "false", "False", "0"]}),
            Param("cursor", "query", _string(), "next_cursor of the previous page"),
            Param("point_names", "query", _string(), "comma-separated point names"),
        ),
        ok=_ok(200, _ref("SamplesPage")),
    ),
    ace.points_get_timeseries: Operation(
        "Samples of several points",
        "ACE drop-in",
        params=ACE_RANGE,
        body={
            "type": "object",
            "required": ["points"],
            "properties": {
                "points": {"type": "array", "items": _string(minLength=1), "minItems": 1}
            },
        },
        ok=_ok(200, _ref("Samples")),
    ),
    ace.point_timeseries: Operation(
        "Samples of one point (its name %2F-encoded into one segment)",
        "ACE drop-in",
        params=(Param("name", "path", _string(minLength=1), "the point name"), *ACE_RANGE),
        ok=_ok(200, _ref("Samples")),
    ),
    jobs.submit: Operation(
        "Submit a query or an export job (the same request twice is the same job)",
        "jobs",
        body=JOB_BODY,
        ok={
            200: ("already completed", JSON_TYPES, _ref("Job")),
            202: ("queued or running", JSON_TYPES, _ref("Job")),
        },
    ),
    jobs.listing: Operation(
        "The caller's jobs (status=dead: the dead letters)",
        "jobs",
        params=(Param("status", "query", {"enum": [s.value for s in JobState]}),),
        ok=_ok(200, _ref("JobList")),
    ),
    jobs.show: Operation("A job's status", "jobs", params=(JOB_ID,), ok=_ok(200, _ref("Job"))),
    jobs.cancel: Operation(
        "Cancel a job (a running one stops within a slice)",
        "jobs",
        params=(JOB_ID,),
        ok=_ok(200, _ref("Job")),
    ),
    jobs.result: Operation(
        "A completed job's result file",
        "jobs",
        params=(JOB_ID,),
        ok=_ok(200, {}, *ANY_RESULT),
    ),
    jobs.part: Operation(
        "One part of a progressive query job's answer (0: the newest), ready before the job ends",
        "jobs",
        params=(
            JOB_ID,
            Param("index", "path", _string(pattern="^[0-9]{1,6}$"), "the part's number"),
        ),
        ok=_ok(200, _OBJECT_SCHEMA, "application/json", what="the chart JSON of the part"),
        description="The parts, joined in time order, are the job's result; "
        "`parts` in the job's status says how many are ready (docs/api.md).",
    ),
    jobs.retry: Operation(
        "Run a dead, failed or cancelled job again",
        "jobs",
        params=(JOB_ID,),
        ok=_ok(202, _ref("Job")),
    ),
    jobs.events: Operation(
        "Server-sent progress events until the job ends",
        "jobs",
        params=(JOB_ID,),
        ok=_ok(200, {"type": "string"}, "text/event-stream"),
    ),
    charts.create: Operation(
        "Save a chart configuration",
        "saved charts",
        body=CHART_BODY,
        ok=_ok(201, _ref("SavedChart")),
    ),
    charts.listing: Operation(
        "The caller's saved charts", "saved charts", ok=_ok(200, _ref("SavedChartList"))
    ),
    charts.show: Operation(
        "A saved chart", "saved charts", params=(CHART_ID,), ok=_ok(200, _ref("SavedChart"))
    ),
    charts.delete: Operation(
        "Delete a saved chart",
        "saved charts",
        params=(CHART_ID,),
        ok={204: ("deleted", (), {})},
    ),
    chartimages.png: Operation(
        "A saved chart drawn as a PNG image",
        "saved charts",
        params=(CHART_ID, *IMAGE_PARAMS),
        ok={200: ("the image", ("image/png",), {})},
        description=IMAGE_NOTE,
    ),
    chartimages.svg: Operation(
        "A saved chart drawn as an SVG image",
        "saved charts",
        params=(CHART_ID, *IMAGE_PARAMS),
        ok={200: ("the image", ("image/svg+xml",), {})},
        description=IMAGE_NOTE,
    ),
    files.upload: Operation(
        "Upload a file (multipart field `file`, or the raw body with `?name=`)",
        "files",
        params=(
            Param("name", "query", _string(maxLength=255), "the file's name (raw bodies)"),
            Param("site", "query", _string(), "the site it belongs to (readable by its readers)"),
            Param("chart", "query", _string(), "a saved chart it is attached to"),
        ),
        ok=_ok(201, _OBJECT_SCHEMA),
        description="The type is sniffed from the bytes: PNG, JPEG, PDF, CSV or JSON.",
    ),
    files.listing: Operation(
        "The caller's files, or a site's or a saved chart's",
        "files",
        params=(
            Param("site", "query", _string()),
            Param("chart", "query", _string()),
        ),
        ok=_ok(200, _OBJECT_SCHEMA),
    ),
    files.download: Operation(
        "A file's bytes (Range, If-None-Match)",
        "files",
        params=(FILE_ID,),
        ok={
            200: ("the file", FILE_TYPES, {}),
            206: ("part of the file", FILE_TYPES, {}),
        },
    ),
    files.show: Operation(
        "A file's metadata", "files", params=(FILE_ID,), ok=_ok(200, _OBJECT_SCHEMA)
    ),
    files.delete: Operation(
        "Delete a file", "files", params=(FILE_ID,), ok={204: ("deleted", (), {})}
    ),
    frames.frame_endpoint: Operation(
        "Points on one time index, a coverage column each (Arrow IPC, Parquet or CSV)",
        "chart",
        params=(
            SITE_QUERY,
            Param("points", "query", _string(), "comma-separated point names"),
            Param("q", "query", _string(), "else: the points whose name holds this"),
            Param("tags", "query", _string(), "… and carry every one of these tags"),
            Param("start", "query", TIME, required=True),
            Param("end", "query", TIME, "after start", required=True),
            Param("interval", "query", {"enum": list(frames.FRAME_INTERVALS)}),
            Param("agg", "query", {"enum": sorted(AGGREGATES)}),
            Param("fill", "query", {"enum": list(FILLS)}),
            Param("format", "query", {"enum": list(frames.FORMATS)}, "else Accept decides"),
        ),
        ok={
            200: ("the frame", tuple(frames.FORMATS.values()), {}),
            202: ("fetching first: a job", JSON_TYPES, _OBJECT_SCHEMA),
        },
    ),
    quality.quality: Operation(
        "Data quality per point of a site: coverage, gaps, stale, flatlined, out of range",
        "chart",
        params=(
            SITE_QUERY,
            Param("start", "query", TIME, required=True),
            Param("end", "query", TIME, "after start, at most 92 days", required=True),
            Param("points", "query", _string(), "default: every collecting point"),
            Param("flat_tolerance", "query", {"type": "number", "minimum": 0}),
            Param("stale_after", "query", {"type": "number", "minimum": 0}, "seconds"),
            Param("low", "query", {"type": "number"}),
            Param("high", "query", {"type": "number"}),
        ),
        ok=_ok(200, _OBJECT_SCHEMA),
    ),
    occupancy.occupancy: Operation(
        "When a site was occupied, from its schedule points (the chart's shaded bands)",
        "chart",
        params=(
            SITE_QUERY,
            Param("start", "query", TIME, required=True),
            Param("end", "query", TIME, "after start", required=True),
        ),
        ok=_ok(200, _OBJECT_SCHEMA),
    ),
    monitor.day_report: Operation(
        "One UTC day of the monitoring history summarised, with its alert events",
        "operations",
        params=(
            Param("day", "query", _string(pattern=r"^\d{4}-\d{2}-\d{2}$"), "default: yesterday"),
        ),
        ok=_ok(200, _OBJECT_SCHEMA),
    ),
    monitor.history: Operation(
        "Sampled store sizes, growth and health over time, with alert events",
        "operations",
        params=(
            Param("start", "query", TIME, "default: a day ago"),
            Param("end", "query", TIME, "default: now"),
            Param(
                "max_points",
                "query",
                {"type": "integer", "minimum": 2, "maximum": monitor.MAX_POINTS},
            ),
            Param("metrics", "query", _string(), "comma-separated metric names"),
        ),
        ok=_ok(200, _OBJECT_SCHEMA),
    ),
}

_OBJECT = {"type": "object"}
SAMPLE = {
    "type": "object",
    "required": ["name", "value", "time"],
    "properties": {"name": _string(), "value": _string(), "time": _string()},
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": _string(),
            "title": _string(),
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": _string(),
            "message": _string(),
            "param": _string(description="the parameter at fault"),
            "limit": _string(description="the setting that limits it"),
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["healthy", "degraded", "unhealthy"]},
            "version": _string(),
            "checks": _OBJECT,
            "alerts": {"type": "array", "items": _string()},
        },
    },
    "Chart": {
        "type": "object",
        "required": ["metadata", "series"],
        "properties": {"metadata": _OBJECT, "series": {"type": "array", "items": _OBJECT}},
    },
    "Accepted": {
        "type": "object",
        "required": ["jobId", "status", "statusUrl"],
        "properties": {
            "jobId": _string(),
            "status": _string(),
            "statusUrl": _string(),
            "estimatedSamples": {"type": "integer"},
        },
    },
    "Aggregations": {
        "type": "object",
        "required": ["metadata", "aggregations"],
        "properties": {"metadata": _OBJECT, "aggregations": {"type": "array", "items": _OBJECT}},
    },
    "Search": {
        "type": "object",
        "required": ["site", "items"],
        "properties": {"site": _string(), "items": {"type": "array", "items": _OBJECT}},
    },
    "Page": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "page": {"type": "integer"},
            "pages": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "items": {"type": "array"},
        },
    },
    "Samples": {
        "type": "object",
        "required": ["point_samples"],
        "properties": {"point_samples": {"type": "array", "items": SAMPLE}},
    },
    "SamplesPage": {
        "type": "object",
        "required": ["point_samples", "has_more"],
        "properties": {
            "point_samples": {"type": "array", "items": SAMPLE},
            "next_cursor": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["jobId", "kind", "status", "progress", "statusUrl"],
        "properties": {
            "jobId": _string(),
            "kind": {"enum": ["query", "export"]},
            "status": {"enum": [s.value for s in JobState]},
            "progress": {
                "type": "number",
                "minimum": 0,
                "maximum": 100,
                "description": "the share of the job's slices done (its parts', if any)",
            },
            "samplesDone": {"type": "integer", "description": "samples of the slices done"},
            "samplesTotal": {
                "type": ["integer", "null"],
                "description": "samples the job expects to read (estimated; null until it "
                "has; exact once done)",
            },
            "partsDone": {"type": "integer", "description": "parts ready (progressive charts)"},
            "partsTotal": {"type": "integer", "description": "parts of the answer"},
            "partsUrl": _string(description="part n at partsUrl/n, 0 the newest"),
            "attempts": {"type": "integer"},
            "error": {"type": ["string", "null"]},
            "statusUrl": _string(),
            "resultUrl": _string(),
            "webhook": _OBJECT,
        },
    },
    "JobList": {
        "type": "object",
        "required": ["items", "total"],
        "properties": {
            "items": {"type": "array", "items": _ref("Job")},
            "total": {"type": "integer"},
        },
    },
    "SavedChart": {
        "type": "object",
        "required": ["id", "name", "config", "createdAt"],
        "properties": {
            "id": _string(),
            "name": _string(),
            "config": _OBJECT,
            "createdAt": {"type": "integer"},
            "url": _string(),
            "image": _string(description="the chart drawn as PNG (.svg: as SVG)"),
        },
    },
    "SavedChartList": {
        "type": "object",
        "required": ["items", "total"],
        "properties": {
            "items": {"type": "array", "items": _ref("SavedChart")},
            "total": {"type": "integer"},
        },
    },
}
BODY_NOTE = f"JSON, at most {MAX_DEPTH} levels deep"
