import math
import unittest

import torch
import torch.nn.functional as F

from edgefleet_trainer.distill import kd_loss, lr_at


class KdLossTest(unittest.TestCase):
    def test_matches_hinton_formula(self) -> None:
        torch.manual_seed(0)
        zs, zt = torch.randn(6, 5), torch.randn(6, 5)
        y = torch.tensor([0, 1, 2, 3, 4, 0])
        T, alpha = 3.0, 0.6
        pt = torch.softmax(zt / T, 1)
        ps = torch.softmax(zs / T, 1)
        kl = (pt * (pt.log() - ps.log())).sum(1).mean()
        want = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(zs, y)
        self.assertAlmostEqual(float(kd_loss(zs, zt, y, T, alpha)), float(want), places=5)

    def test_alpha_zero_is_cross_entropy_and_equal_logits_have_zero_kl(self) -> None:
        zs = torch.randn(4, 3)
        y = torch.tensor([0, 1, 2, 1])
        self.assertAlmostEqual(float(kd_loss(zs, torch.randn(4, 3), y, 4.0, 0.0)), float(F.cross_entropy(zs, y)), places=6)
        self.assertAlmostEqual(float(kd_loss(zs, zs.clone(), y, 4.0, 1.0)), 0.0, places=6)

    def test_gradient_flows_to_student_only(self) -> None:
        zs = torch.randn(4, 3, requires_grad=True)
        zt = torch.randn(4, 3, requires_grad=True)
        kd_loss(zs, zt.detach(), torch.tensor([0, 1, 2, 0]), 2.0, 0.5).backward()
        self.assertIsNotNone(zs.grad)
        self.assertIsNone(zt.grad)

    def test_lr_schedule_warms_up_and_decays(self) -> None:
        total = 100
        self.assertLess(lr_at(0, total, 1.0), 1.0)
        self.assertTrue(math.isclose(lr_at(5, total, 1.0), 1.0, rel_tol=1e-6))
        self.assertLess(lr_at(99, total, 1.0), 0.01)


if __name__ == "__main__":
    unittest.main()
