"""Tiny valid PNG files without Pillow: solid-colour RGB images encoded with zlib."""
from __future__ import annotations

import struct
import zlib
from functools import lru_cache

#: Larger images are written at this size per side: the fake's files only have to be
#: valid PNGs of the right colour, and a full 2048x2048 encode would cost real CPU time.
MAX_SIDE = 256


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@lru_cache(maxsize=64)
def solid_png(width: int, height: int, color: int) -> bytes:
    """A `width`x`height` (capped at MAX_SIDE) PNG filled with the 0xRRGGBB `color`."""
    w = max(1, min(int(width), MAX_SIDE))
    h = max(1, min(int(height), MAX_SIDE))
    rgb = bytes(((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF))
    row = b"\x00" + rgb * w
    raw = row * h
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 1))
        + _chunk(b"IEND", b"")
    )
