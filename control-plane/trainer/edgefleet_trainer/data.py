"""Datasets for training: read through datasets.py (formats, checks), split, batched, augmented.

Images are kept as uint8 N x C x H x W; the model input is pixels / 255 as float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch

from .datasets import (FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, Augment, DatasetSpec, Split, default_augment,  # noqa: F401
                       holdout, normalize_images, normalize_labels, read_idx, read_splits, resolve_augment)
from .errors import bad_dataset


@dataclass
class Dataset:
    train: Split
    val: Optional[Split]
    test: Split
    num_classes: int
    name: str
    class_names: Optional[List[str]] = None

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        _, c, h, w = self.train.x.shape
        return (c, h, w)


def _take(s: Split, n: Optional[int], rng: np.random.Generator) -> Split:
    if n is None or n >= len(s.y):
        return s
    idx = np.sort(rng.permutation(len(s.y))[:n])
    return Split(s.x[idx], s.y[idx])


def load_dataset(spec: DatasetSpec, *, seed: int, validation_split: float, batch_size: int,
                 train_samples: Optional[int] = None, test_samples: Optional[int] = None) -> Dataset:
    s = read_splits(spec)
    train, test = s.train, s.test
    rng = np.random.default_rng(seed)
    train = _take(train, train_samples, rng)
    test = _take(test, test_samples, rng)
    num_classes = int(max(train.y.max(initial=0), test.y.max(initial=0))) + 1
    if s.class_names is not None:
        num_classes = max(num_classes, len(s.class_names))
    if num_classes < 2:
        raise bad_dataset("need at least 2 classes in the labels")
    counts = np.bincount(train.y, minlength=num_classes)
    if counts.min() < 2:
        missing = [int(i) for i in np.nonzero(counts < 2)[0][:10]]
        named = [s.class_names[i] for i in missing] if s.class_names else missing
        raise bad_dataset(f"too few samples: classes {named} have fewer than 2 training samples "
                          f"(labels must be 0..{num_classes - 1} with every class present)")
    val = None
    if validation_split > 0:
        train, val = holdout(train, validation_split, seed)
    if len(train.y) < batch_size:
        raise bad_dataset(f"too few samples: {len(train.y)} training samples is less than one batch ({batch_size}); "
                          f"lower training.batchSize or add data")
    if len(test.y) < 1:
        raise bad_dataset("test split is empty")
    return Dataset(train, val, test, num_classes, s.name, s.class_names)


def to_input(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float().div_(255.0)


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Per-sample random translation (pad + crop) and horizontal flip, on a float NCHW batch."""
    n, c, h, w = x.shape
    out = x
    if pad > 0:
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
            aug: Optional[Augment] = None) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    n = len(split.y)
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    x_all = torch.from_numpy(split.x)
    y_all = torch.from_numpy(split.y)
    stop = n - (n % batch_size) if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        xb = to_input(x_all[idx]).to(device, non_blocking=True)
        if aug is not None and aug.enabled and gen is not None:
            xb = augment(xb, gen, pad=aug.translate, flip=aug.flip)
        yield xb, y_all[idx].to(device, non_blocking=True)


def steps_per_epoch(split: Split, batch_size: int, drop_last: bool = True) -> int:
    n = len(split.y)
    return n // batch_size if drop_last else (n + batch_size - 1) // batch_size
