import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch

from tests.helpers import JETSON, X86, base_spec

TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")

USER_STUDENT = '''
import torch
from torch import nn

class TinyNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(x)))), 1))
'''


def run(spec, stdin: bool = False):
    if stdin:
        p = subprocess.run([sys.executable, TRAIN_PY], input=json.dumps(spec), capture_output=True, text=True, timeout=300)
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        try:
            p = subprocess.run([sys.executable, TRAIN_PY, "--spec", f.name], capture_output=True, text=True, timeout=300)
        finally:
            os.unlink(f.name)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return p.returncode, lines, p.stderr


class CliTest(unittest.TestCase):
    def test_bad_spec_is_one_error_line(self) -> None:
        code, lines, _ = run({"jobId": "x"}, stdin=True)
        self.assertEqual(code, 2)
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["type"], "error")
        self.assertEqual(lines[0]["code"], "bad-spec")
        self.assertEqual(lines[0]["jobId"], "x")

    def test_not_json(self) -> None:
        p = subprocess.run([sys.executable, TRAIN_PY], input="{nope", capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(json.loads(p.stdout)["code"], "bad-spec")

    def test_bad_dataset(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            code, lines, _ = run(base_spec(outputDir=d, dataset={"kind": "npz", "path": os.path.join(d, "x.npz")}))
        self.assertEqual(code, 2)
        self.assertEqual(lines[-1]["code"], "bad-dataset")
        self.assertIn("x.npz: no such file or folder", lines[-1]["message"])

    def test_user_student_and_torchscript_teacher(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            student = os.path.join(d, "student.py")
            with open(student, "w") as f:
                f.write(USER_STUDENT)
            teacher = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
            tpath = os.path.join(d, "teacher.pt")
            teacher.save(tpath)
            out = os.path.join(d, "out")
            spec = base_spec(outputDir=out, limits={"trainSamples": 300, "testSamples": 60}, validationSplit=0.0,
                             teacher={"kind": "torchscript", "path": tpath},
                             student={"kind": "file", "path": f"{student}:TinyNet"},
                             recipes=[X86, JETSON], mixedPrecision={"enabled": True, "maxAccuracyDrop": 0.0,
                                                                     "maxFloatLayers": 1},
                             evalSetSize=40)
            code, lines, err = run(spec)
            self.assertEqual(code, 0, err[-2000:])
            kinds = [ln["kind"] for ln in lines if ln["type"] == "artifact"]
            self.assertEqual(kinds.count("student-int8-qat"), 2)
            self.assertIn("teacher-fp32", kinds)
            result = lines[-1]
            self.assertEqual(result["type"], "result")
            self.assertIn("x86-64-vnni", result["diagnostics"])
            self.assertIn("mixedPrecision", result["diagnostics"]["x86-64-vnni"])
            layers = result["diagnostics"]["x86-64-vnni"]["layers"]
            self.assertTrue(all("sqnrDb" in r and "cosine" in r for r in layers))
            with open(os.path.join(out, "metadata.json")) as f:
                meta = json.load(f)
            self.assertEqual(meta["metrics"], result["metrics"])
            self.assertTrue(os.path.isfile(os.path.join(out, "student-int8-qat-jetson-trt-int8.refpred.bin")))
            self.assertEqual(os.path.getsize(os.path.join(out, "student-fp32.refpred.bin")), 40)


if __name__ == "__main__":
    unittest.main()
