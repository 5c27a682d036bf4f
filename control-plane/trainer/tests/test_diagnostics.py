import unittest

import torch

from edgefleet_trainer.diagnostics import cosine, layer_report, mixed_precision, sqnr_db
from edgefleet_trainer.models import CompactCNN
from edgefleet_trainer.qat import calibrate, prepare
from edgefleet_trainer.spec import parse_recipe
from tests.helpers import X86


class DiagnosticsTest(unittest.TestCase):
    def test_metrics(self) -> None:
        a = torch.randn(1000)
        self.assertAlmostEqual(sqnr_db(a, a + 0.1 * a), 20.0, places=3)
        self.assertAlmostEqual(cosine(a, 2 * a), 1.0, places=6)
        self.assertEqual(sqnr_db(a, a), 200.0)

    def test_layer_report_and_mixed_precision(self) -> None:
        torch.manual_seed(0)
        recipe = parse_recipe(X86, "r")
        model = CompactCNN(width=0.5).eval()
        gm, plan = prepare(model, recipe, fold_bn_now=True)
        x = torch.rand(16, 1, 28, 28)
        x[0, 0, 0, 0] = 1.0
        calibrate(gm, [x])
        report = layer_report(gm, x)
        self.assertEqual([r["layer"] for r in report], plan.quantized_layers)
        for r in report:
            self.assertGreater(r["sqnrDb"], 10.0, r)
            self.assertGreater(r["cosine"], 0.9, r)
        # a budget of -1 can never be met: the search tries up to max_float_layers and keeps the best
        calls = []
        best, info = mixed_precision(gm, recipe, report, fp32_accuracy=1.0, quant_accuracy=0.0, max_drop=-1.0,
                                     max_float_layers=2, calib=lambda: [x],
                                     evaluate=lambda m: calls.append(1) or 0.5)
        self.assertEqual(len(info["tried"]), 2)
        self.assertEqual(len(info["floatLayers"]), 1)
        weakest = min((r for r in report if r["opType"] != "Add"), key=lambda r: r["sqnrDb"])["layer"]
        self.assertEqual(info["floatLayers"], [weakest])
        self.assertIsNone(dict(best.named_modules())[weakest].weight_fq)


if __name__ == "__main__":
    unittest.main()
