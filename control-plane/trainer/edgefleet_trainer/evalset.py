"""The eval-set file shipped to devices (mirrors shared/evalset.ts).

Little-endian: "EFEV", u32 version=1, u32 count, u32 channels, u32 height, u32 width,
u32 numClasses, count x u8 labels, count*C*H*W u8 pixels (NCHW). Model input = pixels/255.
"""
from __future__ import annotations

import struct
from typing import Tuple

import numpy as np

MAGIC = b"EFEV"
VERSION = 1
HEADER = struct.Struct("<4s6I")


def encode_evalset(x: np.ndarray, y: np.ndarray, num_classes: int) -> bytes:
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError("eval-set images must be uint8 N x C x H x W")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError("eval-set labels must be one per image")
    if not 1 <= num_classes <= 256 or (len(y) and (y.min() < 0 or y.max() >= num_classes)):
        raise ValueError("eval-set labels must be in 0..numClasses-1 with numClasses <= 256")
    n, c, h, w = x.shape
    return HEADER.pack(MAGIC, VERSION, n, c, h, w, num_classes) + y.astype(np.uint8).tobytes() + \
        np.ascontiguousarray(x).tobytes()


def decode_evalset(data: bytes) -> Tuple[np.ndarray, np.ndarray, int]:
    if len(data) < HEADER.size:
        raise ValueError("eval set truncated: no header")
    magic, version, n, c, h, w, k = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not an eval set (bad magic)")
    if version != VERSION:
        raise ValueError(f"unsupported eval-set version {version}")
    need = HEADER.size + n + n * c * h * w
    if len(data) != need:
        raise ValueError(f"eval set has {len(data)} bytes, header says {need}")
    y = np.frombuffer(data, np.uint8, n, HEADER.size).astype(np.int64)
    x = np.frombuffer(data, np.uint8, n * c * h * w, HEADER.size + n).reshape(n, c, h, w)
    return x, y, k


def write_evalset(path: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    with open(path, "wb") as f:
        f.write(encode_evalset(x, y, num_classes))


def write_refpred(path: str, pred: np.ndarray) -> None:
    """Reference top-1 predictions: one u8 class index per eval-set sample, in order."""
    if len(pred) and (pred.min() < 0 or pred.max() > 255):
        raise ValueError("class index out of u8 range")
    with open(path, "wb") as f:
        f.write(pred.astype(np.uint8).tobytes())
