"""The PromQL evaluator: an AST from ``promql_parser`` evaluated on a grid of times.

Every value is held on the grid (one float per evaluation time, NaN where a series has
no sample), so a range query is a handful of numpy operations per series, not a loop
over steps. Selectors read through a ``Source``: hourly or daily rollups when every
evaluation time and the range are whole buckets (a year at a 1 h step reads 8,760
buckets per point, not 105,120 samples); for one evaluation time anywhere, whole buckets
plus the raw samples of the window's two ragged ends; raw samples otherwise.

Supported: selectors with ``=``, ``!=``, ``=~``, ``!~``; ``offset`` and ``@`` (with
``start()``/``end()``); ``{avg,min,max,sum,count,last,stddev,stdvar}_over_time``;
``sum|avg|min|max|count|stddev|stdvar|group`` with ``by``/``without``; arithmetic and
comparisons (with ``bool``) between scalars and vectors, vectors matched one to one
(``on``/``ignoring``); ``time()``, ``vector()``, ``scalar()``, ``abs``, ``ceil``,
``floor``, ``round``, ``sqrt``, ``exp``, ``ln``, ``log2``, ``log10``, ``clamp_min``,
``clamp_max``, ``clamp``. Anything else is a ``BadParameter`` naming what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import promql_parser as pp

from tsgate.core.model import Series, TimeArray, ValueArray
from tsgate.core.rollups import Buckets
from tsgate.errors import BadParameter, TooLarge
from tsgate.promql import windows
from tsgate.promql.labels import NAME, Labels, Matcher, SeriesRef, freeze

RAW_SAMPLE_MS = 300_000  # for estimates: points report about every 5 minutes
OVER_TIME = {f"{f}_over_time": f for f in windows.FUNCTIONS}
_MATCH_OPS = (
    (pp.MatchOp.Equal, "="),
    (pp.MatchOp.NotEqual, "!="),
    (pp.MatchOp.Re, "=~"),
    (pp.MatchOp.NotRe, "!~"),
)
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
_COMPARISON: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
_MATH: dict[str, Callable[[Any], Any]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "round": np.round,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
}
_AGGREGATES = ("sum", "avg", "min", "max", "count", "stddev", "stdvar", "group")


class Source(Protocol):
    """Where selectors read: the series matching a selector and their data."""

    levels: Mapping[str, int]  # rollup level name -> bucket width in ms

    async def select(self, matchers: Sequence[Matcher]) -> list[SeriesRef]: ...

    async def raw(self, refs: Sequence[SeriesRef], start_ms: int, end_ms: int) -> list[Series]: ...

    async def buckets(
        self, refs: Sequence[SeriesRef], level: str, start_ms: int, end_ms: int
    ) -> list[Buckets]: ...


@dataclass(frozen=True)
class Limits:
    max_series: int = 500  # series one selector may match (0: no limit)
    max_raw_samples: int = 5_000_000  # raw samples one selector may read
    max_span_ms: int = 1100 * 86_400_000  # how far back from its first time a selector reads


@dataclass(frozen=True)
class Scalar:
    values: ValueArray


@dataclass(frozen=True)
class Vector:
    items: list[tuple[Labels, ValueArray]]


@dataclass(frozen=True)
class Matrix:
    items: list[tuple[Labels, Series]]


@dataclass(frozen=True)
class String:
    value: str


Value = Scalar | Vector | Matrix | String


def parse(query: str) -> pp.Expr:
    """The AST of ``query``; a ``BadParameter`` (``query``) with the parser's reason."""
    if not query.strip():
        raise BadParameter("query", 'is required (a PromQL expression, e.g. ace{site="…"})')
    try:
        return pp.parse(query)
    except ValueError as exc:
        raise BadParameter("query", f"cannot parse {query!r}: {exc}") from None


def matchers_of(vs: pp.VectorSelector) -> list[Matcher]:
    """A selector's label matchers, its metric name as a ``__name__`` matcher."""
    if vs.matchers.or_matchers:
        raise _unsupported("'or' inside a selector")
    # the parser's enums are not hashable: compare them one by one
    ops = [next(text for op, text in _MATCH_OPS if m.op == op) for m in vs.matchers.matchers]
    matchers = [
        Matcher(m.name, op, m.value) for m, op in zip(vs.matchers.matchers, ops, strict=True)
    ]
    if vs.name:
        matchers.append(Matcher(NAME, "=", vs.name))
    return matchers


