"""The display size of a local video (mp4/mov via ``tkhd``, webm via EBML), without decoders.

Used to default a task's screen size to the driving video's own, instead of 1080×1920 always.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_MAX_BOXES = 10_000


def video_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed (rotation applied), or None when not found."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0)
            if head == b"\x1a\x45\xdf\xa3":
                return _webm_size(f)
            return _mp4_size(f, path.stat().st_size)
    except (OSError, struct.error, ValueError):
        return None


# --- ISO BMFF (mp4, mov) -------------------------------------------------------------------------

def _boxes(f: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in [start, end)."""
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end and len(out) < _MAX_BOXES:
        f.seek(pos)
        header = f.read(16)
        if len(header) < 8:
            break
        size, kind = struct.unpack(">I4s", header[:8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", header[8:16])[0]
            hdr = 16
        elif size == 0:
            size = end - pos
        if size < hdr:
            break
        out.append((kind, pos + hdr, min(end, pos + size)))
        pos += size
    return out


def _child(f: BinaryIO, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _boxes(f, start, end):
        if k == kind:
            return s, e
    return None


def _mp4_size(f: BinaryIO, file_size: int) -> tuple[int, int] | None:
    moov = _child(f, 0, file_size, b"moov")
    if moov is None:
        return None
    for kind, s, e in _boxes(f, *moov):
        if kind != b"trak":
            continue
        mdia = _child(f, s, e, b"mdia")
        hdlr = _child(f, *mdia, b"hdlr") if mdia else None
        if hdlr is None:
            continue
        f.seek(hdlr[0] + 8)
        if f.read(4) != b"vide":
            continue
        tkhd = _child(f, s, e, b"tkhd")
        if tkhd is None:
            continue
        f.seek(tkhd[0])
        version = f.read(1)[0]
        f.seek(tkhd[0] + (36 if version == 1 else 24) + 16)
        a, b, _u, c, d, _v, _x, _y, _w = struct.unpack(">9i", f.read(36))
        width, height = struct.unpack(">II", f.read(8))
        width, height = width >> 16, height >> 16
        if a == 0 and d == 0 and b != 0 and c != 0:  # rotated 90 or 270 degrees
            width, height = height, width
        if width and height:
            return width, height
    return None


# --- EBML (webm) ---------------------------------------------------------------------------------

_SEGMENT, _TRACKS, _TRACK_ENTRY, _VIDEO = 0x18538067, 0x1654AE6B, 0xAE, 0xE0
_PIXEL_WIDTH, _PIXEL_HEIGHT, _DISPLAY_WIDTH, _DISPLAY_HEIGHT = 0xB0, 0xBA, 0x54B0, 0x54BA


def _vint(f: BinaryIO, keep_marker: bool) -> tuple[int, int]:
    first = f.read(1)
    if not first:
        raise ValueError("end of file")
    b = first[0]
    length = 1
    while length <= 8 and not b & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad vint")
    value = b if keep_marker else b & (0xFF >> length)
    for byte in f.read(length - 1):
        value = (value << 8) | byte
    return value, length


def _webm_size(f: BinaryIO) -> tuple[int, int] | None:
    f.seek(0, 2)
    end = f.tell()
    f.seek(0)
    pixel: dict[int, int] = {}
    stack = [end]
    for _ in range(_MAX_BOXES):
        pos = f.tell()
        while stack and pos >= stack[-1]:
            stack.pop()
        if not stack:
            break
        ident, _ = _vint(f, keep_marker=True)
        size, size_len = _vint(f, keep_marker=False)
        data_start = f.tell()
        unknown = size == (1 << (7 * size_len)) - 1
        if ident in (_SEGMENT, _TRACKS, _TRACK_ENTRY, _VIDEO):
            stack.append(end if unknown else data_start + size)
            continue
        if ident in (_PIXEL_WIDTH, _PIXEL_HEIGHT, _DISPLAY_WIDTH, _DISPLAY_HEIGHT) and size <= 8:
            pixel[ident] = int.from_bytes(f.read(size), "big")
            if _PIXEL_WIDTH in pixel and _PIXEL_HEIGHT in pixel and ident == _PIXEL_HEIGHT:
                w = pixel.get(_DISPLAY_WIDTH, pixel[_PIXEL_WIDTH])
                h = pixel.get(_DISPLAY_HEIGHT, pixel[_PIXEL_HEIGHT])
                return (w, h) if w and h else None
        if unknown:
            return None
        f.seek(data_start + size)
    if _PIXEL_WIDTH in pixel and _PIXEL_HEIGHT in pixel:
        return pixel[_PIXEL_WIDTH], pixel[_PIXEL_HEIGHT]
    return None
