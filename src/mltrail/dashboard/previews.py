"""What the Run page shows of an artifact, by its name's suffix: images, figures, JSON,
text, and the head of a table; anything else only downloads."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pyarrow.parquet as pq
import streamlit as st

from ..tracking.objects import IMAGE_SUFFIXES, PLOTLY_SUFFIX, TEXT_SUFFIXES
from .text import md

PREVIEW_MAX_BYTES = 5 << 20  # larger artifacts are offered for download only
TABLE_ROWS = 50
TEXT_CHARS = 20_000


def kind_of(name: str) -> str | None:
    """How an artifact is previewed: image, plotly, json, table, text, or None."""
    lower = name.lower()
    if lower.endswith(IMAGE_SUFFIXES):
        return "image"
    if lower.endswith(PLOTLY_SUFFIX):
        return "plotly"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".parquet"):
        return "table"
    if lower.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def show(name: str, path: Path, size: int) -> None:
    """A collapsed preview of one artifact (nothing for kinds without one, or past 5 MB)."""
    kind = kind_of(name)
    if kind is None or size > PREVIEW_MAX_BYTES:
        return
    with st.expander(f"Preview {md(name)}", expanded=kind == "image"):
        try:
            if kind == "image":
                st.image(str(path), caption=md(name))
            elif kind == "plotly":
                import plotly.io

                st.plotly_chart(plotly.io.from_json(path.read_text(encoding="utf-8")), key=f"plot-{name}")
            elif kind == "json":
                st.json(orjson.loads(path.read_bytes()), expanded=2)
            elif kind == "table":
                head = pq.ParquetFile(path).read_row_group(0).slice(0, TABLE_ROWS).to_pandas() \
                    if pq.ParquetFile(path).num_row_groups else pd.DataFrame()
                st.caption(f"the first {min(TABLE_ROWS, len(head))} of {pq.ParquetFile(path).metadata.num_rows:,} rows")
                st.dataframe(head, width="stretch")
            else:
                text = path.read_bytes()[:TEXT_CHARS * 4].decode("utf-8", errors="replace")[:TEXT_CHARS]
                st.code(text, language="markdown" if name.endswith(".md") else None)
        except ImportError as exc:  # a Plotly figure where plotly is not installed
            st.caption(f"no preview here ({md(exc.name)} is not installed): download it")
        except (ValueError, OSError) as exc:  # a file whose content does not match its name
            st.caption(f"no preview: {type(exc).__name__}: {md(exc)}")
