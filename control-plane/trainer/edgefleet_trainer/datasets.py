"""Dataset formats: built-in Fashion-MNIST, IDX, NPZ, an ImageFolder tree and CSV; read, validated, summarised.

No torch here: the control plane runs `inspect_dataset` when a job is submitted (a quick look that reads headers and
a sample), and the trainer runs `read_splits` (everything). Images come out as uint8 N x C x H x W; labels as int64
class ids, with the class names when the labels were strings or folder names.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import bad_dataset

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
MAX_CLASSES = 256
MAX_IMAGES = 2_000_000
MAX_IMAGE_FILE_BYTES = 32 * 1024 * 1024
MAX_CSV_COLUMNS = 200_000
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass
class DatasetSpec:
    kind: str  # fashion-mnist | npz | idx | imagefolder | csv
    path: Optional[str] = None
    train_images: Optional[str] = None
    train_labels: Optional[str] = None
    test_images: Optional[str] = None
    test_labels: Optional[str] = None
    test_path: Optional[str] = None
    layout: str = "auto"  # npz: auto | nchw | nhwc
    image_size: Optional[Tuple[int, int]] = None  # imagefolder / csv image paths: (H, W)
    channels: Optional[int] = None  # imagefolder / csv image paths: 1 | 3
    label_column: str = "label"  # csv
    image_column: Optional[str] = None  # csv: a column of image paths instead of pixel columns
    image_shape: Optional[Tuple[int, ...]] = None  # csv pixel columns: (H, W) or (C, H, W)


@dataclass
class Split:
    x: np.ndarray  # uint8 N x C x H x W
    y: np.ndarray  # int64 N


@dataclass
class Splits:
    train: Split
    test: Split
    name: str
    class_names: Optional[List[str]]
    test_source: str  # "file" | "holdout"
    warnings: List[str] = field(default_factory=list)


@dataclass
class Augment:
    """Random translation by up to `translate` pixels and, when `flip`, horizontal mirroring."""
    translate: int = 0
    flip: bool = False

    @property
    def enabled(self) -> bool:
        return self.translate > 0 or self.flip

    def describe(self) -> str:
        parts = ([f"translate {self.translate}px"] if self.translate else []) + (["horizontal flip"] if self.flip else [])
        return ", ".join(parts) or "none"


def default_augment(kind: str) -> Augment:
    """Augmentation follows the data: mirrored clothes are still clothes; mirrored digits or letters are not, and
    for a user's dataset EdgeFleet cannot know, so it stays off unless the job asks."""
    if kind == "fashion-mnist":
        return Augment(translate=2, flip=True)
    return Augment()


def resolve_augment(value: "Optional[bool | Augment]", kind: str) -> Augment:
    """The job's `training.augment`: absent -> the dataset's default; false -> none; true -> the dataset's default,
    or a 2-pixel translation where the dataset has none; an object -> exactly that."""
    if value is None:
        return default_augment(kind)
    if value is False:
        return Augment()
    if value is True:
        d = default_augment(kind)
        return d if d.enabled else Augment(translate=2)
    return value


# ------------------------------------------------------------------ sniffing: say which kind a file really is

def sniff(path: str) -> str:
    """What a path looks like: folder, npz (zip), gzip, idx, png, jpeg, pickle, text, missing, unknown."""
    if not os.path.exists(path):
        return "missing"
    if os.path.isdir(path):
        return "folder"
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return "unreadable"
    if head[:4] == b"PK\x03\x04":
        return "npz"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] in _IDX_DTYPES:
        return "idx"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the 512th byte is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "unknown"
    return "text" if all(ch.isprintable() or ch in "\t\r\n" for ch in text) else "unknown"


