"""``mlflow.Image``, as MLflow's: an image a table's cell (``log_table``) or ``log_image``
takes, made from a PIL image, a NumPy array or nested lists of pixels."""

from __future__ import annotations

import os
from typing import Any

from ..tracking.objects import pil_image


class Image:
    """An image from a PIL image or pixels: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA,
    integers 0-255 or floats 0-1 (an array, or nested lists)."""

    def __init__(self, image: Any) -> None:
        import numpy as np

        if isinstance(image, (list, tuple)):
            image = np.asarray(image)
        self._image = pil_image(image, "mlflow.Image")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL's."""
        width, height = self._image.size
        return int(width), int(height)

    def to_pil(self) -> Any:
        return self._image

    def to_array(self) -> Any:
        import numpy as np

        return np.array(self._image)

    def to_list(self) -> list[Any]:
        listed: list[Any] = self.to_array().tolist()
        return listed

    def resize(self, size: tuple[int, int]) -> Image:
        return Image(self._image.resize(size))

    def save(self, path: str | os.PathLike[str]) -> None:
        """As a file, in the format its suffix names (PNG for ``*.png``)."""
        self._image.save(os.fspath(path))
