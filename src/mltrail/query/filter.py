"""MLflow's run filter language, parsed by a real grammar and applied to a DataFrame.

``metrics.f1 > 0.8 and params.C = '1.0' and tags.team LIKE 'gr%'`` as MLflow users
write it, plus what they have asked for: ``OR``, ``NOT``, parentheses and numeric
comparison of params and tags (``params.lr < 0.01``). Keys may be quoted with
backticks or double quotes (``metrics.`f1 score```). A run lacking a key never
matches a comparison on that key, ``!=`` included, as in MLflow.

``datasets.name``, ``datasets.digest`` and ``datasets.context`` compare the datasets a
run used (its inputs): a run matches when one of them does, ``!=`` and ``NOT IN``
included (``datasets.name != 'a'``: it used a dataset not named ``a``), and a run that
used none never does, as in MLflow; ``NOT (datasets.name = 'a')`` is a run that used no
dataset named ``a``. They take quoted text with ``=``, ``!=``, ``LIKE``, ``ILIKE``, ``IN``
and ``NOT IN``, as MLflow's do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from lark import Lark, Token, Transformer, UnexpectedInput, v_args

from ..errors import FilterSyntaxError
from ..storage.layout import is_unicode_text

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | "(" or_expr ")"
         | comparison
comparison: IDENT COMP_OP value             -> compare
          | IDENT LIKE_OP STRING            -> like
          | IDENT _IN "(" value ("," value)* ")"       -> is_in
          | IDENT _NOT _IN "(" value ("," value)* ")"  -> not_in
          | IDENT _IS _NULL                 -> is_null
          | IDENT _IS _NOT _NULL            -> not_null
?value: STRING | NUMBER

IDENT: /(attributes?|metrics?|params?|tags?|datasets?)\.(`[^`]+`|"[^"]+"|[^\s=!<>()',"`]+)/i
COMP_OP: "!=" | "<>" | ">=" | "<=" | "=" | "==" | ">" | "<"
LIKE_OP: /(not\s+)?i?like\b/i
STRING: /'(?:[^'\\]|\\.|'')*'/ | /"(?:[^"\\]|\\.)*"/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
_AND: /and\b/i
_OR: /or\b/i
_NOT: /not\b/i
_IN: /in\b/i
_IS: /is\b/i
_NULL: /null\b/i
%ignore /\s+/
"""

_ORDER_GRAMMAR = r"""
start: IDENT DIRECTION?
IDENT: /(attributes?|metrics?|params?|tags?)\.(`[^`]+`|"[^"]+"|[^\s`"]+)/i
DIRECTION: /asc\b/i | /desc\b/i
%ignore /\s+/
"""

_TERMINAL_NAMES = {
    "IDENT": "a key (metrics.x, params.x, tags.x, attributes.x, datasets.x)", "LPAR": "'('", "RPAR": "')'",
    "COMMA": "','", "_NOT": "NOT", "_AND": "AND", "_OR": "OR", "_IN": "IN", "_IS": "IS",
    "NUMBER": "a number", "STRING": "a quoted string", "COMP_OP": "a comparison (=, !=, <, >, ...)",
    "LIKE_OP": "LIKE", "_NULL": "NULL",
}
_PREFIXES = {"metric": "metrics", "metrics": "metrics", "param": "params", "params": "params",
             "tag": "tags", "tags": "tags", "attribute": "attributes", "attributes": "attributes",
             "dataset": "datasets", "datasets": "datasets"}
DATASET_FIELDS = ("name", "digest", "context")  # what a filter compares of a run's datasets (MLflow's)
ATTRIBUTES = {"run_id", "run_name", "status", "experiment", "start_time", "end_time", "run_seq", "parent_run_id"}
_TIME_ATTRIBUTES = {"start_time", "end_time"}


@dataclass(frozen=True)
class Column:
    """A filter's reference to a run field: ``metrics.f1`` is ``Column("metrics", "f1")``."""

    kind: str  # metrics, params, tags, attributes or datasets
    key: str

    @property
    def name(self) -> str:
        """The DataFrame column name search_runs uses for it."""
        return self.key if self.kind == "attributes" else f"{self.kind}.{self.key}"


def parse_column(text: str) -> Column:
    prefix, _, key = text.partition(".")
    if key[:1] in "`\"" and key[-1:] == key[:1]:
        key = key[1:-1]
    return Column(_PREFIXES[prefix.lower()], key)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


@lru_cache(maxsize=1)
def _order_parser() -> Lark:
    return Lark(_ORDER_GRAMMAR, parser="lalr")