_KIND_HINT = {
    "folder": "it is a folder; for class sub-folders of PNG/JPEG images use {\"kind\": \"imagefolder\"}",
    "text": "it is a text file; for a CSV use {\"kind\": \"csv\"}",
    "npz": "it is a zip/.npz archive; use {\"kind\": \"npz\"}",
    "npy": "it is a single .npy array; save images and labels together with np.savez(path, x=images, y=labels)",
    "pickle": "it is a Python pickle, which EdgeFleet never loads (it can run code); save arrays with np.savez",
    "gzip": "it is gzip data; gzipped IDX files go in {\"kind\": \"idx\"}",
    "idx": "it is an IDX file; use {\"kind\": \"idx\"} with trainImages/trainLabels/testImages/testLabels",
    "png": "it is a single image; point {\"kind\": \"imagefolder\"} at the folder of class sub-folders",
    "jpeg": "it is a single image; point {\"kind\": \"imagefolder\"} at the folder of class sub-folders",
}


def _expect(path: str, field_name: str, want: Sequence[str], kind: str) -> None:
    got = sniff(path)
    if got in want:
        return
    if got == "missing":
        raise bad_dataset(f"{field_name}: {path}: no such file or folder")
    if got == "unreadable":
        raise bad_dataset(f"{field_name}: {path}: cannot be read (permissions?)")
    hint = _KIND_HINT.get(got, "its format is not recognised")
    raise bad_dataset(f"{field_name}: {path} is not a {kind} dataset: {hint}")


# ------------------------------------------------------------------ arrays and labels

def read_idx_dims(path: str, field_name: str = "dataset") -> Tuple[int, ...]:
    """The dimensions an IDX header declares, without reading the body."""
    _expect(path, field_name, ("idx", "gzip", "unknown"), "IDX")
    try:
        opener = gzip.open if sniff(path) == "gzip" else open
        with opener(path, "rb") as f:  # type: ignore[operator]
            data = f.read(4 + 4 * 8)
    except (OSError, EOFError) as e:
        raise bad_dataset(f"{field_name}: {path}: cannot read ({e})")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise bad_dataset(f"{field_name}: {path}: not an IDX file (bad magic number)")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise bad_dataset(f"{field_name}: {path}: IDX header truncated")
    return tuple(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))


def read_idx(path: str, field_name: str = "dataset") -> np.ndarray:
    _expect(path, field_name, ("idx", "gzip", "unknown"), "IDX")  # unknown: the magic check below says what is wrong
    try:
        opener = gzip.open if sniff(path) == "gzip" else open
        with opener(path, "rb") as f:  # type: ignore[operator]
            data = f.read()
    except (OSError, EOFError) as e:
        raise bad_dataset(f"{field_name}: {path}: cannot read ({e})")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise bad_dataset(f"{field_name}: {path}: not an IDX file (bad magic number)")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise bad_dataset(f"{field_name}: {path}: IDX header truncated")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise bad_dataset(f"{field_name}: {path}: IDX body has {len(body)} bytes, header {list(dims)} needs {need}")
    return np.frombuffer(body, dtype=dtype).reshape(dims).copy()  # writable: torch.from_numpy wants it


def _channels_last(x: np.ndarray, layout: str) -> bool:
    if layout == "nhwc":
        return True
    if layout == "nchw":
        return False
    # auto: 4-D with 1, 3 or 4 trailing channels and a leading dim that cannot be channels
    return x.ndim == 4 and x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4)


