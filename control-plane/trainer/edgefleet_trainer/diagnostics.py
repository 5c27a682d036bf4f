"""Where quantization hurts: per-layer SQNR/cosine (local and accumulated), activation outliers,
and a greedy mixed-precision search that keeps the most sensitive layers in float."""
from __future__ import annotations

import copy
import math
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.fx as fx
from torch import nn
from torch.ao.quantization import FakeQuantize

from .qat import LAYER_TYPES, QuantAdd, calibrate, insert_fake_quant
from .spec import Recipe


def sqnr_db(ref: torch.Tensor, q: torch.Tensor) -> float:
    sig = float(ref.double().pow(2).sum())
    noise = float((ref.double() - q.double()).pow(2).sum())
    if noise == 0.0:
        return 200.0
    if sig == 0.0:
        return -200.0
    return 10.0 * math.log10(sig / noise)


def cosine(ref: torch.Tensor, q: torch.Tensor) -> float:
    a, b = ref.flatten().double(), q.flatten().double()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 1.0


def _out_fq(gm: fx.GraphModule) -> Dict[str, Optional[str]]:
    """Layer name -> the FakeQuantize module right after it (None if its output stays float)."""
    modules = dict(gm.named_modules())
    out: Dict[str, Optional[str]] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), LAYER_TYPES):
            users = list(node.users)
            fq = None
            if len(users) == 1 and users[0].op == "call_module" and isinstance(
                    modules.get(str(users[0].target)), FakeQuantize):
                fq = str(users[0].target)
            out[str(node.target)] = fq
    return out


def _set_all_fake_quant(gm: nn.Module, on: bool) -> None:
    for m in gm.modules():
        if isinstance(m, FakeQuantize):
            m.enable_fake_quant(on)


@torch.no_grad()
def layer_report(gm: fx.GraphModule, x: torch.Tensor, outlier_ratio: float = 8.0) -> List[Dict[str, object]]:
    """Per quantized layer: local error (this layer's weight + output quantization, same input),
    accumulated error (whole quantized model vs float model), activation range and outlier score."""
    gm.eval()
    modules = dict(gm.named_modules())
    out_fq = _out_fq(gm)
    names = [n for n, m in modules.items() if isinstance(m, LAYER_TYPES)]
    captured_q: Dict[str, Tuple[Tuple[torch.Tensor, ...], torch.Tensor]] = {}
    captured_f: Dict[str, torch.Tensor] = {}

    def hook_q(name: str):
        def h(_m, inp, out):
            captured_q[name] = (tuple(i.detach() for i in inp), out.detach())
        return h

    def hook_f(name: str):
        def h(_m, _inp, out):
            captured_f[name] = out.detach()
        return h

    handles = [modules[n].register_forward_hook(hook_q(n)) for n in names]
    gm(x)
    for h in handles:
        h.remove()
    _set_all_fake_quant(gm, False)
    handles = [modules[n].register_forward_hook(hook_f(n)) for n in names]
    gm(x)
    for h in handles:
        h.remove()
    _set_all_fake_quant(gm, True)

    report: List[Dict[str, object]] = []
    for n in names:
        m = modules[n]
        inp, out_q_raw = captured_q[n]
        fqn = out_fq.get(n)
        fq = modules[fqn] if fqn else None
        quantized = fq is not None or getattr(m, "weight_fq", None) is not None
        # local: same (quantized) input, float weights and no output quantization as the reference
        wfq = getattr(m, "weight_fq", None)
        if wfq is not None:
            wfq.disable_fake_quant()
        ref_local = m(*inp)
        if wfq is not None:
            wfq.enable_fake_quant()
        q_local = fq(out_q_raw) if fq is not None else out_q_raw
        ref_acc = captured_f[n]
        a = ref_acc.abs().flatten().float()
        p999 = float(torch.quantile(a[:1_000_000], 0.999)) if a.numel() else 0.0
        amax = float(a.max()) if a.numel() else 0.0
        ratio = amax / p999 if p999 > 0 else (math.inf if amax > 0 else 1.0)
        row: Dict[str, object] = {
            "layer": n, "opType": getattr(m, "op_type", type(m).__name__), "quantized": bool(quantized),
            "sqnrDb": round(sqnr_db(ref_local, q_local), 3), "cosine": round(cosine(ref_local, q_local), 6),
            "accumulatedSqnrDb": round(sqnr_db(ref_acc, q_local), 3),
            "accumulatedCosine": round(cosine(ref_acc, q_local), 6),
            "activationMin": float(ref_acc.min()), "activationMax": float(ref_acc.max()),
            "activationP999": p999, "outlierRatio": round(ratio, 3) if math.isfinite(ratio) else None,
            "outlier": bool(ratio > outlier_ratio),
        }
        if fq is not None:
            row["scale"] = float(fq.scale.flatten()[0])
            row["zeroPoint"] = int(fq.zero_point.flatten()[0])
        report.append(row)
    return report


