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


def describe_memory(data: Any) -> dict[str, Any]:
    """sha256 of a DataFrame's or an array's content (values and, for a frame, column
    names and types), its size in bytes, rows, and columns (named, or numbered)."""
    import hashlib

    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
        digest.update(repr([(str(c), str(t)) for c, t in data.dtypes.items()]).encode())
        return {"sha256": digest.hexdigest(), "size": int(data.memory_usage(deep=True).sum()),
                "rows": len(data), "columns": [str(c) for c in data.columns]}
    try:
        array = np.ascontiguousarray(np.asarray(data))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"a dataset in memory is a DataFrame or an array, not {type(data).__name__}") from exc
    if array.dtype == object:
        raw = repr(array.tolist()).encode()
    else:
        raw = array.tobytes()
    digest = hashlib.sha256(raw)
    digest.update(f"{array.dtype}{array.shape}".encode())
    columns = [str(i) for i in range(array.shape[1])] if array.ndim == 2 else None
    return {"sha256": digest.hexdigest(), "size": int(array.nbytes),
            "rows": int(array.shape[0]) if array.ndim else 1, "columns": columns}


def mlflow_description(row: dict[str, Any]) -> dict[str, Any]:
    """A dataset row of the store (``get_run``'s ``datasets``) as MLflow describes a dataset:
    ``name``, ``digest``, ``source_type``, ``source``, ``schema``, ``profile`` and the input's
    ``tags`` in the order logged. What MLflow's client logged is given back as it was; a
    dataset mltrail logged gets the first 8 hex digits of its sha256 as its digest, its path
    as its source and its context as MLflow's ``mlflow.data.context`` tag."""
    import orjson

    logged = orjson.loads(row["mlflow"]) if isinstance(row.get("mlflow"), str) else {}
    tags = {str(k): str(v) for k, v in (logged.get("tags") or {}).items()}
    if not tags and isinstance(row.get("context"), str):
        tags = {"mlflow.data.context": row["context"]}
    return {"name": row["name"], "digest": logged.get("digest") or str(row.get("sha256") or "")[:8],
            "source_type": logged.get("source_type") or "local",
            "source": logged.get("source") or str(row.get("path") or ""),
            "schema": logged.get("schema"), "profile": logged.get("profile"), "tags": tags}
