import os
import tempfile
import unittest

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from edgefleet_trainer.export import export_onnx
from edgefleet_trainer.models import CompactCNN, MobileNetV2Mini, ResNetTeacher
from edgefleet_trainer.qat import (QuantConv, act_fqs, calibrate, finalize, fold_all_bn, fuse_for_quant, layers,
                                   prepare)
from edgefleet_trainer.spec import parse_recipe
from tests.helpers import ARM, GENERIC, JETSON, X86


def _random_bn(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


class BnFoldingTest(unittest.TestCase):
    def test_folded_graph_matches_float_model(self) -> None:
        torch.manual_seed(0)
        x = torch.rand(4, 1, 28, 28)
        for cls in (CompactCNN, ResNetTeacher, MobileNetV2Mini):
            m = _random_bn(cls(width=0.5))
            gm = fuse_for_quant(m, fold_bn_now=True)
            self.assertFalse(any(isinstance(s, nn.BatchNorm2d) for s in gm.modules()), cls.__name__)
            torch.testing.assert_close(gm.eval()(x), m(x), rtol=1e-4, atol=1e-5)

    def test_fold_later_is_equivalent(self) -> None:
        m = _random_bn(CompactCNN(width=0.5))
        x = torch.rand(2, 1, 28, 28)
        gm = fuse_for_quant(m, fold_bn_now=False).eval()
        self.assertTrue(any(isinstance(s, nn.BatchNorm2d) for s in gm.modules()))
        before = gm(x)
        self.assertTrue(fold_all_bn(gm))
        self.assertFalse(any(isinstance(s, QuantConv) and s.bn is not None for s in gm.modules()))
        torch.testing.assert_close(gm(x), before, rtol=1e-4, atol=1e-5)


class QuantizedExportTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def _export(self, recipe_obj, cls=ResNetTeacher):
        torch.manual_seed(0)
        recipe = parse_recipe(recipe_obj, "r")
        model = _random_bn(cls(width=0.25))
        gm, plan = prepare(model, recipe, fold_bn_now=True)
        calibrate(gm, [torch.rand(8, 1, 28, 28)])
        path = os.path.join(self.tmp.name, recipe.id + ".onnx")
        export_onnx(gm, (1, 28, 28), path, quantized=True)
        fp32 = os.path.join(self.tmp.name, recipe.id + "-fp32.onnx")
        export_onnx(model, (1, 28, 28), fp32)
        return gm, plan, onnx.load(path), path, fp32, model

    def test_x86_qdq_graph(self) -> None:
        gm, plan, m, path, fp32, model = self._export(X86)
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        ops = [n.op_type for n in m.graph.node]
        self.assertEqual(m.opset_import[0].version, 13)
        self.assertNotIn("BatchNormalization", ops)
        prod = {o: n for n in m.graph.node for o in n.output}
        convs = [n for n in m.graph.node if n.op_type in ("Conv", "Gemm")]
        self.assertGreater(len(convs), 0)
        for c in convs:
            for i, name in enumerate(c.input):
                p = prod.get(name)
                self.assertIsNotNone(p, f"{c.name} input {i} comes from an initializer, not DequantizeLinear")
                self.assertEqual(p.op_type, "DequantizeLinear")
            w = inits[prod[c.input[1]].input[0]]
            self.assertEqual(w.dtype, np.int8)
            self.assertEqual(inits[prod[c.input[2]].input[0]].dtype, np.int32)
        for n in m.graph.node:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and inits.get(n.input[0]) is None:
                self.assertEqual(inits[n.input[1]].ndim, 0, "per-tensor activation scale must be a scalar")
                self.assertEqual(inits[n.input[2]].dtype, np.uint8)
        self.assertLess(os.path.getsize(path), 0.35 * os.path.getsize(fp32))
        # the exported graph is what the fake-quant model computes
        self.assertIn("Add", ops)

    def test_jetson_zero_points_and_axis(self) -> None:
        _, _, m, *_ = self._export(JETSON)
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        for n in m.graph.node:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
                zp = inits[n.input[2]]
                self.assertTrue(np.all(zp == 0), n.name)
                w = inits.get(n.input[0])
                if w is not None and w.dtype == np.int8 and w.ndim == 4:
                    self.assertEqual(inits[n.input[1]].shape, (w.shape[0],))
                    self.assertEqual(next(a.i for a in n.attribute if a.name == "axis"), 0)
        # residual Add inputs both come from DequantizeLinear
        prod = {o: n for n in m.graph.node for o in n.output}
        adds = [n for n in m.graph.node if n.op_type == "Add"]
        self.assertGreater(len(adds), 0)
        for a in adds:
            self.assertEqual([prod[i].op_type for i in a.input], ["DequantizeLinear", "DequantizeLinear"])

    def test_arm_and_generic(self) -> None:
        _, _, m, *_ = self._export(ARM, CompactCNN)
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        act_zps = [inits[n.input[2]] for n in m.graph.node if n.op_type == "QuantizeLinear"]
        self.assertTrue(all(z.dtype == np.int8 for z in act_zps))
        gm, _, m, *_ = self._export(GENERIC, CompactCNN)
        for _, layer in layers(gm):
            wfq = getattr(layer, "weight_fq", None)
            if wfq is not None:
                self.assertEqual(wfq.scale.numel(), 1)  # per-tensor weights
                w = layer.weight.detach()
                self.assertLessEqual(float((w / wfq.scale).abs().max()), 64.0)  # 7-bit range

    def test_fake_quant_close_to_float_and_observers_off(self) -> None:
        gm, _, _, _, _, model = self._export(X86, CompactCNN)
        x = torch.rand(16, 1, 28, 28)
        err = (gm(x) - model(x)).abs().max() / model(x).abs().max()
        self.assertLess(float(err), 0.2)
        self.assertTrue(all(int(fq.observer_enabled[0]) == 0 for fq in act_fqs(gm)))

    def test_float_ops_stay_float(self) -> None:
        recipe = dict(X86)
        recipe["floatOps"] = ["Gemm"]
        recipe["id"] = "x86-float-gemm"
        gm, plan, m, *_ = self._export(recipe, CompactCNN)
        self.assertIn("q_fc", plan.float_layers)
        prod = {o: n for n in m.graph.node for o in n.output}
        gemm = next(n for n in m.graph.node if n.op_type == "Gemm")
        self.assertNotIn(gemm.input[1], prod)  # float weight initializer, no DequantizeLinear

    def test_float_layers_read_float_inputs(self) -> None:
        """A float Conv whose output is quantized downstream must not read a DequantizeLinear output:
        onnxruntime's WeightBiasQuantization would quantize it per-tensor to 8 bits and the runtime would
        compute an int8 layer PyTorch computed in float. The classifier (output only) may read DQ."""
        from edgefleet_trainer.qat import insert_fake_quant
        from edgefleet_trainer.spec import parse_recipe
        for obj in (GENERIC, X86):
            recipe = parse_recipe(obj, "r")
            model = _random_bn(CompactCNN(width=0.25))
            gm, _ = prepare(model, recipe, fold_bn_now=True)
            names = [n for n, _ in layers(gm)]
            floats = [names[0], names[3], names[-1]]  # the first conv, a middle conv after another, the classifier
            plan = insert_fake_quant(gm, recipe, floats)
            self.assertEqual(sorted(plan.float_layers), sorted(floats))
            calibrate(gm, [torch.rand(8, 1, 28, 28)])
            path = os.path.join(self.tmp.name, recipe.id + "-mixed.onnx")
            export_onnx(gm, (1, 28, 28), path, quantized=True)
            m = onnx.load(path)
            prod = {o: n for n in m.graph.node for o in n.output}
            inits = {t.name for t in m.graph.initializer}
            convs = [n for n in m.graph.node if n.op_type == "Conv"]
            float_convs = [c for c in convs if c.input[1] in inits]  # float weight initializer
            self.assertEqual(len(float_convs), 2, recipe.id)
            for c in float_convs:
                p = prod.get(c.input[0])
                self.assertTrue(p is None or p.op_type != "DequantizeLinear", f"{recipe.id}: float conv reads {p.op_type if p else 'the input'}")
            # the model input is not quantized when only the float first conv reads it
            self.assertNotIn("QuantizeLinear", [n.op_type for n in m.graph.node if "input" in n.input])
            gemm = next(n for n in m.graph.node if n.op_type == "Gemm")
            self.assertIn(gemm.input[1], inits)
            self.assertEqual(prod[gemm.input[0]].op_type, "DequantizeLinear")  # output-only float layer keeps int8 upstream
            # the exported graph is still what PyTorch computes: int8 convs in between remain
            self.assertTrue(any(c.input[1] not in inits for c in convs), recipe.id)

    def test_finalize_idempotent(self) -> None:
        gm, *_ = self._export(X86, CompactCNN)
        x = torch.rand(4, 1, 28, 28)
        a = gm(x)
        finalize(gm)
        torch.testing.assert_close(gm(x), a)


if __name__ == "__main__":
    unittest.main()
