"""Field types that every event schema shares, with the bounds readers rely on.

A value outside them would be written and then break every reader: a sha256 that is a
path (``xx/../../etc/passwd``) names a file outside the store; an integer past int64 or
a time past year 3000 overflows the Parquet columns compaction writes. Writers refuse
them; readers skip a line holding one and report it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

INT64_MAX = 2**63 - 1
LATEST_TS = 32_503_680_000.0  # 3000-01-01 UTC: later times are typos or unit mistakes (ms, ns)

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # lowercase hex, as hashlib writes it
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]  # sizes, row counts
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]  # metric steps, sequence numbers
Timestamp = Annotated[float, Field(ge=0.0, le=LATEST_TS, allow_inf_nan=False)]  # seconds since the epoch