def mixed_precision(gm: fx.GraphModule, recipe: Recipe, report: List[Dict[str, object]], *,
                    fp32_accuracy: float, quant_accuracy: float, max_drop: float, max_float_layers: int,
                    calib: Callable[[], List[torch.Tensor]], evaluate: Callable[[nn.Module], float]
                    ) -> Tuple[fx.GraphModule, Dict[str, object]]:
    """Greedy: keep the k lowest-SQNR layers float (k = 1, 2, ...) until the drop fits the budget."""
    info: Dict[str, object] = {"budget": max_drop, "fp32Accuracy": fp32_accuracy,
                               "int8Accuracy": quant_accuracy, "floatLayers": [], "tried": []}
    if fp32_accuracy - quant_accuracy <= max_drop:
        info["decision"] = "within budget, all layers int8"
        return gm, info
    ranked = [str(r["layer"]) for r in sorted(
        (r for r in report if r["quantized"] and r["opType"] != QuantAdd.op_type),
        key=lambda r: float(r["sqnrDb"]))]  # type: ignore[arg-type]
    best_gm, best_acc, best_layers = gm, quant_accuracy, []  # type: ignore[var-annotated]
    tried: List[Dict[str, object]] = []
    for k in range(1, min(max_float_layers, len(ranked)) + 1):
        floats = ranked[:k]
        cand = copy.deepcopy(gm)
        insert_fake_quant(cand, recipe, floats)
        calibrate(cand, calib())
        acc = evaluate(cand)
        tried.append({"floatLayers": floats, "accuracy": acc})
        if acc > best_acc:
            best_gm, best_acc, best_layers = cand, acc, floats
        if fp32_accuracy - acc <= max_drop:
            break
    info["tried"] = tried
    info["floatLayers"] = best_layers
    info["int8Accuracy"] = best_acc
    info["decision"] = ("within budget with float layers" if fp32_accuracy - best_acc <= max_drop
                        else "budget not met; kept the best found")
    return best_gm, info


def keep_most_sensitive_float(gm: fx.GraphModule, recipe: Recipe, report: List[Dict[str, object]], k: int, *,
                              calib: Callable[[], List[torch.Tensor]]) -> Tuple[fx.GraphModule, List[str]]:
    """Tuning variant: the k lowest-SQNR quantized layers kept in float, whatever the accuracy budget."""
    ranked = [str(r["layer"]) for r in sorted(
        (r for r in report if r["quantized"] and r["opType"] != QuantAdd.op_type),
        key=lambda r: float(r["sqnrDb"]))]  # type: ignore[arg-type]
    floats = ranked[:k]
    if not floats:
        return gm, []
    cand = copy.deepcopy(gm)
    insert_fake_quant(cand, recipe, floats)
    calibrate(cand, calib())
    return cand, floats