def _literal(token: Token) -> str | float:
    if token.type == "NUMBER":
        return float(token)
    body = token[1:-1]
    if token[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


@v_args(inline=True)
class _ToPredicate(Transformer):
    """Turns the parse tree into a nested tuple: ("and", a, b), ("cmp", col, op, v), ..."""

    def or_expr(self, *parts):
        return ("or", *parts)

    def and_expr(self, *parts):
        return ("and", *parts)

    def negation(self, inner):
        return ("not", inner)

    def compare(self, ident, op, value):
        op = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return ("cmp", _checked(parse_column(ident), op, _literal(value)), op, _literal(value))

    def like(self, ident, op, value):
        words = str(op).lower().split()
        node = ("like", _dataset_checked(parse_column(ident), "LIKE", (_literal(value),)), words[-1] == "ilike",
                _literal(value))
        return ("has_not", node) if len(words) == 2 else node

    def is_in(self, ident, *values):
        literals = tuple(_literal(v) for v in values)
        return ("in", _dataset_checked(parse_column(ident), "IN", literals), literals)

    def not_in(self, ident, *values):
        literals = tuple(_literal(v) for v in values)
        return ("has_not", ("in", _dataset_checked(parse_column(ident), "NOT IN", literals), literals))

    def is_null(self, ident):
        return ("null", _dataset_checked(parse_column(ident), "IS NULL", ()))

    def not_null(self, ident):
        return ("not", ("null", _dataset_checked(parse_column(ident), "IS NOT NULL", ())))


class _SemanticError(Exception):
    pass


def _dataset_checked(column: Column, op: str, values: tuple[Any, ...]) -> Column:
    """A comparison on a run's datasets, as MLflow takes one: a known field, quoted text, and
    no ordering or NULL test (a run holds several datasets, or none)."""
    if column.kind != "datasets":
        return column
    if column.key not in DATASET_FIELDS:
        raise _SemanticError(f"datasets.{column.key} is not searchable; a run's datasets are searched by "
                             f"{', '.join('datasets.' + f for f in DATASET_FIELDS)}")
    if op not in ("=", "!=", "LIKE", "IN", "NOT IN"):
        hint = " (the runs that used no dataset: NOT datasets.name LIKE '%')" if "NULL" in op else ""
        raise _SemanticError(f"datasets.{column.key} takes =, !=, LIKE, ILIKE, IN or NOT IN, not {op}{hint}")
    if not all(isinstance(value, str) for value in values):
        raise _SemanticError(f"datasets.{column.key} must be compared with quoted text, not "
                             f"{next(v for v in values if not isinstance(v, str))!r}")
    return column


def _checked(column: Column, op: str, value: Any) -> Column:
    _dataset_checked(column, op, (value,))
    if column.kind == "metrics" and not isinstance(value, float):
        raise _SemanticError(f"metrics.{column.key} must be compared with a number, not {value!r}")
    if column.kind == "attributes" and column.key not in ATTRIBUTES:
        raise _SemanticError(
            f"unknown attribute {column.key!r}; known: {', '.join(sorted(ATTRIBUTES))}")
    if column.kind == "attributes" and column.key in _TIME_ATTRIBUTES:
        time_bound(column, value)  # a value that is no time is a mistake in the filter
    return column


def time_bound(column: Column, value: Any) -> pd.Timestamp:
    """The time a filter compares ``start_time`` or ``end_time`` with: a date string, or
    milliseconds since the epoch (MLflow's form). Naive times are UTC."""
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(value)
            return pd.Timestamp(value, unit="ms", tz="UTC")
        bound = pd.Timestamp(value)
        if bound is pd.NaT:
            raise ValueError(value)
        return bound.tz_localize("UTC") if bound.tzinfo is None else bound
    except (ValueError, OverflowError, TypeError, pd.errors.OutOfBoundsDatetime):
        raise _SemanticError(f"attributes.{column.key} must be compared with a time ('2026-11-27 10:00', or "
                             f"milliseconds since 1970), not {value!r}") from None


def parse_filter(text: str) -> Any:
    """Parse a filter into a predicate tree; raise FilterSyntaxError naming the position."""
    if not isinstance(text, str) or not is_unicode_text(text):
        raise FilterSyntaxError(repr(text), None, "the filter is not Unicode text (a byte no encoding maps)")
    try:
        tree = _parser().parse(text)
        predicate = _ToPredicate().transform(tree)
        _depth_checked(predicate)
        return predicate
    except RecursionError:
        raise FilterSyntaxError(text, None, "the filter nests NOTs or parentheses too deeply") from None
    except UnexpectedInput as exc:
        position = getattr(exc, "pos_in_stream", None)
        if position is None or position < 0:
            position = len(text)
        token = getattr(exc, "token", None)
        if token is not None and getattr(token, "type", "") == "$END":
            position, reason = len(text), "the filter ends too early"
        else:
            found = text[position:position + 12] or "end of input"
            reason = f"unexpected {found!r}"
        expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
        if expected:
            reason += "; expected " + " or ".join(_TERMINAL_NAMES.get(e, e) for e in expected[:8])
        raise FilterSyntaxError(text, position, reason) from None
    except Exception as exc:  # lark wraps errors raised inside the transformer
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, _SemanticError):
            raise FilterSyntaxError(text, None, str(inner)) from None
        raise


def _depth_checked(predicate: Any, depth: int = 0) -> None:
    """Refuse a predicate too deep to evaluate (evaluation recurses once a level)."""
    if depth > 200:
        raise RecursionError
    if predicate[0] in ("and", "or"):
        for part in predicate[1:]:
            _depth_checked(part, depth + 1)
    elif predicate[0] in ("not", "has_not"):
        _depth_checked(predicate[1], depth + 1)