FUNCTIONS = frozenset(
    {*OVER_TIME, *_MATH, "time", "vector", "scalar", "clamp_min", "clamp_max", "clamp"}
)


def check(node: pp.Expr) -> None:
    """Raise ``BadParameter`` for the first function, operator or node not supported."""
    _refuse_unsupported(node)
    for child in _children(node):
        check(child)


def _children(node: pp.Expr) -> list[pp.Expr]:
    if isinstance(node, pp.Call):
        return [a for a in node.args if isinstance(a, pp.Expr)]
    if isinstance(node, pp.AggregateExpr | pp.ParenExpr | pp.UnaryExpr):
        return [node.expr]
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    return []


def _refuse_unsupported(node: pp.Expr) -> None:
    if isinstance(node, pp.Call) and node.func.name not in FUNCTIONS:
        raise _unsupported(f"the function {node.func.name}()")
    if isinstance(node, pp.AggregateExpr) and (
        str(node.op) not in _AGGREGATES or node.param is not None
    ):
        raise _unsupported(f"the aggregation {node.op}")
    if isinstance(node, pp.BinaryExpr):
        op = str(node.op).lower()
        if op not in _ARITHMETIC and op not in _COMPARISON:
            raise _unsupported(f"the operator {op}")
        if node.modifier and node.modifier.card != pp.VectorMatchCardinality.OneToOne:
            raise _unsupported("group_left/group_right")
    if isinstance(node, pp.SubqueryExpr):
        raise _unsupported("a subquery")
    if isinstance(node, pp.VectorSelector) and node.matchers.or_matchers:
        raise _unsupported("'or' inside a selector")


def _unsupported(what: str) -> BadParameter:
    return BadParameter("query", f"{what} is not supported by tsgate's PromQL subset")


