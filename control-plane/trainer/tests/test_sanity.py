"""Trainer sanity checks a user needs: teacher/student that do not fit the data fail before any training
with a bad-spec error naming the field (exit code 2); a distilled student worse than the hard-label one is
a warning and the better one goes forward; ops a recipe cannot quantize are named in the warnings."""
import json
import os
import tempfile
import time
import unittest

import numpy as np
import torch
from torch import nn

from tests.helpers import X86, base_spec
from tests.test_cli import run

SILU_STUDENT = '''
import torch
from torch import nn

class SiluNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.act1 = nn.SiLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.act2 = nn.SiLU()
        self.fc = nn.Linear(16 * 8 * 8, num_classes)  # position-aware: the classes below are blob positions

    def forward(self, x):
        return self.fc(torch.flatten(self.act2(self.conv2(self.act1(self.conv1(x)))), 1))
'''


def digits_like_npz(path: str, n_train: int = 1500, n_test: int = 300) -> None:
    """8x8 images with 17 grey levels 0..16 as float (the value range of scikit-learn's digits), 10 classes:
    class k is a bright 2x2 blob at one of 10 places plus noise."""
    rng = np.random.default_rng(0)

    def make(n: int):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 2, (n, 8, 8)).astype(np.float64)
        for i, k in enumerate(y):
            r, c = divmod(int(k), 5)
            x[i, 1 + 3 * r:3 + 3 * r, 1 + c:3 + c] = 16.0
        return x, y

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)


def save_teacher(module: nn.Module, path: str) -> str:
    torch.jit.script(module).save(path)
    return path


class PreflightTest(unittest.TestCase):
    def _expect_bad_spec(self, spec, field: str, pattern: str) -> None:
        t0 = time.time()
        code, lines, err = run(spec)
        self.assertEqual(code, 2, err[-2000:])
        last = lines[-1]
        self.assertEqual(last["type"], "error", lines)
        self.assertEqual(last["code"], "bad-spec")
        self.assertEqual(last["field"], field)
        self.assertTrue(last["message"].startswith(field + ":"), last["message"])
        self.assertRegex(last["message"], pattern)
        self.assertNotIn("Traceback", err)
        self.assertFalse(any(ln["type"] == "progress" for ln in lines), "no training phase started")
        self.assertLess(time.time() - t0, 120)

    def _expect_bad_teacher(self, teacher: nn.Module, pattern: str) -> None:
        """A TorchScript teacher that cannot serve the 8x8, 10-class npz dataset is refused, naming teacher.path."""
        with tempfile.TemporaryDirectory() as d:
            npz = os.path.join(d, "digits.npz")
            digits_like_npz(npz)
            tpath = save_teacher(teacher, os.path.join(d, "teacher.pt"))
            spec = base_spec(outputDir=os.path.join(d, "out"), dataset={"kind": "npz", "path": npz},
                             teacher={"kind": "torchscript", "path": tpath})
            self._expect_bad_spec(spec, "teacher.path", pattern)

    def test_five_class_teacher(self) -> None:
        self._expect_bad_teacher(nn.Sequential(nn.Flatten(), nn.Linear(64, 5)),
                                 r"outputs 5 classes; the dataset \(digits\.npz\) has 10")

    def test_28x28_teacher_on_8x8_data(self) -> None:
        self._expect_bad_teacher(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
                                 r"does not accept the dataset's input \[1, 1, 8, 8\]")

    def test_student_that_does_not_fit(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            npz = os.path.join(d, "digits.npz")
            digits_like_npz(npz)
            student = os.path.join(d, "s.py")
            with open(student, "w") as f:
                f.write("import torch\nfrom torch import nn\nclass Wide(nn.Module):\n"
                        "    def __init__(self, num_classes=10, in_channels=1):\n        super().__init__()\n"
                        "        self.fc = nn.Linear(784, num_classes)\n"
                        "    def forward(self, x):\n        return self.fc(torch.flatten(x, 1))\n")
            spec = base_spec(outputDir=os.path.join(d, "out"), dataset={"kind": "npz", "path": npz},
                             teacher={"kind": "zoo", "arch": "resnet-teacher", "width": 0.25, "epochs": 1},
                             student={"kind": "file", "path": f"{student}:Wide"})
            self._expect_bad_spec(spec, "student.path", r"student .*Wide does not accept the dataset's input \[1, 1, 8, 8\]")


class WarningsTest(unittest.TestCase):
    def test_worse_distillation_and_float_ops(self) -> None:
        """An untrained teacher (0 epochs) distilled with alpha 1 teaches noise: the hard-label student is
        better, goes forward, and the job says so. The student's SiLUs have no int8 form in the recipe."""
        with tempfile.TemporaryDirectory() as d:
            npz = os.path.join(d, "digits.npz")
            digits_like_npz(npz)
            student = os.path.join(d, "silu.py")
            with open(student, "w") as f:
                f.write(SILU_STUDENT)
            out = os.path.join(d, "out")
            spec = base_spec(outputDir=out, dataset={"kind": "npz", "path": npz}, validationSplit=0.2,
                             limits={"trainSamples": 800, "testSamples": 200},
                             teacher={"kind": "zoo", "arch": "resnet-teacher", "width": 0.25, "epochs": 0},
                             student={"kind": "file", "path": f"{student}:SiluNet"},
                             training={"batchSize": 32, "lr": 0.01, "optimizer": "adamw", "studentHardEpochs": 3,
                                       "augment": False},
                             distill={"temperature": 4.0, "alpha": 1.0, "epochs": 1},
                             qat={"epochs": 0}, ptq={"enabled": False}, recipes=[X86], evalSetSize=100)
            code, lines, err = run(spec)
            self.assertEqual(code, 0, err[-2000:])
            result = lines[-1]
            self.assertEqual(result["type"], "result")
            m = result["metrics"]
            codes = [w["code"] for w in result["warnings"]]
            self.assertIn("distillation-worse-than-hard-labels", codes, m)
            self.assertEqual(m["studentChosen"], "hard-label")
            self.assertEqual(m["studentFp32"], m["studentHardFp32"])
            self.assertLess(m["studentDistilledFp32"], m["studentHardFp32"])
            # the student that went forward is the hard-label one: same fp32 file
            with open(os.path.join(out, "student-fp32.onnx"), "rb") as a, open(os.path.join(out, "student-hard-fp32.onnx"), "rb") as b:
                self.assertEqual(a.read(), b.read())
            ops = next(w for w in result["warnings"] if w["code"] == "ops-kept-float")
            self.assertEqual(ops["recipeId"], "x86-64-vnni")
            self.assertEqual(sorted(o.split(" ")[0] for o in ops["ops"]), ["SiLU", "SiLU"])
            self.assertIn("SiLU x2", ops["message"])
            # the warnings were also logged as they happened, and are in metadata.json
            warn_logs = [ln for ln in lines if ln["type"] == "log" and ln["level"] == "warn"]
            self.assertGreaterEqual(len(warn_logs), 2)
            with open(os.path.join(out, "metadata.json")) as f:
                self.assertEqual(json.load(f)["warnings"], result["warnings"])


if __name__ == "__main__":
    unittest.main()