def normalize_images(x: np.ndarray, where: str, layout: str = "auto") -> np.ndarray:
    """Accept N x H x W, N x C x H x W or N x H x W x C; uint8, integer 0..255 or float in [0,1] / [0,255]."""
    if x.dtype == object:
        raise bad_dataset(f"{where}: images are an object array; store them as one uint8 or float32 array")
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim != 4:
        raise bad_dataset(f"{where}: images must be N x H x W, N x C x H x W or N x H x W x C, got shape {list(x.shape)}")
    if _channels_last(x, layout):
        x = np.transpose(x, (0, 3, 1, 2))
    n, c, h, w = x.shape
    if c < 1 or c > 4 or h < 8 or w < 8:
        hint = " (channels-last? set \"layout\": \"nhwc\")" if x.shape[3] in (1, 3, 4) else ""
        raise bad_dataset(f"{where}: image shape {list(x.shape)} not supported (C 1..4, H and W >= 8){hint}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise bad_dataset(f"{where}: images contain NaN or infinity")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 255.0:
            raise bad_dataset(f"{where}: float pixels must be in [0,1] or [0,255] (got {lo:.3g}..{hi:.3g})")
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.ascontiguousarray(np.clip(np.rint(x.astype(np.float64) * scale), 0, 255).astype(np.uint8))
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise bad_dataset(f"{where}: integer pixels must be in 0..255")
        return np.ascontiguousarray(x.astype(np.uint8))
    raise bad_dataset(f"{where}: images must be uint8 or float32, got {x.dtype}")


def _is_text_labels(y: np.ndarray) -> bool:
    return y.dtype.kind in ("U", "S")


def encode_labels(ys: Sequence[np.ndarray], where: str) -> Tuple[List[np.ndarray], Optional[List[str]]]:
    """Integer labels pass through (checked); string labels become ids in sorted name order, names returned."""
    if any(_is_text_labels(y) for y in ys):
        names = sorted({str(v.decode() if isinstance(v, bytes) else v).strip() for y in ys for v in y.ravel()})
        if "" in names:
            raise bad_dataset(f"{where}: a label is empty")
        if len(names) > MAX_CLASSES:
            raise bad_dataset(f"{where}: {len(names)} distinct labels; at most {MAX_CLASSES} classes")
        index = {n: i for i, n in enumerate(names)}
        out = [np.array([index[str(v.decode() if isinstance(v, bytes) else v).strip()] for v in y.ravel()],
                        dtype=np.int64) for y in ys]
        return out, names
    return [normalize_labels(y, where) for y in ys], None


def normalize_labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise bad_dataset(f"{where}: labels must be a 1-D array of class indexes or names, got shape {list(y.shape)}")
    if y.dtype == object:
        raise bad_dataset(f"{where}: labels are an object array; store names as np.array(names, dtype=str)")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise bad_dataset(f"{where}: labels must be integers or names (found non-integer numbers)")
    elif not np.issubdtype(y.dtype, np.integer):
        raise bad_dataset(f"{where}: labels must be integers or names, got {y.dtype}")
    if y.size and y.min() < 0:
        raise bad_dataset(f"{where}: labels out of range: found {int(y.min())} (must be >= 0)")
    if y.size and y.max() >= MAX_CLASSES:
        raise bad_dataset(f"{where}: labels out of range: found {int(y.max())} (at most {MAX_CLASSES} classes, 0..{MAX_CLASSES - 1})")
    return y.astype(np.int64)


def _pair(x: np.ndarray, y: np.ndarray, where: str, layout: str = "auto") -> Tuple[np.ndarray, np.ndarray]:
    xs = normalize_images(x, f"{where} images", layout)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise bad_dataset(f"{where} labels: labels must be a 1-D array of class indexes or names, got shape {list(y.shape)}")
    if xs.shape[0] != y.shape[0]:
        raise bad_dataset(f"{where}: {xs.shape[0]} images but {y.shape[0] if y.ndim else 0} labels")
    return xs, y


def holdout(s: Split, frac: float, seed: int) -> Tuple[Split, Split]:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(s.y))
    n_hold = max(1, int(round(len(idx) * frac)))
    return Split(s.x[idx[n_hold:]], s.y[idx[n_hold:]]), Split(s.x[idx[:n_hold]], s.y[idx[:n_hold]])


def _labelled(xtr: np.ndarray, ytr: np.ndarray, xte: Optional[np.ndarray], yte: Optional[np.ndarray], where: str,
              name: str, class_names: Optional[List[str]] = None) -> Splits:
    ys, names = encode_labels([ytr] + ([yte] if yte is not None else []), f"{where} labels")
    names = names or class_names
    train = Split(xtr, ys[0])
    if xte is not None:
        return Splits(train, Split(xte, ys[1]), name, names, "file")
    tr, te = holdout(train, 0.2, seed=1234)
    return Splits(tr, te, name, names, "holdout")


# ------------------------------------------------------------------ NPZ

