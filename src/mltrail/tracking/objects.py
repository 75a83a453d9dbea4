"""Artifacts made from Python objects (``run.log_dict``, ``log_text``, ``log_table``,
``log_image``, ``log_figure``): each object becomes the bytes of a file a person or a
tool opens as it is (JSON, text, Parquet, PNG, Plotly's JSON), named by its suffix, and
the Run page previews it by that suffix."""

from __future__ import annotations

import io
from typing import Any

import orjson

from ..errors import InvalidInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
TEXT_SUFFIXES = (".txt", ".md", ".log", ".csv", ".tsv", ".yaml", ".yml", ".py", ".sql", ".html", ".diff")
PLOTLY_SUFFIX = ".plotly.json"


def dict_bytes(obj: Any, name: str) -> bytes:
    if not isinstance(obj, (dict, list)):
        raise InvalidInputError(f"log_dict({name!r}) needs a dict or a list, not {type(obj).__name__}")
    if not name.endswith(".json"):
        raise InvalidInputError(f"log_dict writes JSON: name the artifact *.json, not {name!r}")
    from ..query.cells import json_ready  # (imports pandas: only when a run logs a dict)

    try:
        return orjson.dumps(obj, default=json_ready, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                            | orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise InvalidInputError(f"log_dict({name!r}): {exc}") from None


def text_bytes(text: Any, name: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidInputError(f"log_text({name!r}) needs a str, not {type(text).__name__}")
    return text.encode("utf-8")


def table_bytes(frame: Any, name: str) -> bytes:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..query.frames import frame_to_arrow

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"log_table({name!r}) needs a pandas DataFrame, not {type(frame).__name__}")
    if not name.endswith(".parquet"):
        raise InvalidInputError(f"log_table writes Parquet: name the artifact *.parquet, not {name!r}")
    sink = io.BytesIO()
    try:
        pq.write_table(frame_to_arrow(frame), sink)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InvalidInputError(f"log_table({name!r}): a column Parquet cannot hold: {exc}") from None
    return sink.getvalue()


def pil_image(image: Any, what: str) -> Any:
    """A PIL image from a PIL image or a NumPy array: (H, W) grey, (H, W, 3) RGB or (H, W, 4)
    RGBA, uint8 0-255 or floats 0-1 (``what`` names the call in errors)."""
    import numpy as np
    from PIL import Image

    if isinstance(image, np.ndarray):
        array = image
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise InvalidInputError(f"{what}: an array of shape (H, W), (H, W, 3) or (H, W, 4), "
                                    f"not {array.shape}")
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.dtype.kind == "f":
            if np.isnan(array).any() or array.min() < 0 or array.max() > 1:
                raise InvalidInputError(f"{what}: float pixels must be within 0 and 1")
            array = (array * 255).round().astype(np.uint8)
        elif array.dtype != np.uint8:
            if array.min() < 0 or array.max() > 255:
                raise InvalidInputError(f"{what}: integer pixels must be within 0 and 255")
            array = array.astype(np.uint8)
        image = Image.fromarray(array)
    if not isinstance(image, Image.Image):
        raise InvalidInputError(f"{what} needs a NumPy array or a PIL image, not {type(image).__name__}")
    return image


def image_bytes(image: Any, name: str) -> bytes:
    """A PIL image, or a NumPy array: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8
    0-255 or floats 0-1; as the file format the name's suffix says (PNG by default)."""
    if not name.lower().endswith(IMAGE_SUFFIXES):
        raise InvalidInputError(f"log_image: name the artifact with an image suffix ({', '.join(IMAGE_SUFFIXES)}), "
                                f"not {name!r}")
    image = pil_image(image, f"log_image({name!r})")
    sink = io.BytesIO()
    kind = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(name[name.rfind("."):].lower())
    image.convert("RGB").save(sink, format=kind) if kind else image.save(sink, format=name.rsplit(".", 1)[-1].upper())
    return sink.getvalue()


def figure_bytes(figure: Any, name: str) -> bytes:
    """A matplotlib figure as PNG (or any format matplotlib writes, by the suffix), a
    Plotly figure as its JSON (``*.plotly.json``, which the Run page draws)."""
    module = type(figure).__module__
    if module.startswith("plotly"):
        if not name.endswith(PLOTLY_SUFFIX):
            raise InvalidInputError(f"log_figure: name a Plotly figure *{PLOTLY_SUFFIX}, not {name!r}")
        return figure.to_json().encode("utf-8")
    if module.startswith("matplotlib") and hasattr(figure, "savefig"):
        sink = io.BytesIO()
        figure.savefig(sink, format=name.rsplit(".", 1)[-1].lower() if "." in name else "png", bbox_inches="tight")
        return sink.getvalue()
    raise InvalidInputError(f"log_figure({name!r}) takes a matplotlib or a Plotly figure, not {type(figure).__name__}")
