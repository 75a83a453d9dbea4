"""Reading the derived Parquet tables that the manifest lists."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..compaction.manifest import Manifest, load_manifest
from ..compaction.schemas import TABLE_SCHEMAS


def read_table(tables_dir: Path, name: str, manifest: Manifest | None = None,
               columns: list[str] | None = None, filter: ds.Expression | None = None) -> pa.Table:
    """One derived table; empty (with its schema) if nothing was compacted yet.

    A concurrent compaction may replace files between reading the manifest and opening
    them; the read then starts over from the new manifest.
    """
    schema = TABLE_SCHEMAS[name]
    for attempt in range(5):
        current = manifest if manifest is not None and attempt == 0 else load_manifest(tables_dir)
        files = [str(tables_dir / rel) for rel in current.tables.get(name, [])]
        if not files:
            table = schema.empty_table()
            return table.select(columns) if columns else table
        try:
            if len(files) == 1 and filter is None:
                return pq.read_table(files[0], columns=columns, schema=schema)
            return ds.dataset(files, schema=schema, format="parquet").to_table(
                columns=columns, filter=filter)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"derived table {name!r} kept changing while being read")