def _npz(path: str, layout: str) -> Splits:
    _expect(path, "dataset.path", ("npz",), "NPZ")
    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)

        def get(k: str) -> np.ndarray:
            try:
                return z[k]
            except ValueError as e:  # object arrays need pickle
                raise bad_dataset(f"dataset.path: {path}: array '{k}' is pickled ({e}); store numbers or fixed-width strings")
        if {"x", "y"} <= keys:
            x, y = _pair(get("x"), get("y"), path, layout)
            if {"x_test", "y_test"} <= keys:
                xt, yt = _pair(get("x_test"), get("y_test"), f"{path} (test)", layout)
                return _labelled(x, y, xt, yt, path, os.path.basename(path))
            return _labelled(x, y, None, None, path, os.path.basename(path))
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            x, y = _pair(get("x_train"), get("y_train"), f"{path} (train)", layout)
            xt, yt = _pair(get("x_test"), get("y_test"), f"{path} (test)", layout)
            return _labelled(x, y, xt, yt, path, os.path.basename(path))
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise bad_dataset(f"dataset.path: {path}: not a readable .npz file ({e})")
    raise bad_dataset(f"dataset.path: {path}: expected arrays 'x' and 'y' (or x_train/y_train/x_test/y_test); found {sorted(keys)}")


def _npz_summary(path: str, layout: str) -> Dict[str, Any]:
    """Array headers only: shapes and dtypes without reading the pixels."""
    _expect(path, "dataset.path", ("npz",), "NPZ")
    try:
        with zipfile.ZipFile(path) as zf:
            shapes: Dict[str, Tuple[Tuple[int, ...], np.dtype]] = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                shapes[info.filename[:-4]] = (tuple(shape), dtype)
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise bad_dataset(f"dataset.path: {path}: not a readable .npz file ({e})")
    for xk, yk in (("x", "y"), ("x_train", "y_train")):
        if xk in shapes and yk in shapes:
            break
    else:
        raise bad_dataset(f"dataset.path: {path}: expected arrays 'x' and 'y' (or x_train/y_train/x_test/y_test); found {sorted(shapes)}")
    (xs, xd), (ys, yd) = shapes[xk], shapes[yk]
    for k, (_, d) in shapes.items():
        if d.hasobject:
            raise bad_dataset(f"dataset.path: {path}: array '{k}' is pickled (object dtype); store numbers or fixed-width strings")
    if len(xs) not in (3, 4):
        raise bad_dataset(f"dataset.path: {path}: images '{xk}' must be N x H x W, N x C x H x W or N x H x W x C, got {list(xs)}")
    if xs[0] != ys[0]:
        raise bad_dataset(f"dataset.path: {path}: {xs[0]} images but {ys[0]} labels")
    shape4 = xs if len(xs) == 4 else (xs[0], 1, xs[1], xs[2])
    if _channels_last(np.empty((0,) + tuple(shape4[1:])), layout):
        shape4 = (shape4[0], shape4[3], shape4[1], shape4[2])
    test_key = "x_test" if "x_test" in shapes else None
    return {"format": "npz", "trainSamples": int(xs[0]), "testSamples": int(shapes[test_key][0][0]) if test_key else None,
            "inputShape": [int(v) for v in shape4[1:]], "labelKind": "names" if yd.kind in "US" else "integers",
            "testSource": "file" if test_key else "holdout"}


# ------------------------------------------------------------------ images on disk (ImageFolder, CSV of paths)

