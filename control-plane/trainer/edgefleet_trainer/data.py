"""Datasets: built-in Fashion-MNIST, user IDX (gz or raw) and NPZ; validated, split, batched.

Images are kept as uint8 N x C x H x W; the model input is pixels / 255 as float32.
"""
from __future__ import annotations

import gzip
import os
import struct
import zipfile
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
import torch

from .errors import bad_dataset
from .spec import DatasetSpec

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass
class Split:
    x: np.ndarray  # uint8 N x C x H x W
    y: np.ndarray  # int64 N


@dataclass
class Dataset:
    train: Split
    val: Optional[Split]
    test: Split
    num_classes: int
    name: str

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        _, c, h, w = self.train.x.shape
        return (c, h, w)


def read_idx(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise bad_dataset(f"{path}: file not found")
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:  # type: ignore[operator]
            data = f.read()
    except OSError as e:
        raise bad_dataset(f"{path}: cannot read ({e})")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise bad_dataset(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise bad_dataset(f"{path}: IDX header truncated")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise bad_dataset(f"{path}: IDX body has {len(body)} bytes, header {list(dims)} needs {need}")
    return np.frombuffer(body, dtype=dtype).reshape(dims).copy()  # writable: torch.from_numpy wants it


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def normalize_images(x: np.ndarray, where: str) -> np.ndarray:
    """Accept N x H x W or N x C x H x W, uint8 or float in [0,1] / [0,255]; return uint8 NCHW."""
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim != 4:
        raise bad_dataset(f"{where}: images must be N x H x W or N x C x H x W, got shape {list(x.shape)}")
    n, c, h, w = x.shape
    if c not in (1, 3) and x.shape[3] in (1, 3):
        raise bad_dataset(f"{where}: images look channels-last {list(x.shape)}; expected N x C x H x W")
    if c < 1 or c > 4 or h < 8 or w < 8:
        raise bad_dataset(f"{where}: image shape {list(x.shape)} not supported (C 1..4, H and W >= 8)")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise bad_dataset(f"{where}: images contain NaN or infinity")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 255.0:
            raise bad_dataset(f"{where}: float pixels must be in [0,1] or [0,255] (got {lo:.3g}..{hi:.3g})")
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.rint(x.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise bad_dataset(f"{where}: integer pixels must be in 0..255")
        return x.astype(np.uint8)
    raise bad_dataset(f"{where}: images must be uint8 or float32, got {x.dtype}")


def normalize_labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise bad_dataset(f"{where}: labels must be a 1-D array of class indexes, got shape {list(y.shape)}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise bad_dataset(f"{where}: labels must be integers (found non-integer values)")
    elif not np.issubdtype(y.dtype, np.integer):
        raise bad_dataset(f"{where}: labels must be integers, got {y.dtype}")
    if y.size and y.min() < 0:
        raise bad_dataset(f"{where}: labels out of range: found {int(y.min())} (must be >= 0)")
    if y.size and y.max() > 255:
        raise bad_dataset(f"{where}: labels out of range: found {int(y.max())} (at most 256 classes, 0..255)")
    return y.astype(np.int64)


def _pair(x: np.ndarray, y: np.ndarray, where: str) -> Split:
    xs = normalize_images(x, f"{where} images")
    ys = normalize_labels(y, f"{where} labels")
    if xs.shape[0] != ys.shape[0]:
        raise bad_dataset(f"{where}: {xs.shape[0]} images but {ys.shape[0]} labels")
    return Split(xs, ys)


def _load_npz(path: str) -> Tuple[Split, Split]:
    if not os.path.isfile(path):
        raise bad_dataset(f"{path}: file not found")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise bad_dataset(f"{path}: not a readable .npz file ({e})")
    keys = set(z.files)
    if {"x", "y"} <= keys:
        full = _pair(z["x"], z["y"], f"{path}")
        if {"x_test", "y_test"} <= keys:
            return full, _pair(z["x_test"], z["y_test"], f"{path} (test)")
        return _holdout(full, 0.2, seed=1234)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        return (_pair(z["x_train"], z["y_train"], f"{path} (train)"),
                _pair(z["x_test"], z["y_test"], f"{path} (test)"))
    raise bad_dataset(f"{path}: expected arrays 'x' and 'y' (found {sorted(keys)})")


def _holdout(s: Split, frac: float, seed: int) -> Tuple[Split, Split]:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(s.y))
    n_hold = max(1, int(round(len(idx) * frac)))
    return Split(s.x[idx[n_hold:]], s.y[idx[n_hold:]]), Split(s.x[idx[:n_hold]], s.y[idx[:n_hold]])


def _take(s: Split, n: Optional[int], rng: np.random.Generator) -> Split:
    if n is None or n >= len(s.y):
        return s
    idx = np.sort(rng.permutation(len(s.y))[:n])
    return Split(s.x[idx], s.y[idx])


def load_dataset(spec: DatasetSpec, *, seed: int, validation_split: float, batch_size: int,
                 train_samples: Optional[int] = None, test_samples: Optional[int] = None) -> Dataset:
    if spec.kind == "fashion-mnist":
        root = spec.path or FASHION_MNIST_DIR
        f = lambda n: os.path.join(root, n)  # noqa: E731
        train = _pair(read_idx(f("train-images-idx3-ubyte.gz")), read_idx(f("train-labels-idx1-ubyte.gz")), "train")
        test = _pair(read_idx(f("t10k-images-idx3-ubyte.gz")), read_idx(f("t10k-labels-idx1-ubyte.gz")), "test")
        name = "fashion-mnist"
    elif spec.kind == "idx":
        assert spec.train_images and spec.train_labels and spec.test_images and spec.test_labels
        train = _pair(read_idx(spec.train_images), read_idx(spec.train_labels), "train")
        test = _pair(read_idx(spec.test_images), read_idx(spec.test_labels), "test")
        name = "idx"
    else:
        assert spec.path
        train, test = _load_npz(spec.path)
        name = os.path.basename(spec.path)
    if train.x.shape[1:] != test.x.shape[1:]:
        raise bad_dataset(f"train images {list(train.x.shape[1:])} and test images {list(test.x.shape[1:])} differ in shape")

    rng = np.random.default_rng(seed)
    train = _take(train, train_samples, rng)
    test = _take(test, test_samples, rng)
    num_classes = int(max(train.y.max(initial=0), test.y.max(initial=0))) + 1
    if num_classes < 2:
        raise bad_dataset("need at least 2 classes in the labels")
    if test.y.size and test.y.max() >= num_classes:
        raise bad_dataset("test labels out of range")
    counts = np.bincount(train.y, minlength=num_classes)
    if counts.min() < 2:
        missing = [int(i) for i in np.nonzero(counts < 2)[0][:10]]
        raise bad_dataset(f"too few samples: classes {missing} have fewer than 2 training samples "
                          f"(labels must be 0..{num_classes - 1} with every class present)")
    val = None
    if validation_split > 0:
        train, val = _holdout(train, validation_split, seed)
    if len(train.y) < batch_size:
        raise bad_dataset(f"too few samples: {len(train.y)} training samples is less than one batch ({batch_size}); "
                          f"lower training.batchSize or add data")
    if len(test.y) < 1:
        raise bad_dataset("test split is empty")
    return Dataset(train, val, test, num_classes, name)


def to_input(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float().div_(255.0)


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Per-sample random translation (pad + crop) and horizontal flip, on a float NCHW batch."""
    n, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    ih = (oy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    rows = torch.gather(xp, 2, ih.expand(n, c, h, w + 2 * pad))
    iw = (ox[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    out = torch.gather(rows, 3, iw.expand(n, c, h, w))
    if flip:
        m = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        out = torch.where(m[:, None, None, None], out.flip(3), out)
    return out


def batches(split: Split, batch_size: int, *, device: torch.device, shuffle: bool,
            gen: Optional[torch.Generator] = None, drop_last: bool = False,
            aug: bool = False) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    n = len(split.y)
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    x_all = torch.from_numpy(split.x)
    y_all = torch.from_numpy(split.y)
    stop = n - (n % batch_size) if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        xb = to_input(x_all[idx]).to(device, non_blocking=True)
        if aug and gen is not None:
            xb = augment(xb, gen)
        yield xb, y_all[idx].to(device, non_blocking=True)


def steps_per_epoch(split: Split, batch_size: int, drop_last: bool = True) -> int:
    n = len(split.y)
    return n // batch_size if drop_last else (n + batch_size - 1) // batch_size
