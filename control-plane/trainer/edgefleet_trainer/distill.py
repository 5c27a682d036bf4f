"""Training loops: hard-label training, Hinton knowledge distillation, and the QAT loop hooks."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Split, batches, steps_per_epoch
from .emit import emit


def kd_loss(student_logits: torch.Tensor, teacher_logits: Optional[torch.Tensor], labels: torch.Tensor,
            temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y)."""
    ce = F.cross_entropy(student_logits, labels)
    if teacher_logits is None or alpha == 0.0:
        return ce
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                  reduction="batchmean", log_target=True)
    return alpha * t * t * kl + (1.0 - alpha) * ce


def make_optimizer(params, kind: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def lr_at(step: int, total: int, base: float, warmup_frac: float = 0.05) -> float:
    """Linear warm-up then cosine decay to zero: converges in few epochs, which is what CPUs afford."""
    warm = max(1, int(total * warmup_frac))
    if step < warm:
        return base * (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, p)))


@torch.no_grad()
def predict(model: nn.Module, split: Split, device: torch.device, batch_size: int = 512) -> np.ndarray:
    model.eval()
    out: List[np.ndarray] = []
    for x, _ in batches(split, batch_size, device=device, shuffle=False):
        out.append(model(x).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def accuracy(model: nn.Module, split: Split, device: torch.device, batch_size: int = 512) -> float:
    pred = predict(model, split, device, batch_size)
    return float((pred == split.y).mean()) if len(pred) else 0.0


@dataclass
class Phase:
    name: str  # teacher | student-hard | distill | qat
    epochs: int
    lr: float
    recipe_id: Optional[str] = None


class JobPlan:
    """The planned optimizer steps of every training phase of a job, in order ("teacher", "student-hard",
    "distill", "qat:<recipe>" ...), so a progress line can say how long the whole job has left, not only its
    current phase. The estimate is deliberately simple: remaining planned steps of all phases times the seconds
    per step measured in the running phase (not scaled by model cost: a teacher step and a student step are
    counted alike; PTQ, exports and evaluations are not counted)."""

    def __init__(self, phases: Sequence[Tuple[str, int]]) -> None:
        self.phases: List[Tuple[str, int]] = [(k, max(0, int(n))) for k, n in phases]
        self.sec_per_step: Optional[float] = None  # the last measured rate, for lines outside a training loop

    def estimate(self, key: str, step: int, sec_per_step: Optional[float]) -> Tuple[Optional[float], Optional[float]]:
        """(jobEtaSeconds, jobProgress 0..1) at `step` steps into phase `key`; (None, None) for a phase not planned."""
        keys = [k for k, _ in self.phases]
        if key not in keys:
            return None, None
        i = keys.index(key)
        total = sum(n for _, n in self.phases)
        done = sum(n for _, n in self.phases[:i]) + min(max(0, step), self.phases[i][1])
        if sec_per_step is not None:
            self.sec_per_step = sec_per_step
        rate = self.sec_per_step
        eta = (total - done) * rate if rate is not None else None
        return eta, (done / total if total else 1.0)


def phase_key(name: str, recipe_id: Optional[str]) -> str:
    return f"{name}:{recipe_id}" if recipe_id else name


StepHook = Callable[[float], Optional[nn.Module]]  # (fractional epoch) -> model whose params changed, or None


def train(model: nn.Module, phase: Phase, train_split: Split, eval_split: Optional[Split], *,
          device: torch.device, batch_size: int, optimizer: str, weight_decay: float, seed: int,
          augment: Optional[Augment], teacher: Optional[nn.Module] = None, temperature: float = 4.0, alpha: float = 0.0,
          on_step: Optional[StepHook] = None, job_id: Optional[str] = None,
          plan: Optional[JobPlan] = None) -> Tuple[float, float]:
    """Train in place; returns (seconds, last eval accuracy or nan). Emits progress lines."""
    if phase.epochs <= 0:
        return 0.0, float("nan")
    gen = torch.Generator().manual_seed(seed)
    spe = steps_per_epoch(train_split, batch_size)
    total = spe * phase.epochs
    opt = make_optimizer(model.parameters(), optimizer, phase.lr, weight_decay)
    if teacher is not None:
        teacher.eval()
    t0 = time.time()
    step = 0
    report_every = max(1, spe // 5)
    acc = float("nan")
    for epoch in range(phase.epochs):
        model.train()
        run_loss, run_n = 0.0, 0
        for x, y in batches(train_split, batch_size, device=device, shuffle=True, gen=gen, drop_last=True, aug=augment):
            if on_step is not None:
                changed = on_step(epoch + (step % spe) / spe)
                if changed is not None:  # BN folded: parameters were replaced
                    opt = make_optimizer(changed.parameters(), optimizer, phase.lr, weight_decay)
            lr = lr_at(step, total, phase.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(x)
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x)
                loss = kd_loss(logits, t_logits, y, temperature, alpha)
            else:
                loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            run_loss += float(loss.detach()) * len(y)
            run_n += len(y)
            if step % report_every == 0 and step % spe != 0:
                _progress(phase, epoch, step, total, run_loss / max(1, run_n), None, lr, t0, job_id, plan)
        if on_step is not None and epoch == phase.epochs - 1:
            on_step(float(phase.epochs))
        acc = accuracy(model, eval_split, device) if eval_split is not None else float("nan")
        _progress(phase, epoch, step, total, run_loss / max(1, run_n), acc, lr_at(step - 1, total, phase.lr), t0, job_id, plan)
    return time.time() - t0, acc


def _progress(phase: Phase, epoch: int, step: int, total: int, loss: float, acc: Optional[float],
              lr: float, t0: float, job_id: Optional[str], plan: Optional[JobPlan] = None) -> None:
    elapsed = time.time() - t0
    eta = elapsed / step * (total - step) if step else None
    line = {"type": "progress", "phase": phase.name, "epoch": epoch + 1, "epochs": phase.epochs, "step": step,
            "totalSteps": total, "loss": loss, "accuracy": acc, "lr": lr, "etaSeconds": eta}
    if phase.recipe_id is not None:
        line["recipeId"] = phase.recipe_id
    if plan is not None:
        job_eta, job_progress = plan.estimate(phase_key(phase.name, phase.recipe_id), step, elapsed / step if step else None)
        if job_progress is not None:
            line["jobEtaSeconds"] = job_eta
            line["jobProgress"] = job_progress
    if job_id is not None:
        line["jobId"] = job_id
    emit(line)