def _load_image(path: str, size: Optional[Tuple[int, int]], channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # Debian python3-pil; only image datasets need it

    try:
        if os.path.getsize(path) > MAX_IMAGE_FILE_BYTES:
            raise bad_dataset(f"{path}: image larger than {MAX_IMAGE_FILE_BYTES // (1024 * 1024)} MiB")
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and (im.height, im.width) != size:
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise bad_dataset(f"{path}: not a readable PNG/JPEG image ({e})")
    return a[None, :, :] if a.ndim == 2 else np.transpose(a, (2, 0, 1))


def _image_mode(path: str) -> Tuple[Tuple[int, int], int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return (im.height, im.width), (1 if im.mode in ("1", "L", "I;16", "I", "F") else 3)
    except (UnidentifiedImageError, OSError) as e:
        raise bad_dataset(f"{path}: not a readable PNG/JPEG image ({e})")


def _stack_images(files: List[str], size: Optional[Tuple[int, int]], channels: Optional[int], where: str) -> np.ndarray:
    if not files:
        raise bad_dataset(f"{where}: no images")
    first_size, first_ch = _image_mode(files[0])
    resize = size is not None  # only when the job asked for a size; else a different size is an error
    if size is None:
        size = first_size
    if channels is None:
        channels = max(_image_mode(f)[1] for f in files[: min(len(files), 64)]) if first_ch == 1 else 3
    out = np.empty((len(files), channels, size[0], size[1]), dtype=np.uint8)
    for i, f in enumerate(files):
        img = _load_image(f, size if resize else None, channels)
        if img.shape[1:] != tuple(size):
            raise bad_dataset(f"{f}: image is {img.shape[2]}x{img.shape[1]}, the others {size[1]}x{size[0]}; "
                              "set dataset.imageSize to resize every image")
        out[i] = img
    return out


def _class_dirs(root: str, field_name: str) -> List[Tuple[str, List[str]]]:
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        loose = [f for f in os.listdir(root) if f.lower().endswith(IMAGE_EXTS)]
        extra = f" ({len(loose)} images lie directly in it: move each into a folder named after its class)" if loose else ""
        raise bad_dataset(f"{field_name}: {root}: no class sub-folders{extra}")
    if len(classes) > MAX_CLASSES:
        raise bad_dataset(f"{field_name}: {root}: {len(classes)} class folders; at most {MAX_CLASSES}")
    out = []
    total = 0
    for c in classes:
        d = os.path.join(root, c)
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTS))
        total += len(files)
        if total > MAX_IMAGES:
            raise bad_dataset(f"{field_name}: {root}: more than {MAX_IMAGES} images")
        out.append((c, files))
    empty = [c for c, f in out if not f]
    if empty:
        raise bad_dataset(f"{field_name}: {root}: class folder(s) {empty[:5]} hold no .png/.jpg/.jpeg images")
    return out


def _imagefolder_roots(spec: DatasetSpec) -> Tuple[str, Optional[str]]:
    assert spec.path
    _expect(spec.path, "dataset.path", ("folder",), "ImageFolder")
    root, test = spec.path, spec.test_path
    if test is not None:
        _expect(test, "dataset.testPath", ("folder",), "ImageFolder")
    else:
        # the common train/ + test/ layout under one root
        subs = set(os.listdir(root))
        if {"train", "test"} <= subs and os.path.isdir(os.path.join(root, "train")) and os.path.isdir(os.path.join(root, "test")):
            root, test = os.path.join(root, "train"), os.path.join(root, "test")
    return root, test


def _imagefolder(spec: DatasetSpec) -> Splits:
    root, test_root = _imagefolder_roots(spec)
    train_dirs = _class_dirs(root, "dataset.path")
    names = [c for c, _ in train_dirs]
    files = [f for _, fs in train_dirs for f in fs]
    labels = np.array([i for i, (_, fs) in enumerate(train_dirs) for _ in fs], dtype=np.int64)
    x = _stack_images(files, spec.image_size, spec.channels, "dataset.path")
    size, ch = (x.shape[2], x.shape[3]), x.shape[1]
    if test_root is None:
        return _labelled(x, labels, None, None, root, os.path.basename(root.rstrip("/")), names)
    test_dirs = _class_dirs(test_root, "dataset.testPath")
    unknown = [c for c, _ in test_dirs if c not in names]
    if unknown:
        raise bad_dataset(f"dataset.testPath: {test_root}: class folder(s) {unknown[:5]} are not in the training folder")
    tfiles = [f for _, fs in test_dirs for f in fs]
    tlabels = np.array([names.index(c) for c, fs in test_dirs for _ in fs], dtype=np.int64)
    xt = _stack_images(tfiles, size, ch, "dataset.testPath")
    return Splits(Split(x, labels), Split(xt, tlabels), os.path.basename(spec.path.rstrip("/")), names, "file")


