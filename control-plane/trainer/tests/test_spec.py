import copy
import unittest

from edgefleet_trainer.errors import TrainerError
from edgefleet_trainer.spec import parse_spec
from tests.helpers import GENERIC, JETSON, X86, base_spec


class SpecTest(unittest.TestCase):
    def bad(self, spec, pattern: str) -> None:
        with self.assertRaises(TrainerError) as cm:
            parse_spec(spec)
        self.assertEqual(cm.exception.code, "bad-spec")
        self.assertRegex(cm.exception.message, pattern)

    def test_valid_spec_with_defaults(self) -> None:
        s = parse_spec(base_spec(recipes=[X86, JETSON, GENERIC]))
        self.assertEqual(s.job_id, "t1")
        self.assertEqual([r.id for r in s.recipes], ["x86-64-vnni", "jetson-trt-int8", "generic-cpu"])
        self.assertTrue(s.recipes[1].act_symmetric)
        self.assertFalse(s.recipes[2].weight_per_channel)
        self.assertTrue(s.recipes[2].reduce_range)
        self.assertEqual(s.eval_set_size, 100)
        self.assertFalse(s.mixed_precision.enabled)

    def test_missing_and_wrong_fields(self) -> None:
        spec = base_spec()
        del spec["teacher"]
        self.bad(spec, r"^teacher: required")
        self.bad(base_spec(validationSplit=0.7), r"validationSplit: must be <= 0.5")
        self.bad(base_spec(device="tpu"), r"device: must be one of")
        self.bad(base_spec(training={"batchSize": 0}), r"training.batchSize: must be >= 1")
        self.bad(base_spec(training={"batchSize": 2.5}), r"training.batchSize: expected an integer")
        self.bad(base_spec(extra=1), r"unknown field\(s\) extra")
        self.bad(base_spec(recipes=[]), r"recipes: expected a non-empty list")
        self.bad(base_spec(jobId="../x"), r"jobId")

    def test_recipe_validation(self) -> None:
        r = copy.deepcopy(X86)
        r["weights"]["symmetric"] = False
        self.bad(base_spec(recipes=[r]), r"recipes\[0\].weights.symmetric: must be true")
        r = copy.deepcopy(X86)
        r["activations"]["dtype"] = "int4"
        self.bad(base_spec(recipes=[r]), r"recipes\[0\].activations.dtype: must be one of")
        r = copy.deepcopy(X86)
        r["opset"] = 11
        self.bad(base_spec(recipes=[r]), r"recipes\[0\].opset: must be >= 13")
        self.bad(base_spec(recipes=[X86, X86]), r"duplicate recipe ids")
        r = copy.deepcopy(X86)
        r["id"] = "Bad_Id"
        self.bad(base_spec(recipes=[r]), r"recipes\[0\].id")

    def test_dataset_and_models(self) -> None:
        self.bad(base_spec(dataset={"kind": "npz"}), r"dataset.path: required")
        self.bad(base_spec(dataset={"kind": "parquet", "path": "x"}), r"dataset.kind: must be one of")
        self.bad(base_spec(dataset={"kind": "csv", "path": "x", "imageShape": [0, 8]}), r"dataset.imageShape: expected")
        self.bad(base_spec(dataset={"kind": "imagefolder", "path": "x", "channels": 2}), r"dataset.channels: 1 \(grey\) or 3")
        self.bad(base_spec(training={"augment": {"translate": 9}}), r"training.augment.translate: must be <= 8")
        self.bad(base_spec(student={"kind": "file", "path": "model.py"}), r"file.py:ClassName")
        self.bad(base_spec(teacher={"kind": "zoo", "arch": "vgg"}), r"teacher.arch: must be one of")
        s = parse_spec(base_spec(student={"kind": "file", "path": "/x/m.py:Net"},
                                 teacher={"kind": "torchscript", "path": "/x/t.pt"}))
        self.assertEqual(s.student.path, "/x/m.py:Net")
        self.assertEqual(s.teacher.kind, "torchscript")


if __name__ == "__main__":
    unittest.main()


class KeepFloatLayersTest(unittest.TestCase):
    """Tuning's mixed-precision variants: a recipe may keep its k most sensitive layers in float."""

    def test_keep_float_layers(self) -> None:
        r = dict(copy.deepcopy(GENERIC), id="generic-cpu-f2", keepFloatLayers=2)
        s = parse_spec(base_spec(recipes=[GENERIC, r]))
        self.assertEqual(s.recipes[0].keep_float_layers, 0)
        self.assertEqual(s.recipes[1].keep_float_layers, 2)
        with self.assertRaises(TrainerError) as cm:
            parse_spec(base_spec(recipes=[dict(r, keepFloatLayers=-1)]))
        self.assertRegex(cm.exception.message, r"keepFloatLayers")
