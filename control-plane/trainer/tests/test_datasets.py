"""Dataset formats users bring: ImageFolder, CSV (pixels or image paths), channels-last and string-labelled NPZ;
each wrong one with its own clear error; the submit-time inspection; augmentation defaults per dataset."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

from edgefleet_trainer.data import Augment, load_dataset, resolve_augment
from edgefleet_trainer.datasets import DatasetSpec, inspect_dataset, read_splits, sniff
from edgefleet_trainer.errors import TrainerError

TRAINER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FormatsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.rng = np.random.default_rng(0)

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def bad(self, fn, pattern: str) -> None:
        with self.assertRaises(TrainerError) as cm:
            fn()
        self.assertEqual(cm.exception.code, "bad-dataset")
        self.assertRegex(cm.exception.message, pattern)

    def image_tree(self, root: str, classes=("cat", "dog", "emu"), per_class: int = 4, size=(12, 10), mode: str = "L") -> None:
        for ci, c in enumerate(classes):
            os.makedirs(os.path.join(root, c), exist_ok=True)
            for i in range(per_class):
                shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
                a = np.full(shape, ci * 80 + i, dtype=np.uint8)
                ext = "png" if i % 2 == 0 else "jpg"
                Image.fromarray(a, mode).save(os.path.join(root, c, f"{i}.{ext}"))

    # ------------------------------------------------------------------ ImageFolder
    def test_imagefolder_names_become_classes_in_sorted_order(self) -> None:
        root = os.path.join(self.dir, "pets")
        self.image_tree(os.path.join(root, "train"), per_class=6)
        self.image_tree(os.path.join(root, "test"), per_class=2)
        s = read_splits(DatasetSpec("imagefolder", path=root))
        self.assertEqual(s.class_names, ["cat", "dog", "emu"])
        self.assertEqual(s.test_source, "file")
        self.assertEqual(s.train.x.shape, (18, 1, 12, 10))
        self.assertEqual(s.test.x.shape, (6, 1, 12, 10))
        self.assertEqual(sorted(set(s.train.y.tolist())), [0, 1, 2])
        # a PNG of class "dog" (index 1) has pixel value 80 + i
        self.assertEqual(int(s.train.x[s.train.y == 1][0, 0, 0, 0]), 80)
        ds = load_dataset(DatasetSpec("imagefolder", path=root), seed=0, validation_split=0.0, batch_size=4)
        self.assertEqual(ds.class_names, ["cat", "dog", "emu"])
        self.assertEqual(ds.num_classes, 3)

    def test_imagefolder_rgb_and_resize(self) -> None:
        root = os.path.join(self.dir, "rgb")
        self.image_tree(root, per_class=5, size=(16, 16), mode="RGB")
        s = read_splits(DatasetSpec("imagefolder", path=root, image_size=(8, 8)))
        self.assertEqual(s.train.x.shape[1:], (3, 8, 8))
        self.assertEqual(s.test_source, "holdout")
        s1 = read_splits(DatasetSpec("imagefolder", path=root, channels=1))
        self.assertEqual(s1.train.x.shape[1], 1)

    def test_imagefolder_errors(self) -> None:
        root = os.path.join(self.dir, "mixed")
        self.image_tree(root, per_class=3, size=(12, 12))
        Image.fromarray(np.zeros((20, 20), np.uint8)).save(os.path.join(root, "cat", "big.png"))
        self.bad(lambda: read_splits(DatasetSpec("imagefolder", path=root)), r"big.png: image is 20x20, the others 12x12; set dataset.imageSize")
        loose = os.path.join(self.dir, "loose")
        os.makedirs(loose)
        Image.fromarray(np.zeros((9, 9), np.uint8)).save(os.path.join(loose, "a.png"))
        self.bad(lambda: read_splits(DatasetSpec("imagefolder", path=loose)), r"no class sub-folders \(1 images lie directly in it")
        empty = os.path.join(self.dir, "empty")
        os.makedirs(os.path.join(empty, "a"))
        self.bad(lambda: read_splits(DatasetSpec("imagefolder", path=empty)), r"class folder\(s\) \['a'\] hold no")
        broken = os.path.join(self.dir, "broken")
        self.image_tree(broken, per_class=2)
        with open(os.path.join(broken, "cat", "zz.png"), "wb") as f:
            f.write(b"not a png at all")
        self.bad(lambda: read_splits(DatasetSpec("imagefolder", path=broken)), r"zz.png: not a readable PNG/JPEG image")

    # ------------------------------------------------------------------ CSV
    def write_csv(self, path: str, header, rows) -> None:
        with open(path, "w") as f:
            f.write(",".join(header) + "\n")
            for r in rows:
                f.write(",".join(str(v) for v in r) + "\n")

    def test_csv_pixels_with_string_labels(self) -> None:
        path = os.path.join(self.dir, "digits.csv")
        names = ["zero", "one", "two"]
        rows = [[names[i % 3]] + list(self.rng.integers(0, 17, 64)) for i in range(30)]
        self.write_csv(path, ["label"] + [f"p{i}" for i in range(64)], rows)
        s = read_splits(DatasetSpec("csv", path=path))
        self.assertEqual(s.class_names, ["one", "two", "zero"])
        self.assertEqual(s.train.x.shape[1:], (1, 8, 8))  # 64 pixel columns: a square grey 8x8 image
        self.assertEqual(len(s.train.y) + len(s.test.y), 30)
        summary = inspect_dataset(DatasetSpec("csv", path=path))
        self.assertEqual(summary["inputShape"], [1, 8, 8])
        self.assertEqual(summary["labelKind"], "names")
        self.assertEqual(summary["trainSamples"], 30)

    def test_csv_image_paths(self) -> None:
        os.makedirs(os.path.join(self.dir, "img"))
        rows = []
        for i in range(12):
            Image.fromarray(np.full((9, 9), i, np.uint8)).save(os.path.join(self.dir, "img", f"{i}.png"))
            rows.append([f"img/{i}.png", i % 2])
        path = os.path.join(self.dir, "list.csv")
        self.write_csv(path, ["file", "label"], rows)
        s = read_splits(DatasetSpec("csv", path=path, image_column="file"))
        self.assertIsNone(s.class_names)
        self.assertEqual(s.train.x.shape[1:], (1, 9, 9))
        self.assertEqual(inspect_dataset(DatasetSpec("csv", path=path, image_column="file"))["inputShape"], [1, 9, 9])

    def test_csv_errors(self) -> None:
        path = os.path.join(self.dir, "bad.csv")
        self.write_csv(path, ["y"] + [f"p{i}" for i in range(64)], [[0] + [1] * 64])
        self.bad(lambda: read_splits(DatasetSpec("csv", path=path)), r"no label column 'label' in the header .*set dataset.labelColumn")
        self.write_csv(path, ["label"] + [f"p{i}" for i in range(50)], [[0] + [1] * 50])
        self.bad(lambda: read_splits(DatasetSpec("csv", path=path)), r"50 pixel columns are not a square grey or RGB image; set dataset.imageShape")
        self.write_csv(path, ["label"] + [f"p{i}" for i in range(64)], [[0] + [1] * 63 + ["x"]])
        self.bad(lambda: read_splits(DatasetSpec("csv", path=path)), r"line 2, column 'p63': not a number")
        self.write_csv(path, ["label"] + [f"p{i}" for i in range(64)], [[0] + [1] * 60])
        self.bad(lambda: read_splits(DatasetSpec("csv", path=path)), r"line 2 has 61 fields, the header 65")

    # ------------------------------------------------------------------ NPZ
    def test_npz_channels_last_and_string_labels(self) -> None:
        x = self.rng.integers(0, 256, (40, 10, 10, 3), dtype=np.uint8)
        y = np.array(["bird", "car"] * 20)
        path = os.path.join(self.dir, "cl.npz")
        np.savez(path, x=x, y=y)
        s = read_splits(DatasetSpec("npz", path=path))
        self.assertEqual(s.train.x.shape[1:], (3, 10, 10))
        self.assertEqual(s.class_names, ["bird", "car"])
        full = np.concatenate([s.train.x, s.test.x])
        # the same pixels, moved channel-first
        self.assertEqual(sorted(full[:, 1, 2, 3].tolist()), sorted(x[:, 2, 3, 1].tolist()))
        summary = inspect_dataset(DatasetSpec("npz", path=path))
        self.assertEqual(summary["inputShape"], [3, 10, 10])
        self.assertEqual(summary["labelKind"], "names")
        self.assertEqual(summary["trainSamples"], 40)

    # ------------------------------------------------------------------ the wrong kind says which kind it is
    def test_wrong_kind_names_the_right_one(self) -> None:
        root = os.path.join(self.dir, "tree")
        self.image_tree(root, per_class=2)
        self.bad(lambda: read_splits(DatasetSpec("npz", path=root)), r"is not a NPZ dataset: it is a folder; .*\"imagefolder\"")
        csvp = os.path.join(self.dir, "a.csv")
        self.write_csv(csvp, ["label", "p0"], [[0, 1]])
        self.bad(lambda: read_splits(DatasetSpec("npz", path=csvp)), r"it is a text file; for a CSV use \{\"kind\": \"csv\"\}")
        npzp = os.path.join(self.dir, "a.npz")
        np.savez(npzp, x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(4, np.int64))
        self.bad(lambda: read_splits(DatasetSpec("csv", path=npzp)), r"it is a zip/.npz archive; use \{\"kind\": \"npz\"\}")
        self.bad(lambda: read_splits(DatasetSpec("imagefolder", path=npzp)), r"is not a ImageFolder dataset")
        pkl = os.path.join(self.dir, "p.pkl")
        with open(pkl, "wb") as f:
            f.write(b"\x80\x04\x95\x00")
        self.bad(lambda: read_splits(DatasetSpec("npz", path=pkl)), r"Python pickle, which EdgeFleet never loads")
        self.assertEqual(sniff(os.path.join(self.dir, "nope")), "missing")
        self.bad(lambda: inspect_dataset(DatasetSpec("csv", path=os.path.join(self.dir, "nope.csv"))), r"^dataset.path: .*nope.csv: no such file")

    # ------------------------------------------------------------------ augmentation follows the data
    def test_augmentation_defaults(self) -> None:
        self.assertEqual(resolve_augment(None, "fashion-mnist"), Augment(translate=2, flip=True))
        self.assertEqual(resolve_augment(None, "npz"), Augment())
        self.assertFalse(resolve_augment(None, "csv").enabled)
        self.assertEqual(resolve_augment(True, "npz"), Augment(translate=2, flip=False))
        self.assertEqual(resolve_augment(False, "fashion-mnist"), Augment())
        self.assertEqual(resolve_augment(Augment(1, True), "csv"), Augment(1, True))

    # ------------------------------------------------------------------ the control plane's entry
    def test_inspect_entry_is_torch_free_and_names_the_field(self) -> None:
        def run(ds):
            p = subprocess.run([sys.executable, "-m", "edgefleet_trainer.inspect_dataset"], input=json.dumps({"dataset": ds}),
                               capture_output=True, text=True, cwd=TRAINER_DIR, timeout=120)
            return p.returncode, json.loads(p.stdout.strip().splitlines()[-1])
        code, out = run({"kind": "fashion-mnist"})
        self.assertEqual(code, 0, out)
        self.assertEqual(out["type"], "dataset-summary")
        self.assertEqual(out["trainSamples"], 60000)
        self.assertEqual(out["inputShape"], [1, 28, 28])
        code, out = run({"kind": "npz", "path": os.path.join(self.dir, "missing.npz")})
        self.assertEqual(code, 2)
        self.assertEqual(out["code"], "bad-dataset")
        self.assertTrue(out["message"].startswith("dataset.path: "), out)
        code, out = run({"kind": "npz"})
        self.assertEqual(code, 2)
        self.assertEqual(out["code"], "bad-spec")
        p = subprocess.run([sys.executable, "-c", "import sys, edgefleet_trainer.inspect_dataset; print('torch' in sys.modules)"],
                           capture_output=True, text=True, cwd=TRAINER_DIR, timeout=60)
        self.assertEqual(p.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main()