def _imagefolder_summary(spec: DatasetSpec) -> Dict[str, Any]:
    root, test_root = _imagefolder_roots(spec)
    dirs = _class_dirs(root, "dataset.path")
    # a sample per class: readable, and one size unless imageSize resizes them
    sizes = set()
    ch = 1
    for c, files in dirs:
        for f in files[:3]:
            s, k = _image_mode(f)
            sizes.add(s)
            ch = max(ch, k)
    if spec.image_size is None and len(sizes) > 1:
        raise bad_dataset(f"dataset.path: {root}: images have different sizes {sorted(sizes)[:4]}; set dataset.imageSize [H, W]")
    size = spec.image_size or next(iter(sizes))
    tcount = None
    if test_root is not None:
        tdirs = _class_dirs(test_root, "dataset.testPath")
        unknown = [c for c, _ in tdirs if c not in [d for d, _ in dirs]]
        if unknown:
            raise bad_dataset(f"dataset.testPath: {test_root}: class folder(s) {unknown[:5]} are not in the training folder")
        tcount = sum(len(f) for _, f in tdirs)
    return {"format": "imagefolder", "trainSamples": sum(len(f) for _, f in dirs), "testSamples": tcount,
            "inputShape": [spec.channels or ch, size[0], size[1]], "labelKind": "names",
            "classNames": [c for c, _ in dirs], "classCounts": [len(f) for _, f in dirs],
            "testSource": "file" if test_root else "holdout"}


# ------------------------------------------------------------------ CSV

def _csv_header(path: str, field_name: str) -> List[str]:
    _expect(path, field_name, ("text",), "CSV")
    with open(path, newline="", encoding="utf-8") as f:
        try:
            header = next(csv.reader(f))
        except StopIteration:
            raise bad_dataset(f"{field_name}: {path}: empty file")
        except (csv.Error, UnicodeDecodeError) as e:
            raise bad_dataset(f"{field_name}: {path}: not a CSV file ({e})")
    if len(header) > MAX_CSV_COLUMNS:
        raise bad_dataset(f"{field_name}: {path}: {len(header)} columns; at most {MAX_CSV_COLUMNS}")
    return [h.strip() for h in header]


def _csv_layout(spec: DatasetSpec, header: List[str], path: str, field_name: str) -> Tuple[int, Optional[int], List[int]]:
    if spec.label_column not in header:
        raise bad_dataset(f"{field_name}: {path}: no label column {spec.label_column!r} in the header "
                          f"(columns: {header[:8]}{'...' if len(header) > 8 else ''}); set dataset.labelColumn")
    li = header.index(spec.label_column)
    if spec.image_column is not None:
        if spec.image_column not in header:
            raise bad_dataset(f"{field_name}: {path}: no image column {spec.image_column!r} in the header (columns: {header[:8]})")
        return li, header.index(spec.image_column), []
    pixels = [i for i in range(len(header)) if i != li]
    return li, None, pixels


def _pixel_shape(spec: DatasetSpec, n: int, path: str) -> Tuple[int, int, int]:
    if spec.image_shape is not None:
        shape = spec.image_shape if len(spec.image_shape) == 3 else (1,) + tuple(spec.image_shape)
        if int(np.prod(shape)) != n:
            raise bad_dataset(f"dataset.imageShape: {list(spec.image_shape)} holds {int(np.prod(shape))} pixels; {path} has {n} pixel columns")
        return tuple(int(v) for v in shape)  # type: ignore[return-value]
    for c in (1, 3):
        side = int(round(math.sqrt(n / c)))
        if c * side * side == n and side >= 8:
            return (c, side, side)
    raise bad_dataset(f"dataset.path: {path}: {n} pixel columns are not a square grey or RGB image; set dataset.imageShape [H, W] or [C, H, W]")


