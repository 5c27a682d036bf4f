import math
import unittest

import torch
import torch.nn.functional as F

from edgefleet_trainer.distill import JobPlan, kd_loss, lr_at, phase_key


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


class JobPlanTest(unittest.TestCase):
    """The whole-job ETA: remaining planned steps of every phase times the measured seconds per step."""

    def plan(self) -> JobPlan:
        return JobPlan([("teacher", 20), ("distill", 20), (phase_key("qat", "a"), 10), (phase_key("qat", "b"), 10)])

    def test_counts_every_remaining_phase(self) -> None:
        p = self.plan()
        eta, progress = p.estimate("teacher", 5, 0.5)
        self.assertAlmostEqual(eta, (15 + 20 + 10 + 10) * 0.5)
        self.assertAlmostEqual(progress, 5 / 60)
        eta, progress = p.estimate("qat:a", 4, 2.0)
        self.assertAlmostEqual(eta, (6 + 10) * 2.0)
        self.assertAlmostEqual(progress, 44 / 60)
        eta, progress = p.estimate("qat:b", 10, 2.0)
        self.assertEqual((eta, progress), (0.0, 1.0))

    def test_without_a_rate_uses_the_last_measured_one(self) -> None:
        p = self.plan()
        self.assertEqual(p.estimate("distill", 0, None), (None, 20 / 60))  # nothing measured yet
        p.estimate("distill", 10, 0.25)
        eta, progress = p.estimate("qat:b", 0, None)  # e.g. the PTQ line before recipe b's QAT
        self.assertAlmostEqual(eta, 10 * 0.25)
        self.assertAlmostEqual(progress, 50 / 60)

    def test_unplanned_phase_and_overrun_step(self) -> None:
        p = self.plan()
        self.assertEqual(p.estimate("student-hard", 3, 1.0), (None, None))
        eta, progress = p.estimate("teacher", 99, 1.0)  # never counts past the phase's plan
        self.assertAlmostEqual(eta, 40.0)
        self.assertAlmostEqual(progress, 20 / 60)
        self.assertEqual(JobPlan([]).estimate("teacher", 0, 1.0), (None, None))
