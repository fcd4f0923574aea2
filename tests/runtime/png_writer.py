"""A tiny PNG encoder for tests: any filter type per row, any bit depth, palettes, small IDAT chunks, Adam7."""
import struct
import zlib

import numpy as np

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _row_bytes(values: np.ndarray, depth: int) -> np.ndarray:
    """(h, w*channels) sample values -> (h, row_bytes) packed bytes."""
    if depth == 16:
        return values.astype(">u2").view(np.uint8).reshape(len(values), -1)
    if depth == 8:
        return values.astype(np.uint8)
    bits = np.unpackbits(values.astype(np.uint8)[..., None], axis=-1)[..., 8 - depth:].reshape(len(values), -1)
    return np.packbits(bits, axis=1)  # pads the last byte with zeros


def _filter(raw: np.ndarray, kinds, unit: int) -> bytes:
    out = bytearray()
    prev = np.zeros(raw.shape[1], np.int32)
    for row, kind in zip(raw.astype(np.int32), kinds):
        a = np.concatenate([np.zeros(unit, np.int32), row[:-unit]])
        c = np.concatenate([np.zeros(unit, np.int32), prev[:-unit]])
        b = prev
        if kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        else:
            pred = [np.zeros_like(row), a, b, (a + b) // 2][kind]
        out.append(kind)
        out += ((row - pred) % 256).astype(np.uint8).tobytes()
        prev = row
    return bytes(out)


def encode_png(pixels: np.ndarray, color_type: int, depth: int = 8, filters="cycle", palette=None,
               chunk_size: int = 0, interlace: bool = False, level: int = 6) -> bytes:
    """``pixels``: (h, w) or (h, w, channels) sample values. ``filters``: "cycle" (0..4 by row) or an int."""
    h, w = pixels.shape[:2]
    values = pixels.reshape(h, w * CHANNELS[color_type])
    unit = max(1, CHANNELS[color_type] * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    stream = bytearray()
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        raw = _row_bytes(sub.reshape(sub.shape[0], -1), depth)
        kinds = [(i % 5) if filters == "cycle" else filters for i in range(len(raw))]
        stream += _filter(raw, kinds, unit)
    del values
    data = zlib.compress(bytes(stream), level)
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    out += _chunk(b"tEXt", b"Comment\x00made by the bcedge tests")
    if palette is not None:
        out += _chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    size = chunk_size or len(data)
    for start in range(0, len(data), size):
        out += _chunk(b"IDAT", data[start:start + size])
    out += _chunk(b"IEND", b"")
    return bytes(out)
