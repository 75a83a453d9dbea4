"""Assignment of units to variants: pure functions, no I/O, compatible with GrowthBook.

A web or mobile client using a GrowthBook SDK and mltrail put a user in the same
variant: the same FNV-1a 32-bit hashes (versions 1 and 2), the same bucket ranges and
the same namespaces, with strings hashed as JavaScript does (UTF-16 code units), so
ids outside the Basic Multilingual Plane match too. Tested against GrowthBook's own
cross-SDK cases (``tests/ab/data/growthbook-cases.json``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np

from ..errors import InvalidInputError

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF

Range = tuple[float, float]


class WeightsFallbackWarning(UserWarning):
    """Weights were unusable, so equal weights were used (GrowthBook's SDK behaviour)."""


def _code_units(text: str) -> list[int]:
    """The UTF-16 code units of a string, as JavaScript's charCodeAt sees them."""
    data = text.encode("utf-16-le", "surrogatepass")
    return [data[i] | data[i + 1] << 8 for i in range(0, len(data), 2)]


def fnv1a32(text: str) -> int:
    """The FNV-1a 32-bit hash of a string's UTF-16 code units."""
    value = _FNV_OFFSET
    # ASCII (the common case): each character is one code unit, equal to its byte
    for unit in text.encode("ascii") if text.isascii() else _code_units(text):
        value = ((value ^ unit) * _FNV_PRIME) & _MASK
    return value


@overload
def hash(seed: str, value: str, version: Literal[1, 2] = ...) -> float: ...  # noqa: A001
@overload
def hash(seed: str, value: str, version: int) -> float | None: ...  # noqa: A001


def hash(seed: str, value: str, version: int = 2) -> float | None:  # noqa: A001 - GrowthBook's name
    """A number in [0, 1) for ``value`` under ``seed``; None for an unknown version.

    Version 2: ``fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000``;
    version 1: ``fnv1a32(value + seed) % 1000 / 1000``.
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(n: int) -> list[float]:
    return [1.0 / n] * n if n > 0 else []


def check_weights(weights: Sequence[float], n: int | None = None) -> list[float]:
    """Weights as given if they are n non-negative numbers summing to 1, else a clear error."""
    values = [float(w) for w in weights]
    if n is not None and len(values) != n:
        raise InvalidInputError(f"{len(values)} weights for {n} variants")
    if any(w < 0 or w != w for w in values):
        raise InvalidInputError(f"weights must be non-negative numbers, not {values}")
    if abs(sum(values) - 1.0) > 1e-9:
        raise InvalidInputError(f"weights must sum to 1, not {sum(values):g} ({values})")
    return values


def bucket_ranges(n: int, coverage: float = 1.0, weights: Sequence[float] | None = None,
                  strict: bool = False) -> list[Range]:
    """The [start, end) range of each variant on [0, 1).

    Each range starts where the weights put it and covers ``coverage`` of its weight, so
    raising or lowering coverage never moves a unit from one variant to another. As in
    GrowthBook's SDKs, unusable weights (wrong count, sum off 1 by more than 0.01) fall
    back to equal weights, with a WeightsFallbackWarning; ``strict=True`` raises instead.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    equal = equal_weights(n)
    chosen = list(weights) if weights is not None else equal
    if strict and weights is not None:
        chosen = check_weights(weights, n)
    elif len(chosen) != n or not 0.99 <= sum(chosen) <= 1.01:
        warnings.warn(WeightsFallbackWarning(
            f"weights {chosen} unusable for {n} variations: using equal weights"), stacklevel=2)
        chosen = equal
    ranges = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(x: float, ranges: Sequence[Sequence[float]]) -> int:
    """The index of the range holding ``x``, or -1 (not in the experiment)."""
    for index, (start, end) in enumerate(ranges):
        if start <= x < end:
            return index
    return -1


def in_namespace(unit_id: str, namespace: tuple[str, float, float] | Sequence) -> bool:
    """Whether a unit falls in a namespace's [start, end) slice (mutually exclusive
    experiments take disjoint slices of one namespace)."""
    name, start, end = namespace
    n = hash("__" + name, unit_id, 1)
    return n is not None and start <= n < end


# -- vectorised, for simulations and batch jobs ---------------------------------------------


def _fnv_batch(units: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """FNV-1a of many strings given as a (count, max_len) array of code units."""
    values = np.full(len(units), _FNV_OFFSET, dtype=np.uint64)
    for position in range(units.shape[1]):
        live = lengths > position
        stepped = ((values ^ units[:, position]) * _FNV_PRIME) & _MASK
        values = np.where(live, stepped, values)
    return values


def _to_units(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [_code_units(t) for t in texts]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    units = np.zeros((len(encoded), int(lengths.max()) if len(encoded) else 0), dtype=np.uint64)
    for row, codes in enumerate(encoded):
        units[row, :len(codes)] = codes
    return units, lengths


def hash_batch(seed: str, values: Sequence[str]) -> np.ndarray:
    """Version-2 hashes of many values at once (the same numbers as :func:`hash`)."""
    units, lengths = _to_units([seed + v for v in values])
    first = _fnv_batch(units, lengths)
    digits = np.zeros((len(first), 10), dtype=np.uint64)
    rest = first.copy()
    for position in range(9, -1, -1):  # the decimal digits of str(first), right-aligned
        digits[:, position] = rest % 10 + ord("0")
        rest //= 10
    count = np.array([len(str(int(v))) for v in first], dtype=np.int64)
    values_ = np.full(len(first), _FNV_OFFSET, dtype=np.uint64)
    for position in range(10):
        live = position >= 10 - count
        stepped = ((values_ ^ digits[:, position]) * _FNV_PRIME) & _MASK
        values_ = np.where(live, stepped, values_)
    return (values_ % 10000).astype(np.float64) / 10000


def assign_batch(seed: str, unit_ids: Sequence[str], ranges: Sequence[Sequence[float]]) -> np.ndarray:
    """Variant index of each unit (-1: not in the experiment), vectorised."""
    x = hash_batch(seed, unit_ids)
    result = np.full(len(x), -1, dtype=np.int64)
    for index in range(len(ranges) - 1, -1, -1):  # the first matching range wins
        start, end = ranges[index]
        result = np.where((x >= start) & (x < end), index, result)
    return result
