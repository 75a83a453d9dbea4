"""User-written text in the dashboard, shown as the text it is.

Streamlit renders Markdown (with its own directives: ``:red[...]``, ``:material/...:``,
emoji shortcodes, ``$LaTeX$``) in far more places than ``st.markdown``: titles, captions,
alerts, widget labels, metric labels and values, expander labels, image captions. A name
someone else chose (a run, an experiment, a variant, a tag, a param, a branch) or an error
message quoting one, put into any of them unescaped, can show a link that is not ours
("Session expired: sign in again") or load an image from the author's host (a tracking
pixel). Streamlit has no escape function, so this module is the one place that makes text
literal; every call that puts a user's string into rendered Markdown goes through it.

- :func:`md`: any text as literal Markdown text, on one line (every ASCII punctuation
  character backslash-escaped, which CommonMark defines as the literal character: no link,
  image, emphasis, heading, list, autolink, directive or formula survives).
- :func:`code`: text as an inline code span, whatever backticks it holds.
- :func:`notes`: a run's notes, Markdown on purpose (as MLflow renders a run's
  description), but no image loads: ``![alt](url)`` becomes a visible link the reader may
  choose to open. Raw HTML is escaped by Streamlit (``unsafe_allow_html`` is never set).
"""

from __future__ import annotations

import re
import string
from typing import Any

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_IMAGE = re.compile(r"(\\*)!\[")  # an image's start, with any backslashes before it
_BACKTICKS = re.compile(r"`+")
# GitHub's autolinks (``http://…``, ``www.…``, ``a@b.c``) are found in the text *after*
# escapes are read (checked in Chromium: an escaped URL in a name still became a link), so
# md breaks their patterns with an invisible word joiner: after a scheme's colon, after
# "www", around "@"
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)|(?<=@)", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def md(value: Any) -> str:
    """``value`` as text that Streamlit's Markdown shows literally, on one line."""
    text = _LINE_BREAKS.sub(" ", str(value)).strip()  # (leading spaces would start a code block)
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(_WORD_JOINER, text))


def code(value: Any) -> str:
    """``value`` as an inline code span (Markdown is not read inside one): fenced by one
    backtick more than the longest run of them it holds, padded so an edge backtick stays text."""
    text = _LINE_BREAKS.sub(" ", str(value))
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence} {text} {fence}" if "`" in text or not text.strip() else f"{fence}{text}{fence}"


def notes(value: Any) -> str:
    """A run's notes as the Markdown its author wrote, with every image made a link (no
    request leaves the reader's browser unless they click)."""
    def unimage(match: re.Match[str]) -> str:
        slashes = match.group(1)
        if len(slashes) % 2:  # ``\![``: an escaped "!" already, not an image
            return match.group(0)
        return f"{slashes}\\!["
    return _IMAGE.sub(unimage, str(value))
