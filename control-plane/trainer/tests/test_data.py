import gzip
import os
import struct
import tempfile
import unittest

import numpy as np

from edgefleet_trainer.data import augment, load_dataset, read_idx
from edgefleet_trainer.errors import TrainerError
from edgefleet_trainer.spec import DatasetSpec


def write_idx(path: str, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)


class DataTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        rng = np.random.default_rng(0)
        self.x = rng.integers(0, 256, (60, 12, 12), dtype=np.uint8)
        self.y = np.arange(60) % 3

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def npz(self, **arrays) -> DatasetSpec:
        path = os.path.join(self.dir, "d.npz")
        np.savez(path, **arrays)
        return DatasetSpec("npz", path=path)

    def load(self, spec: DatasetSpec, batch_size: int = 8, **kw):
        return load_dataset(spec, seed=0, validation_split=kw.pop("validation_split", 0.0), batch_size=batch_size, **kw)

    def bad(self, spec: DatasetSpec, pattern: str, **kw) -> None:
        with self.assertRaises(TrainerError) as cm:
            self.load(spec, **kw)
        self.assertEqual(cm.exception.code, "bad-dataset")
        self.assertRegex(cm.exception.message, pattern)

    def test_npz_uint8_nhw_and_float_nchw(self) -> None:
        ds = self.load(self.npz(x=self.x, y=self.y), validation_split=0.2)
        self.assertEqual(ds.input_shape, (1, 12, 12))
        self.assertEqual(ds.num_classes, 3)
        self.assertIsNotNone(ds.val)
        self.assertEqual(len(ds.train.y) + len(ds.val.y) + len(ds.test.y), 60)
        xf = (self.x[:, None].astype(np.float32) / 255.0)
        ds2 = self.load(self.npz(x=xf, y=self.y))
        self.assertEqual(ds2.train.x.dtype, np.uint8)
        self.assertEqual(ds2.input_shape, (1, 12, 12))

    def test_split_is_reproducible(self) -> None:
        spec = self.npz(x=self.x, y=self.y)
        a = self.load(spec, validation_split=0.25)
        b = self.load(spec, validation_split=0.25)
        np.testing.assert_array_equal(a.val.y, b.val.y)
        np.testing.assert_array_equal(a.train.x, b.train.x)

    def test_wrong_shapes(self) -> None:
        self.bad(self.npz(x=self.x.reshape(60, 144), y=self.y), r"images must be N x H x W, N x C x H x W or N x H x W x C")
        self.bad(self.npz(x=np.zeros((60, 5, 12, 12), np.uint8), y=self.y), r"image shape \[60, 5, 12, 12\] not supported")
        self.bad(self.npz(x=self.x, y=self.y.reshape(30, 2)), r"labels must be a 1-D array")
        self.bad(self.npz(images=self.x, labels=self.y), r"expected arrays 'x' and 'y'")

    def test_bad_labels(self) -> None:
        self.bad(self.npz(x=self.x, y=self.y + 0.5), r"labels must be integers")
        self.bad(self.npz(x=self.x, y=self.y - 1), r"labels out of range: found -1")
        self.bad(self.npz(x=self.x, y=self.y.astype(object)), r"pickled")

    def test_mismatched_counts(self) -> None:
        self.bad(self.npz(x=self.x, y=self.y[:50]), r"60 images but 50 labels")

    def test_too_few_samples(self) -> None:
        y = self.y.copy()
        y[y == 2] = 0
        y[0] = 2  # class 2 has a single sample
        self.bad(self.npz(x=self.x, y=y), r"too few samples: classes \[2\]")
        self.bad(self.npz(x=self.x, y=self.y), r"less than one batch", batch_size=100)

    def test_idx_gz_and_raw(self) -> None:
        paths = {}
        for name, arr, gz in (("ti", self.x, True), ("tl", self.y, True), ("vi", self.x[:10], False), ("vl", self.y[:10], False)):
            paths[name] = os.path.join(self.dir, name)
            write_idx(paths[name], arr, gz)
        ds = self.load(DatasetSpec("idx", train_images=paths["ti"], train_labels=paths["tl"],
                                   test_images=paths["vi"], test_labels=paths["vl"]))
        self.assertEqual(len(ds.test.y), 10)
        bad = os.path.join(self.dir, "bad")
        with open(bad, "wb") as f:
            f.write(b"\x01\x02\x03\x04garbage")
        with self.assertRaises(TrainerError) as cm:
            read_idx(bad)
        self.assertRegex(cm.exception.message, "bad magic")
        self.bad(DatasetSpec("npz", path=os.path.join(self.dir, "nope.npz")), r"dataset.path: .*nope.npz: no such file or folder")

    def test_fashion_mnist_builtin_limits(self) -> None:
        ds = self.load(DatasetSpec("fashion-mnist"), train_samples=200, test_samples=50)
        self.assertEqual(ds.input_shape, (1, 28, 28))
        self.assertEqual(len(ds.train.y), 200)
        self.assertEqual(ds.num_classes, 10)

    def test_augment_shape(self) -> None:
        import torch
        x = torch.rand(5, 1, 12, 12)
        out = augment(x, torch.Generator().manual_seed(0))
        self.assertEqual(tuple(out.shape), (5, 1, 12, 12))


if __name__ == "__main__":
    unittest.main()
