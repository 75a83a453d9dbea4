"""Globally unique, time-sortable identifiers (the ULID layout).

48 bits of milliseconds since the epoch, then 80 random bits, written as 26 characters
of Crockford base32, so that IDs sort by creation time as plain strings. Two git
branches can create IDs at the same moment without coordination: no counter is shared.
Within one process IDs are strictly increasing even inside one millisecond.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"  # an ID as new_id writes it (48 bits of time lead)
_lock = threading.Lock()
_last = 0


def new_id() -> str:
    """A new 26-character, time-sortable, globally unique ID."""
    global _last
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    with _lock:
        if value <= _last:  # same millisecond: keep the process's IDs increasing
            value = _last + 1
        _last = value
    return _encoded(value)


def id_at(milliseconds: int, seed: str) -> str:
    """The ID of something made elsewhere at ``milliseconds`` (since the epoch): its 80
    random bits are the first 80 bits of ``seed``'s sha256, so the same thing (an MLflow
    run imported twice, from two clones) always gets the same ID, and it sorts by the
    time it was made, not by when it was imported."""
    if not 0 <= milliseconds < 1 << 48:
        raise ValueError(f"{milliseconds} ms is outside the 48 bits an ID's time has")
    random_bits = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:10], "big")
    return _encoded((milliseconds << 80) | random_bits)


def _encoded(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def id_hex(identifier: str) -> str:
    """The 128 bits of an ID as 32 lowercase hex digits (the form MLflow's model IDs
    take after ``m-``): sorts by time as the ID does."""
    value = 0
    for ch in identifier:
        value = value * 32 + _ALPHABET.index(ch)
    return format(value, "032x")


def id_time(identifier: str) -> float:
    """The creation time (seconds since the epoch) encoded in an ID."""
    value = 0
    for ch in identifier[:10]:
        value = value * 32 + _ALPHABET.index(ch)
    return (value >> 0) / 1000.0