def _read_csv(spec: DatasetSpec, path: str, field_name: str, size: Optional[Tuple[int, int]] = None,
              channels: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    header = _csv_header(path, field_name)
    li, ii, pixels = _csv_layout(spec, header, path, field_name)
    labels: List[str] = []
    rows: List[Any] = []
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        for lineno, row in enumerate(r, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise bad_dataset(f"{field_name}: {path}: line {lineno} has {len(row)} fields, the header {len(header)}")
            labels.append(row[li].strip())
            if ii is not None:
                p = row[ii].strip()
                rows.append(p if os.path.isabs(p) else os.path.join(base, p))
            else:
                try:
                    rows.append([float(row[i]) for i in pixels])
                except ValueError:
                    bad = next(header[i] for i in pixels if not _is_number(row[i]))
                    raise bad_dataset(f"{field_name}: {path}: line {lineno}, column {bad!r}: not a number")
            if len(rows) > MAX_IMAGES:
                raise bad_dataset(f"{field_name}: {path}: more than {MAX_IMAGES} rows")
    if not rows:
        raise bad_dataset(f"{field_name}: {path}: no data rows")
    y = np.array(labels)
    y = y.astype(np.int64) if all(_is_int(v) for v in labels) else y
    if ii is not None:
        missing = [p for p in rows[:100000] if not os.path.isfile(p)]
        if missing:
            raise bad_dataset(f"{field_name}: {path}: {len(missing)} image path(s) do not exist, e.g. {missing[0]}")
        x = _stack_images(rows, size or spec.image_size, channels or spec.channels, field_name)
    else:
        shape = _pixel_shape(spec, len(pixels), path)
        x = normalize_images(np.array(rows, dtype=np.float32).reshape((len(rows),) + shape), f"{path} pixels", "nchw")
    return x, y


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


def _csv(spec: DatasetSpec) -> Splits:
    assert spec.path
    x, y = _read_csv(spec, spec.path, "dataset.path")
    if spec.test_path is None:
        return _labelled(x, y, None, None, spec.path, os.path.basename(spec.path))
    xt, yt = _read_csv(spec, spec.test_path, "dataset.testPath", (x.shape[2], x.shape[3]), x.shape[1])
    return _labelled(x, y, xt, yt, spec.path, os.path.basename(spec.path))


def _csv_summary(spec: DatasetSpec) -> Dict[str, Any]:
    assert spec.path
    out: Dict[str, Any] = {"format": "csv", "testSource": "file" if spec.test_path else "holdout"}
    for key, path, fname in (("trainSamples", spec.path, "dataset.path"), ("testSamples", spec.test_path, "dataset.testPath")):
        if path is None:
            out[key] = None
            continue
        header = _csv_header(path, fname)
        li, ii, pixels = _csv_layout(spec, header, path, fname)
        n = 0
        sample: List[List[str]] = []
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            next(r)
            for row in r:
                if row:
                    n += 1
                    if len(sample) < 32:
                        sample.append(row)
        if n == 0:
            raise bad_dataset(f"{fname}: {path}: no data rows")
        for k, row in enumerate(sample, start=2):
            if len(row) != len(header):
                raise bad_dataset(f"{fname}: {path}: line {k} has {len(row)} fields, the header {len(header)}")
        out[key] = n
        if key == "trainSamples":
            labels = [row[li].strip() for row in sample]
            out["labelKind"] = "integers" if all(_is_int(v) for v in labels) else "names"
            if ii is None:
                out["inputShape"] = list(_pixel_shape(spec, len(pixels), path))
                bad = [header[i] for i in pixels if not _is_number(sample[0][i])]
                if bad:
                    raise bad_dataset(f"{fname}: {path}: line 2, column {bad[0]!r}: not a number")
            else:
                base = os.path.dirname(os.path.abspath(path))
                p = sample[0][ii].strip()
                p = p if os.path.isabs(p) else os.path.join(base, p)
                if not os.path.isfile(p):
                    raise bad_dataset(f"{fname}: {path}: line 2: image {p} does not exist")
                size, ch = _image_mode(p)
                size = spec.image_size or size
                out["inputShape"] = [spec.channels or ch, size[0], size[1]]
    return out


# ------------------------------------------------------------------ entry points

def read_splits(spec: DatasetSpec) -> Splits:
    """Everything, checked. Raises TrainerError("bad-dataset", ...) naming the field and the file."""
    if spec.kind == "fashion-mnist":
        root = spec.path or FASHION_MNIST_DIR
        f = lambda n: os.path.join(root, n)  # noqa: E731
        xtr, ytr = _pair(read_idx(f("train-images-idx3-ubyte.gz"), "dataset.path"),
                         read_idx(f("train-labels-idx1-ubyte.gz"), "dataset.path"), "train")
        xte, yte = _pair(read_idx(f("t10k-images-idx3-ubyte.gz"), "dataset.path"),
                         read_idx(f("t10k-labels-idx1-ubyte.gz"), "dataset.path"), "test")
        s = _labelled(xtr, ytr, xte, yte, root, "fashion-mnist")
        s.class_names = list(FASHION_MNIST_CLASSES)
    elif spec.kind == "idx":
        assert spec.train_images and spec.train_labels and spec.test_images and spec.test_labels
        xtr, ytr = _pair(read_idx(spec.train_images, "dataset.trainImages"), read_idx(spec.train_labels, "dataset.trainLabels"), "train")
        xte, yte = _pair(read_idx(spec.test_images, "dataset.testImages"), read_idx(spec.test_labels, "dataset.testLabels"), "test")
        s = _labelled(xtr, ytr, xte, yte, "idx", "idx")
    elif spec.kind == "npz":
        assert spec.path
        s = _npz(spec.path, spec.layout)
    elif spec.kind == "imagefolder":
        s = _imagefolder(spec)
    elif spec.kind == "csv":
        s = _csv(spec)
    else:
        raise bad_dataset(f"dataset.kind: unknown kind {spec.kind!r}")
    if s.train.x.shape[1:] != s.test.x.shape[1:]:
        raise bad_dataset(f"train images {list(s.train.x.shape[1:])} and test images {list(s.test.x.shape[1:])} differ in shape")
    return s


def inspect_dataset(spec: DatasetSpec) -> Dict[str, Any]:
    """A quick look for submit time: the path exists and is readable, the format is what the kind says, and the
    shape and label summary. Reads headers and a sample, not every pixel (the trainer checks everything)."""
    if spec.kind == "fashion-mnist":
        root = spec.path or FASHION_MNIST_DIR
        files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        heads = [read_idx_dims(os.path.join(root, f), "dataset.path") for f in files]
        return _idx_summary(heads, "fashion-mnist") | {"classNames": list(FASHION_MNIST_CLASSES), "labelKind": "names"}
    if spec.kind == "idx":
        fields = [("dataset.trainImages", spec.train_images), ("dataset.trainLabels", spec.train_labels),
                  ("dataset.testImages", spec.test_images), ("dataset.testLabels", spec.test_labels)]
        heads = [read_idx_dims(p or "", name) for name, p in fields]
        return _idx_summary(heads, "idx")
    if spec.kind == "npz":
        assert spec.path
        return _npz_summary(spec.path, spec.layout)
    if spec.kind == "imagefolder":
        return _imagefolder_summary(spec)
    if spec.kind == "csv":
        return _csv_summary(spec)
    raise bad_dataset(f"dataset.kind: unknown kind {spec.kind!r}")


def _idx_summary(heads: List[Tuple[int, ...]], fmt: str) -> Dict[str, Any]:
    xtr, ytr, xte, yte = heads
    if len(xtr) not in (3, 4) or len(xte) not in (3, 4):
        raise bad_dataset(f"{fmt}: image files must hold N x H x W (or N x C x H x W) arrays, got {list(xtr)} and {list(xte)}")
    for what, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if x[0] != y[0]:
            raise bad_dataset(f"{fmt}: {what}: {x[0]} images but {y[0]} labels")
    shape = [1] + list(xtr[1:]) if len(xtr) == 3 else list(xtr[1:])
    if [1] + list(xte[1:]) != shape and list(xte[1:]) != shape:
        raise bad_dataset(f"{fmt}: train images {list(xtr[1:])} and test images {list(xte[1:])} differ in shape")
    return {"format": fmt, "trainSamples": int(xtr[0]), "testSamples": int(xte[0]),
            "inputShape": [int(v) for v in shape], "labelKind": "integers", "testSource": "file"}