@dataclass
class Evaluator:
    """Evaluates one query at ``times_ms`` (one time for an instant query)."""

    source: Source
    start_ms: int
    end_ms: int
    step_ms: int
    limits: Limits = field(default_factory=Limits)
    instant: bool = False
    latest_ms: int = -(2**62)  # the newest data time any selector read

    @property
    def times(self) -> TimeArray:
        return np.arange(self.start_ms, self.end_ms + 1, max(1, self.step_ms), dtype=np.int64)

    async def run(self, expr: pp.Expr) -> Value:
        check(expr)  # refuse what is not supported before reading anything
        return await self._eval(expr)

    async def _eval(self, node: pp.Expr) -> Value:
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(self.times.size, float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.ParenExpr):
            return await self._eval(node.expr)
        if isinstance(node, pp.UnaryExpr):
            return _negate(await self._eval(node.expr))
        if isinstance(node, pp.BinaryExpr):
            return await self._binary(node)
        if isinstance(node, pp.VectorSelector):
            return await self._selector(node, None, None)
        if isinstance(node, pp.MatrixSelector):
            return await self._matrix(node)
        if isinstance(node, pp.Call):
            return await self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return await self._aggregate(node)
        if isinstance(node, pp.SubqueryExpr):
            raise _unsupported("a subquery")
        raise _unsupported(f"the expression {node}")

    # ---- selectors ------------------------------------------------------------------

    def _times_for(self, vs: pp.VectorSelector | pp.SubqueryExpr) -> TimeArray:
        times = self.times
        at = vs.at
        if at is not None:
            if at.type == pp.AtModifierType.Start:
                fixed = self.start_ms
            elif at.type == pp.AtModifierType.End:
                fixed = self.end_ms
            else:
                assert at.at is not None
                fixed = round(at.at.timestamp() * 1000)
            times = np.full(times.size, fixed, dtype=np.int64)
        if vs.offset is not None:
            times = times - round(vs.offset.total_seconds() * 1000)
        return times

    async def _refs(self, vs: pp.VectorSelector) -> list[SeriesRef]:
        refs = await self.source.select(matchers_of(vs))
        limit = self.limits.max_series
        if limit > 0 and len(refs) > limit:
            raise TooLarge(
                "max_points_per_request",
                f"the selector {vs} matches {len(refs)} series; at most {limit} per "
                "selector — narrow it with site=, point=~ or tags=~",
            )
        return refs

    def _level(self, times: TimeArray, range_ms: int | None, lookback_ms: int) -> str | None:
        step = int(times[1] - times[0]) if times.size > 1 else 0
        for name, width in sorted(self.source.levels.items(), key=lambda kv: -kv[1]):
            if int(times[0]) % width or step % width:
                continue
            if (range_ms is None and lookback_ms <= width) or (range_ms and range_ms % width == 0):
                return name
        return None

    def _check_span(self, refs: Sequence[SeriesRef], start_ms: int, end_ms: int) -> None:
        if end_ms - start_ms > self.limits.max_span_ms:
            days = (end_ms - start_ms) / 86_400_000
            raise TooLarge(
                "max_range_days",
                f"the query reads {days:.1f} days of data; at most "
                f"{self.limits.max_span_ms // 86_400_000} days",
            )
        self.latest_ms = max(self.latest_ms, end_ms)

    async def _selector(
        self, vs: pp.VectorSelector, range_ms: int | None, func: str | None
    ) -> Vector:
        refs = await self._refs(vs)
        if not refs:
            return Vector([])
        times = self._times_for(vs)
        lookback = max(r.lookback_ms for r in refs)
        level = self._level(times, range_ms, lookback)
        keep_name = func is None or func == "last"
        labels = [r.labels if keep_name else _drop_name(r.labels) for r in refs]
        if level is not None:
            values = await self._from_rollups(refs, times, level, range_ms, func)
        elif range_ms is not None and self._edges_level(times, range_ms) is not None:
            values = await self._from_edges(refs, int(times[0]), range_ms, func or "last")
            values = [np.full(times.size, v[0]) for v in values]
        else:
            values = await self._from_raw(refs, times, range_ms, func, lookback, vs)
        return Vector(list(zip(labels, values, strict=True)))

    async def _from_rollups(
        self,
        refs: Sequence[SeriesRef],
        times: TimeArray,
        level: str,
        range_ms: int | None,
        func: str | None,
    ) -> list[ValueArray]:
        width = self.source.levels[level]
        start = int(times.min()) - (range_ms if range_ms is not None else width)
        end = int(times.max())
        self._check_span(refs, start, end)
        found = await self.source.buckets(refs, level, start, end)
        cells = [windows.Cells.of_buckets(b) for b in found]
        if range_ms is None:
            return [
                windows.reduce(c, "last", times, width, fresh_ms=r.lookback_ms)
                for c, r in zip(cells, refs, strict=True)
            ]
        return [windows.reduce(c, func or "last", times, range_ms) for c in cells]

    async def _from_raw(
        self,
        refs: Sequence[SeriesRef],
        times: TimeArray,
        range_ms: int | None,
        func: str | None,
        lookback: int,
        vs: pp.VectorSelector,
    ) -> list[ValueArray]:
        window = range_ms if range_ms is not None else lookback
        start, end = int(times.min()) - window, int(times.max()) + 1
        self._check_span(refs, start, end)
        self._check_raw(refs, start, end, vs)
        series = await self.source.raw(refs, start, end)
        cells = [windows.Cells.of_series(s) for s in series]
        if range_ms is None:
            return [
                windows.reduce(c, "last", times, r.lookback_ms)
                for c, r in zip(cells, refs, strict=True)
            ]
        return [windows.reduce(c, func or "last", times, range_ms) for c in cells]

    def _edges_level(self, times: TimeArray, range_ms: int) -> str | None:
        """For one evaluation time (an instant query, or ``@``): the finest rollup level
        holding at least two whole buckets of the window, whose edges raw samples fill."""
        if int(times.min()) != int(times.max()):
            return None
        fitting = [(w, n) for n, w in self.source.levels.items() if range_ms >= 3 * w]
        return min(fitting)[1] if fitting else None

    async def _from_edges(
        self, refs: Sequence[SeriesRef], t: int, range_ms: int, func: str
    ) -> list[ValueArray]:
        """``(t - r, t]`` as raw head ``(t - r, a)``, whole buckets ``[a, b)`` and raw tail
        ``[b, t]``: an instant ``avg_over_time(x[365d])`` at any time reads 8,760 buckets
        and two hours of samples per point, not a year of samples."""
        level = self._edges_level(np.array([t], dtype=np.int64), range_ms)
        assert level is not None
        width = self.source.levels[level]
        first = t - range_ms + 1  # the window's first millisecond
        a = -(-first // width) * width
        b = (t + 1) // width * width
        self._check_span(refs, t - range_ms, t + 1)
        head = await self.source.raw(refs, first, a)
        middle = await self.source.buckets(refs, level, a, b)
        tail = await self.source.raw(refs, b, t + 1)
        times = np.array([t], dtype=np.int64)
        out = []
        for h, m, tl in zip(head, middle, tail, strict=True):
            cells = windows.Cells.joined(
                [
                    windows.Cells.of_series(h),
                    windows.Cells.of_buckets(m),
                    windows.Cells.of_series(tl),
                ]
            )
            out.append(windows.reduce(cells, func, times, range_ms))
        return out

    def _check_raw(
        self, refs: Sequence[SeriesRef], start_ms: int, end_ms: int, vs: pp.VectorSelector
    ) -> None:
        estimate = len(refs) * ((end_ms - start_ms) // RAW_SAMPLE_MS)
        if estimate > self.limits.max_raw_samples:
            raise TooLarge(
                "max_inline_samples",
                f"{vs} would read about {estimate:,} raw samples; at most "
                f"{self.limits.max_raw_samples:,} — align start and step to whole hours "
                "(ranges in whole hours too) so that hourly rollups answer, or shorten the range",
            )

    async def _matrix(self, node: pp.MatrixSelector) -> Matrix:
        if not self.instant:
            raise BadParameter(
                "query",
                'invalid expression type "range vector" for range query, '
                "must be Scalar or instant Vector",
            )
        vs = node.vector_selector
        refs = await self._refs(vs)
        t = int(self._times_for(vs)[0])
        range_ms = round(node.range.total_seconds() * 1000)
        self._check_span(refs, t - range_ms, t + 1)
        self._check_raw(refs, t - range_ms, t + 1, vs)
        series = await self.source.raw(refs, t - range_ms, t + 1)
        return Matrix(
            [(r.labels, s.crop(t - range_ms + 1, t + 1)) for r, s in zip(refs, series, strict=True)]
        )

    # ---- functions and aggregations -------------------------------------------------

    async def _call(self, node: pp.Call) -> Value:
        name = node.func.name
        if name in OVER_TIME:
            arg = node.args[0]
            if not isinstance(arg, pp.MatrixSelector):
                raise _unsupported(f"{name} over a subquery")
            range_ms = round(arg.range.total_seconds() * 1000)
            return await self._selector(arg.vector_selector, range_ms, OVER_TIME[name])
        if name == "time":
            return Scalar(self.times / 1000.0)
        args = [await self._eval(a) for a in node.args]
        if name == "vector" and isinstance(args[0], Scalar):
            return Vector([((), args[0].values)])
        if name == "scalar" and isinstance(args[0], Vector):
            items = args[0].items
            return Scalar(items[0][1] if len(items) == 1 else np.full(self.times.size, np.nan))
        if name in _MATH and isinstance(args[0], Vector):
            fn = _MATH[name]
            with np.errstate(all="ignore"):
                return Vector([(_drop_name(lb), fn(v)) for lb, v in args[0].items])
        if name in ("clamp_min", "clamp_max", "clamp") and isinstance(args[0], Vector):
            bounds = [a.values for a in args[1:] if isinstance(a, Scalar)]
            lo = bounds[0] if name != "clamp_max" else -math.inf
            hi = bounds[-1] if name != "clamp_min" else math.inf
            return Vector([(_drop_name(lb), np.clip(v, lo, hi)) for lb, v in args[0].items])
        raise _unsupported(f"the function {name}()")

    async def _aggregate(self, node: pp.AggregateExpr) -> Vector:
        op = str(node.op)
        if op not in _AGGREGATES or node.param is not None:
            raise _unsupported(f"the aggregation {op}")
        inner = await self._eval(node.expr)
        if not isinstance(inner, Vector):
            raise BadParameter("query", f"{op} needs an instant vector")
        groups: dict[Labels, list[ValueArray]] = {}
        for labels, values in inner.items:
            groups.setdefault(_group_key(labels, node.modifier), []).append(values)
        out = [(key, _combine(op, np.vstack(rows))) for key, rows in groups.items()]
        return Vector(sorted(out, key=lambda kv: kv[0]))

    # ---- binary operators -----------------------------------------------------------

    async def _binary(self, node: pp.BinaryExpr) -> Value:
        op = str(node.op).lower()
        if op not in _ARITHMETIC and op not in _COMPARISON:
            raise _unsupported(f"the operator {op}")
        lhs, rhs = await self._eval(node.lhs), await self._eval(node.rhs)
        bool_mode = bool(node.modifier and node.modifier.return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return Scalar(_apply(op, lhs.values, rhs.values, bool_mode, keep=lhs.values))
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return _vector_scalar(op, lhs, rhs.values, bool_mode, scalar_left=False)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return _vector_scalar(op, rhs, lhs.values, bool_mode, scalar_left=True)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            return _vector_vector(op, lhs, rhs, node.modifier, bool_mode)
        raise BadParameter("query", f"the operator {op} needs scalars or instant vectors")


def _drop_name(labels: Labels) -> Labels:
    return tuple(kv for kv in labels if kv[0] != NAME)


def _negate(value: Value) -> Value:
    if isinstance(value, Scalar):
        return Scalar(-value.values)
    if isinstance(value, Vector):
        return Vector([(_drop_name(lb), -v) for lb, v in value.items])
    raise BadParameter("query", "unary minus needs a scalar or an instant vector")


def _group_key(labels: Labels, modifier: pp.AggModifier | None) -> Labels:
    if modifier is None:
        return ()
    names = set(modifier.labels)
    if modifier.type == pp.AggModifierType.By:
        return freeze({k: v for k, v in labels if k in names})
    return freeze({k: v for k, v in labels if k not in names and k != NAME})


def _combine(op: str, rows: np.ndarray[Any, Any]) -> ValueArray:
    present = ~np.isnan(rows)
    count = present.sum(axis=0).astype(np.float64)
    none = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(rows, axis=0)
        mean = total / count
        if op == "sum":
            out = total
        elif op == "avg":
            out = mean
        elif op == "min":
            out = np.fmin.reduce(rows, axis=0)
        elif op == "max":
            out = np.fmax.reduce(rows, axis=0)
        elif op == "count":
            out = count
        elif op == "group":
            out = np.ones_like(count)
        else:  # stddev, stdvar: population, as Prometheus
            variance = np.nansum((rows - mean) ** 2, axis=0) / count
            out = variance if op == "stdvar" else np.sqrt(variance)
    return np.where(none, np.nan, out)


def _apply(
    op: str, a: ValueArray, b: ValueArray, bool_mode: bool, *, keep: ValueArray
) -> ValueArray:
    with np.errstate(all="ignore"):
        if op in _ARITHMETIC:
            result: ValueArray = _ARITHMETIC[op](a, b)
            return result
        truth = _COMPARISON[op](a, b)
        absent = np.isnan(a) | np.isnan(b)
        if bool_mode:
            return np.where(absent, np.nan, truth.astype(np.float64))
        return np.where(truth & ~absent, keep, np.nan)


def _vector_scalar(
    op: str, vec: Vector, scalar: ValueArray, bool_mode: bool, *, scalar_left: bool
) -> Vector:
    out = []
    for labels, v in vec.items:
        a, b = (scalar, v) if scalar_left else (v, scalar)
        result = _apply(op, a, b, bool_mode, keep=v)
        filtering = op in _COMPARISON and not bool_mode
        out.append((labels if filtering else _drop_name(labels), result))
    return Vector(out)


def _signature(labels: Labels, modifier: pp.BinModifier | None) -> Labels:
    matching = modifier.matching if modifier else None
    if matching is None:
        return _drop_name(labels)
    names = set(matching.labels)
    if matching.type == pp.LabelModifierType.Include:
        return tuple(kv for kv in labels if kv[0] in names)
    return tuple(kv for kv in labels if kv[0] not in names and kv[0] != NAME)


def _vector_vector(
    op: str, lhs: Vector, rhs: Vector, modifier: pp.BinModifier | None, bool_mode: bool
) -> Vector:
    if modifier is not None and modifier.card != pp.VectorMatchCardinality.OneToOne:
        raise _unsupported("group_left/group_right")
    right: dict[Labels, ValueArray] = {}
    for labels, values in rhs.items:
        key = _signature(labels, modifier)
        if key in right:
            raise BadParameter(
                "query", f"found duplicate series for the match group {dict(key)} on the right"
            )
        right[key] = values
    out, seen = [], set()
    for labels, values in lhs.items:
        key = _signature(labels, modifier)
        if key not in right:
            continue
        if key in seen:
            raise BadParameter(
                "query", f"found duplicate series for the match group {dict(key)} on the left"
            )
        seen.add(key)
        result = _apply(op, values, right[key], bool_mode, keep=values)
        filtering = op in _COMPARISON and not bool_mode
        out.append((labels if filtering else _drop_name(labels), result))
    return Vector(out)
