"""Describing a dataset file: hash, size, and rows and columns when it is a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import InvalidInputError
from ..storage.blobs import file_sha256


def describe_dataset(path: Path) -> dict[str, Any]:
    """sha256 and size of a file; rows and columns for .csv, .tsv and Parquet files
    (Parquet is recognised by its magic bytes too: a saved training set is a blob
    without a suffix)."""
    if not path.is_file():
        raise InvalidInputError(f"dataset {str(path)!r} is not a file")
    sha256, size = file_sha256(path)
    info: dict[str, Any] = {"sha256": sha256, "size": size}
    suffix = path.suffix.lower()
    with open(path, "rb") as handle:
        parquet = handle.read(4) == b"PAR1"
    try:
        if suffix == ".parquet" or parquet:
            meta = pq.ParquetFile(path)
            info.update(rows=meta.metadata.num_rows, columns=meta.schema_arrow.names)
        elif suffix in (".csv", ".tsv"):
            parse = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            reader = pacsv.open_csv(path, parse_options=parse)
            info["columns"] = reader.schema.names
            info["rows"] = sum(batch.num_rows for batch in reader)
    except (pa.ArrowInvalid, OSError):
        pass  # not parseable as a table: recorded as a plain file
    return info
