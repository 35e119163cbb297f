"""Images and tables as files of the run directory: what tracker.log_image and tracker.log_table write.

An image is saved as a PNG (from a HxW or HxWxC array or tensor, a PIL image or a matplotlib figure), with a
PNG encoder of its own (zlib + struct) so that no imaging library is needed; a table as a CSV (from a list of
rows, a list of dicts, a dict of columns, or anything with `to_dict("list")` such as a pandas DataFrame).
The backends read those files back (the shipper, `runs sync`), never the objects.
"""

from __future__ import annotations

import csv
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def save_png(image: Any, dest: Path) -> tuple[int, int]:
    """Write `image` to `dest` as a PNG; returns (width, height)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(image, "savefig"):  # a matplotlib figure
        image.savefig(dest, dpi=100, bbox_inches="tight")
        return _png_size(dest.read_bytes())
    if hasattr(image, "save") and hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        image.save(dest, format="PNG")
        width, height = image.size
        return int(width), int(height)
    pixels = _as_uint8(image)
    dest.write_bytes(encode_png(pixels))
    return int(pixels.shape[1]), int(pixels.shape[0])


def encode_png(pixels: Any) -> bytes:
    """A HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) uint8 array as PNG bytes."""
    import numpy as np

    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = pixels.reshape(height, width * channels)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def _as_uint8(image: Any) -> Any:
    """An array or tensor as HxW[xC] uint8: floats are taken as 0..1 (clipped), CxHxW tensors transposed."""
    import numpy as np

    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = np.transpose(array, (1, 2, 0))  # CxHxW (torch's layout) -> HxWxC
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(f"an image must be HxW, HxWxC or CxHxW with 1, 3 or 4 channels, not {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        return (np.clip(np.nan_to_num(array), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def _png_size(png: bytes) -> tuple[int, int]:
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return 0, 0
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def table_rows(data: Any, columns: Sequence[str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) from a list of rows, a list of dicts, a dict of columns or a DataFrame-like object."""
    if hasattr(data, "to_dict") and not isinstance(data, Mapping):  # pandas (and alike)
        data = data.to_dict("list")
    if isinstance(data, Mapping):  # {column: values}
        names = [str(c) for c in (columns or list(data))]
        values = [list(data[c]) for c in (columns or list(data))]
        length = max((len(v) for v in values), default=0)
        rows = [[v[i] if i < len(v) else None for v in values] for i in range(length)]
        return names, rows
    rows_in = list(data)
    if rows_in and isinstance(rows_in[0], Mapping):
        names = [str(c) for c in (columns or dict.fromkeys(k for row in rows_in for k in row))]
        return names, [[row.get(c) for c in names] for row in rows_in]
    rows = [list(row) for row in rows_in]
    width = max((len(row) for row in rows), default=0)
    names = [str(c) for c in columns] if columns else [f"col{i}" for i in range(width)]
    return names, rows


def save_csv(columns: list[str], rows: list[list[Any]], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([[_cell(value) for value in row] for row in rows])


def _cell(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars, 0-d tensors
        try:
            return value.item()
        except (ValueError, RuntimeError):
            return str(value)
    return value


def confusion_image(matrix: Any, cell: int = 24) -> Any:
    """A confusion matrix (rows: true class, columns: predicted) as an RGB image array, drawn with NumPy
    alone: each cell a `cell`-pixel square, white (none of the row) to dark blue (all of it), one-pixel grey
    grid lines. Log it with tracker.log_image(confusion_image(m), "confusion_matrix")."""
    import numpy as np

    counts = np.asarray(matrix.cpu() if hasattr(matrix, "cpu") else matrix, dtype=np.float64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    white, blue = np.array([1.0, 1.0, 1.0]), np.array([0.03, 0.19, 0.42])
    colours = white + share[..., None] * (blue - white)  # n x n x 3
    image = np.kron(colours, np.ones((cell, cell, 1)))
    image[::cell, :, :] = 0.75  # grid lines
    image[:, ::cell, :] = 0.75
    return (image * 255 + 0.5).astype(np.uint8)
