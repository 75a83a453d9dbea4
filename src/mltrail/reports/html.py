"""A report as one HTML file to send to people without the dashboard: its prose as HTML
(CommonMark, raw HTML in the prose escaped), its tables, and its charts drawn as SVG by
Vega-Lite's own renderer (vl-convert: ``pip install 'mltrail[report]'``). The file holds
everything: it opens offline, with no script and no request."""

from __future__ import annotations

import html
import time
from typing import Any

import altair as alt
import pandas as pd
from markdown_it import MarkdownIt

from ..errors import InvalidInputError
from .blocks import Prose
from .render import Charts, Piece, Problem, Table, Value

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2933; line-height: 1.5; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #d9dde3; padding: .25rem .6rem; text-align: left; }
th { background: #f3f5f8; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; } figcaption, .caption { color: #5f6b7a; font-size: .85rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } .charts svg { max-width: 100%; height: auto; }
.value { font-size: 2rem; font-weight: 600; } .problem { background: #fff4e5; border-left: 4px solid #f0a020;
padding: .5rem 1rem; } pre { background: #f3f5f8; padding: .5rem; overflow-x: auto; }
footer { margin-top: 3rem; color: #8a94a3; font-size: .8rem; }
"""


def svg(chart: Any) -> str:
    """An Altair chart as SVG, drawn here (no browser, no network)."""
    try:
        import vl_convert
    except ImportError:
        raise InvalidInputError("a report's charts are drawn into its HTML by vl-convert: "
                                "pip install 'mltrail[report]'") from None
    with alt.data_transformers.disable_max_rows():
        spec = chart.properties(width=420).to_dict()
    return str(vl_convert.vegalite_to_svg(spec))


def to_html(pieces: list[Piece], title: str, source: str = "") -> str:
    """The whole report as an HTML document. ``source``: where it was read (the footer's)."""
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    body: list[str] = []
    for piece in pieces:
        if isinstance(piece, Prose):
            body.append(markdown.render(piece.text))
        elif isinstance(piece, Table):
            body.append(_titled(piece.title) + _table(piece.frame) + _caption(piece.caption))
        elif isinstance(piece, Charts):
            drawn = "".join(f'<div class="chart">{svg(chart)}</div>' for chart in piece.charts)
            body.append(f'<figure>{_titled(piece.title)}<div class="charts">{drawn}</div>'
                        f'<figcaption>{html.escape(piece.caption)}</figcaption></figure>')
        elif isinstance(piece, Value):
            body.append(f'{_titled(piece.title)}<div class="value">{html.escape(piece.text)}</div>'
                        + _caption(piece.caption))
        elif isinstance(piece, Problem):
            body.append(f'<div class="problem">{html.escape(piece.text)}</div>')
    made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    footer = f"Rendered by mltrail on {made}" + (f" from {html.escape(source)}" if source else "")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<footer>{footer}</footer>\n</body></html>\n")


def _titled(title: str) -> str:
    return f"<h4>{html.escape(title)}</h4>" if title else ""


def _caption(text: str) -> str:
    return f'<p class="caption">{html.escape(text)}</p>' if text else ""


def _table(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:,.6g}")
    shown = shown.astype(object).where(shown.notna(), "")  # (pandas' <NA> is no reader's value)
    return shown.to_html(index=False, escape=True, border=0)