def parse_order_by(clause: str) -> tuple[Column, bool]:
    """``"metrics.f1 DESC"`` → (Column("metrics", "f1"), ascending=False)."""
    try:
        tree = _order_parser().parse(clause)
    except UnexpectedInput as exc:
        raise FilterSyntaxError(clause, getattr(exc, "pos_in_stream", None),
                                "order_by takes '<prefix>.<key> [ASC|DESC]'") from None
    ident, *direction = tree.children
    return parse_column(str(ident)), not (direction and str(direction[0]).lower() == "desc")


def uses_datasets(predicate: Any) -> bool:
    """Whether a predicate compares a run's datasets somewhere."""
    if predicate[0] in ("and", "or"):
        return any(uses_datasets(part) for part in predicate[1:])
    if predicate[0] in ("not", "has_not"):
        return uses_datasets(predicate[1])
    return bool(predicate[1].kind == "datasets")


def evaluate(predicate: Any, frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` that satisfy ``predicate``."""
    kind = predicate[0]
    if kind == "and":
        mask = np.ones(len(frame), dtype=bool)
        for part in predicate[1:]:
            mask &= evaluate(part, frame)
        return mask
    if kind == "or":
        mask = np.zeros(len(frame), dtype=bool)
        for part in predicate[1:]:
            mask |= evaluate(part, frame)
        return mask
    if kind == "not":  # logical NOT: runs lacking the key match
        return ~evaluate(predicate[1], frame)
    if kind == "has_not":  # NOT LIKE, NOT IN: like !=, only runs that have the key
        negated: Column = predicate[1][1]
        if negated.kind == "datasets":
            return _any_dataset(predicate[1], frame, negate=True)
        present = frame[negated.name].notna().to_numpy() if negated.name in frame.columns else False
        return present & ~evaluate(predicate[1], frame)
    column: Column = predicate[1]
    if column.kind == "datasets":
        return _any_dataset(predicate, frame)
    series = frame[column.name] if column.name in frame.columns else pd.Series(
        [None] * len(frame), index=frame.index, dtype=object)
    return _leaf(predicate, column, series)


def _any_dataset(predicate: Any, frame: pd.DataFrame, negate: bool = False) -> np.ndarray:
    """Which runs have a dataset that satisfies ``predicate`` (its negation: ``NOT IN``,
    ``NOT LIKE``). The frame's ``datasets.<field>`` column holds each run's values, a tuple
    (a dataset without a context holds None there, which matches nothing)."""
    column: Column = predicate[1]
    if column.name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    cells = [cell if isinstance(cell, tuple) else () for cell in frame[column.name]]
    owner = np.repeat(np.arange(len(frame)), [len(cell) for cell in cells])
    values = pd.Series([value for cell in cells for value in cell], dtype=object)
    matched = _leaf(predicate, column, values)
    if negate:
        matched = values.notna().to_numpy() & ~matched
    found = np.zeros(len(frame), dtype=bool)
    found[owner[matched]] = True
    return found


def _leaf(predicate: Any, column: Column, series: pd.Series) -> np.ndarray:
    """Which values of ``series`` satisfy one comparison (a missing value satisfies none)."""
    kind = predicate[0]
    present = series.notna().to_numpy()
    if kind == "null":
        return ~present
    if kind == "like":
        _, _, insensitive, pattern = predicate
        regex = re.compile(_like_regex(str(pattern)), re.IGNORECASE if insensitive else 0)
        values = series.astype("string")
        return present & values.str.fullmatch(regex).fillna(False).to_numpy(dtype=bool)
    if kind == "in":
        values = predicate[2]
        if all(isinstance(v, float) for v in values) and column.kind != "attributes":
            return present & _numeric(series).isin(values).to_numpy()
        return present & series.astype("string").isin([_text(v) for v in values]).fillna(False).to_numpy(dtype=bool)
    _, _, op, value = predicate
    return present & _compare(column, series, op, value)


def _compare(column: Column, series: pd.Series, op: str, value: Any) -> np.ndarray:
    if column.key in _TIME_ATTRIBUTES and column.kind == "attributes":
        return _apply_op(series, op, time_bound(column, value))
    if column.kind == "metrics":
        return _apply_op(series.astype(float), op, value)
    numeric_value = value if isinstance(value, float) else _as_number(value)
    if isinstance(value, float) or (op not in ("=", "!=") and numeric_value is not None):
        return _apply_op(_numeric(series), op, numeric_value)
    return _apply_op(series.astype("string"), op, str(value))


def _apply_op(series: pd.Series, op: str, value: Any) -> np.ndarray:
    result = {"=": series.__eq__, "!=": series.__ne__, "<": series.__lt__, "<=": series.__le__,
              ">": series.__gt__, ">=": series.__ge__}[op](value)
    return result.fillna(False).to_numpy(dtype=bool) if hasattr(result, "fillna") else np.asarray(result, dtype=bool)


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _like_regex(pattern: str) -> str:
    """SQL LIKE (``%`` any run, ``_`` one character) as a regular expression."""
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(out)
