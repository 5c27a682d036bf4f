"""Quantization per recipe on a torch.fx graph: fold BN, fuse Conv/Linear/Add with ReLU,
place plain FakeQuantize modules where an int8 runtime wants Q/DQ pairs.

Why our own placement instead of torch.ao prepare_qat: the exported QDQ graph must match
what ONNX Runtime (QLinearConv/QGemm/QLinearAdd/QLinearGlobalAveragePool) and TensorRT fuse,
Conv+BN QAT modules do not export, and the same pass must work on zoo, user and torchvision
models on torch 1.13 and 2.x.
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import FakeQuantize
from torch.ao.quantization.observer import (MinMaxObserver, MovingAverageMinMaxObserver,
                                            PerChannelMinMaxObserver)
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .spec import Recipe

# --------------------------------------------------------------------------- fake quant factories


class _ReducedRangeWeightObserver(PerChannelMinMaxObserver):
    """7-bit weights (onnxruntime reduce_range) inside the exportable (-128, 127) range: double the scale."""

    def calculate_qparams(self):  # type: ignore[override]
        s, z = super().calculate_qparams()
        return s * 2.0, z


class _ReducedRangeWeightObserverPT(MinMaxObserver):
    def calculate_qparams(self):  # type: ignore[override]
        s, z = super().calculate_qparams()
        return s * 2.0, z


def act_quant_range(recipe: Recipe) -> Tuple[int, int, torch.dtype]:
    if recipe.act_dtype == "uint8":
        return 0, 255, torch.quint8
    return -128, 127, torch.qint8


def make_act_fq(recipe: Recipe) -> FakeQuantize:
    qmin, qmax, dtype = act_quant_range(recipe)
    qscheme = torch.per_tensor_symmetric if recipe.act_symmetric else torch.per_tensor_affine
    return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=qmin, quant_max=qmax,
                        dtype=dtype, qscheme=qscheme, averaging_constant=0.01)


def make_weight_fq(recipe: Recipe) -> FakeQuantize:
    if recipe.weight_per_channel:
        obs = _ReducedRangeWeightObserver if recipe.reduce_range else PerChannelMinMaxObserver
        return FakeQuantize(observer=obs, quant_min=-128, quant_max=127, dtype=torch.qint8,
                            qscheme=torch.per_channel_symmetric, ch_axis=recipe.weight_axis)
    obs_pt = _ReducedRangeWeightObserverPT if recipe.reduce_range else MinMaxObserver
    return FakeQuantize(observer=obs_pt, quant_min=-128, quant_max=127, dtype=torch.qint8,
                        qscheme=torch.per_tensor_symmetric)


def refresh_qparams(fq: FakeQuantize, x: torch.Tensor) -> None:
    """Recompute an observer's range from x alone (weights: the current values, not history)."""
    obs = fq.activation_post_process
    obs.reset_min_max_vals()  # type: ignore[operator]
    obs(x.detach())
    s, z = fq.calculate_qparams()
    s, z = s.to(fq.scale.device), z.to(fq.zero_point.device)
    if fq.scale.shape != s.shape:
        fq.scale.resize_(s.shape)
        fq.zero_point.resize_(z.shape)
    fq.scale.copy_(s)
    fq.zero_point.copy_(z)


class SharedFakeQuant(nn.Module):
    """Re-applies another FakeQuantize's qparams (after MaxPool/Flatten): same Q/DQ on both sides,
    so runtimes can drop the pair around the shape op."""

    def __init__(self, source: FakeQuantize) -> None:
        super().__init__()
        object.__setattr__(self, "_source", source)  # not a child: its state lives once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        src: FakeQuantize = self._source  # type: ignore[assignment]
        if src.fake_quant_enabled[0] == 0:
            return x
        return torch.fake_quantize_per_tensor_affine(x, src.scale, src.zero_point,
                                                     src.quant_min, src.quant_max)


# --------------------------------------------------------------------------- fused float+quant layers

_ACTS = ("relu", "relu6")


def _apply_act(y: torch.Tensor, act: Optional[str]) -> torch.Tensor:
    if act == "relu":
        return F.relu(y)
    if act == "relu6":
        return F.hardtanh(y, 0.0, 6.0)
    return y


class QuantConv(nn.Module):
    """Conv (+ BN until folded) (+ ReLU/ReLU6) with fake-quantized weights."""

    op_type = "Conv"

    def __init__(self, conv: nn.Conv2d, bn: Optional[nn.BatchNorm2d], act: Optional[str]) -> None:
        super().__init__()
        if conv.padding_mode != "zeros":
            raise ValueError("only zero-padded convolutions are supported")
        self.conv = conv
        self.bn = bn
        self.act = act
        self.weight_fq: Optional[FakeQuantize] = None

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight
        if self.weight_fq is not None:
            if self.weight_fq.observer_enabled[0] == 1:
                self.weight_fq.activation_post_process.reset_min_max_vals()  # type: ignore[operator]
            w = self.weight_fq(w)
        c = self.conv
        y = F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)
        if self.bn is not None:
            y = self.bn(y)
        return _apply_act(y, self.act)

    def fold_bn(self) -> bool:
        if self.bn is None:
            return False
        was_training = self.conv.training
        folded = fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
        folded.train(was_training)
        self.conv = folded
        self.bn = None
        if self.weight_fq is not None:
            refresh_qparams(self.weight_fq, self.conv.weight)
        return True


class QuantLinear(nn.Module):
    op_type = "Gemm"

    def __init__(self, linear: nn.Linear, act: Optional[str]) -> None:
        super().__init__()
        self.linear = linear
        self.act = act
        self.weight_fq: Optional[FakeQuantize] = None

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.linear.weight
        if self.weight_fq is not None:
            if self.weight_fq.observer_enabled[0] == 1:
                self.weight_fq.activation_post_process.reset_min_max_vals()  # type: ignore[operator]
            w = self.weight_fq(w)
        return _apply_act(F.linear(x, w, self.linear.bias), self.act)

    def fold_bn(self) -> bool:
        return False


class QuantAdd(nn.Module):
    op_type = "Add"

    def __init__(self, act: Optional[str]) -> None:
        super().__init__()
        self.act = act

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _apply_act(a + b, self.act)

    def fold_bn(self) -> bool:
        return False


LAYER_TYPES = (QuantConv, QuantLinear, QuantAdd)

# --------------------------------------------------------------------------- graph passes


def _act_of(node: fx.Node, modules: Dict[str, nn.Module]) -> Optional[str]:
    if node.op == "call_module":
        m = modules[str(node.target)]
        if isinstance(m, nn.ReLU):
            return "relu"
        if isinstance(m, nn.ReLU6):
            return "relu6"
        if isinstance(m, nn.Hardtanh) and m.min_val == 0.0 and m.max_val == 6.0:
            return "relu6"
    if node.op == "call_function" and node.target in (F.relu, torch.relu):
        return "relu"
    if node.op == "call_function" and node.target is F.relu6:
        return "relu6"
    if node.op == "call_method" and node.target == "relu":
        return "relu"
    return None


def _sole_user(node: fx.Node) -> Optional[fx.Node]:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _safe_name(target: str) -> str:
    return target.replace(".", "_")


def fuse_for_quant(model: nn.Module, fold_bn_now: bool) -> fx.GraphModule:
    """Trace and fuse Conv(+BN)(+ReLU), Linear(+ReLU), Add(+ReLU) into QuantConv/QuantLinear/QuantAdd
    (no fake quant yet). With fold_bn_now the BN is folded into the conv (eval statistics)."""
    model = copy.deepcopy(model)
    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    g = gm.graph
    for node in list(g.nodes):
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.Conv2d):
            conv = modules[str(node.target)]
            chain = [node]
            bn = None
            u = _sole_user(node)
            if u is not None and u.op == "call_module" and isinstance(modules.get(str(u.target)), nn.BatchNorm2d):
                bn = modules[str(u.target)]
                chain.append(u)
            u = _sole_user(chain[-1])
            act = _act_of(u, modules) if u is not None else None
            if act is not None and u is not None:
                chain.append(u)
            layer = QuantConv(conv, bn, act)  # type: ignore[arg-type]
            if fold_bn_now:
                layer.fold_bn()
            _replace_chain(gm, chain, "q_" + _safe_name(str(node.target)), layer, node.args)
        elif node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.Linear):
            chain = [node]
            u = _sole_user(node)
            act = _act_of(u, modules) if u is not None else None
            if act is not None and u is not None:
                chain.append(u)
            _replace_chain(gm, chain, "q_" + _safe_name(str(node.target)),
                           QuantLinear(modules[str(node.target)], act), node.args)  # type: ignore[arg-type]
        elif (node.op == "call_function" and node.target in (operator.add, torch.add)
              and len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args) and not node.kwargs):
            chain = [node]
            u = _sole_user(node)
            act = _act_of(u, modules) if u is not None else None
            if act is not None and u is not None:
                chain.append(u)
            _replace_chain(gm, chain, f"q_add_{node.name}", QuantAdd(act), node.args)
    g.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def _replace_chain(gm: fx.GraphModule, chain: List[fx.Node], name: str, module: nn.Module, args) -> None:
    base, i = name, 1
    while hasattr(gm, name):
        i += 1
        name = f"{base}_{i}"
    gm.add_submodule(name, module)
    with gm.graph.inserting_after(chain[-1]):
        new = gm.graph.call_module(name, tuple(args))
    chain[-1].replace_all_uses_with(new)
    for n in reversed(chain):
        gm.graph.erase_node(n)


_PASSTHROUGH_MODULES = (nn.MaxPool2d, nn.Flatten)
_TRANSPARENT_MODULES = (nn.Dropout, nn.Identity)
_POOL_MODULES = (nn.AdaptiveAvgPool2d, nn.AvgPool2d)
_PASSTHROUGH_FUNCS = {torch.flatten, F.max_pool2d, torch.reshape}
_POOL_FUNCS = {F.adaptive_avg_pool2d, F.avg_pool2d}
_PASSTHROUGH_METHODS = {"view", "reshape", "flatten", "contiguous", "squeeze", "unsqueeze"}


def _kind(node: fx.Node, modules: Dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        m = modules[str(node.target)]
        if isinstance(m, LAYER_TYPES):
            return "layer"
        if isinstance(m, (FakeQuantize, SharedFakeQuant)):
            return "fq"
        if isinstance(m, _PASSTHROUGH_MODULES):
            return "pass"
        if isinstance(m, _TRANSPARENT_MODULES):
            return "transparent"
        if isinstance(m, _POOL_MODULES):
            return "pool"
    elif node.op == "call_function":
        if node.target in _PASSTHROUGH_FUNCS:
            return "pass"
        if node.target in _POOL_FUNCS:
            return "pool"
        if node.target is F.dropout:
            return "transparent"
    elif node.op == "call_method":
        if node.target in _PASSTHROUGH_METHODS:
            return "pass"
        if node.target == "mean":
            return "pool"
    return "other"


def _pool_op_type(node: fx.Node, modules: Dict[str, nn.Module]) -> str:
    if node.op == "call_module" and isinstance(modules[str(node.target)], nn.AvgPool2d):
        return "AveragePool"
    return "GlobalAveragePool"


@dataclass
class QuantPlan:
    recipe_id: str
    float_layers: List[str]
    quantized_layers: List[str]
    activation_quantizers: int
    # compute ops the recipe has no int8 form for (SiLU, Sigmoid, Mul, Concat...): they run in float
    # between Q/DQ pairs, as "OpType (node)" for the job's warnings
    unquantized_ops: List[str] = field(default_factory=list)


# not computations: shape queries and attribute reads stay unnamed in the warnings
_NOT_OPS = {"getattr", "getitem", "size", "dim", "type", "to", "float", "numel", "shape"}


def _op_name(node: fx.Node, modules: Dict[str, nn.Module]) -> Optional[str]:
    if node.op == "call_module":
        return type(modules[str(node.target)]).__name__
    if node.op in ("call_function", "call_method"):
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
        return None if str(name) in _NOT_OPS else str(name)
    return None


def strip_activation_fq(gm: fx.GraphModule) -> None:
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), (FakeQuantize, SharedFakeQuant)):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()


def insert_fake_quant(gm: fx.GraphModule, recipe: Recipe, float_layers: Iterable[str] = ()) -> QuantPlan:
    """Place activation FakeQuantize nodes and weight fake quant, in place. Layers named in
    float_layers, or whose ONNX op type is in recipe.float_ops, stay float."""
    strip_activation_fq(gm)
    device = next((p.device for p in gm.parameters()), torch.device("cpu"))
    float_set: Set[str] = set(float_layers)
    modules = dict(gm.named_modules())
    g = gm.graph
    quantized: Dict[fx.Node, Optional[FakeQuantize]] = {}
    counter = [0]
    plan_q: List[str] = []
    plan_f: List[str] = []
    unquantized: List[str] = []

    def new_fq() -> Tuple[str, FakeQuantize]:
        counter[0] += 1
        name = f"act_fq_{counter[0]}"
        while hasattr(gm, name):
            counter[0] += 1
            name = f"act_fq_{counter[0]}"
        fq = make_act_fq(recipe).to(device)
        gm.add_submodule(name, fq)
        return name, fq

    def quantize_after(node: fx.Node, shared: Optional[FakeQuantize] = None) -> fx.Node:
        if shared is not None:
            counter[0] += 1
            name = f"shared_fq_{counter[0]}"
            gm.add_submodule(name, SharedFakeQuant(shared))
            fq = shared
        else:
            name, fq = new_fq()
        with g.inserting_after(node):
            q = g.call_module(name, (node,))
        node.replace_all_uses_with(q)
        q.args = (node,)
        quantized[q] = fq
        return q

    def quantize_input(node: fx.Node, arg: fx.Node) -> None:
        if quantized.get(arg) is not None:
            return
        name, fq = new_fq()
        with g.inserting_before(node):
            q = g.call_module(name, (arg,))
        node.replace_input_with(arg, q)
        quantized[q] = fq

    def is_float_layer(node: fx.Node) -> bool:
        m = modules[str(node.target)]
        return str(node.target) in float_set or m.op_type in recipe.float_ops or (
            isinstance(m, QuantAdd) and not recipe.quantize_residual_add) or (
            isinstance(m, QuantLinear) and "MatMul" in recipe.float_ops)

    # A float Conv/Linear must read a float input unless nothing downstream of it is quantized.
    # onnxruntime's WeightBiasQuantization rewrites a float Conv/Gemm whose input comes from
    # DequantizeLinear and whose output reaches a QuantizeLinear (through Relu/Clip, or MaxPool once
    # Q/DQ propagation moved the Q) into an int8 QLinearConv with its own per-tensor 8-bit weights:
    # the layer the trainer kept in float because it was the most sensitive to quantization runs
    # quantized after all, and the runtime no longer agrees with PyTorch (86.9% on digits).
    float_readers: Set[fx.Node] = set()
    for node in g.nodes:
        if _kind(node, modules) == "layer" and is_float_layer(node) and not isinstance(modules[str(node.target)], QuantAdd):
            if not all(u.op == "output" for u in node.users):
                float_readers.add(node)
    # nodes whose every reader is such a float layer (directly or through shape ops): no Q/DQ after them
    feeds_float_only: Set[fx.Node] = set()
    for node in reversed(list(g.nodes)):
        users = list(node.users)
        if users and all(u in float_readers or (_kind(u, modules) in ("pass", "transparent", "pool") and u in feeds_float_only)
                         for u in users):
            feeds_float_only.add(node)

    for node in list(g.nodes):
        if node in quantized:  # inserted by us
            continue
        kind = _kind(node, modules)
        if node.op == "placeholder":
            if node in feeds_float_only:
                quantized[node] = None
            else:
                quantize_after(node)
        elif kind == "layer":
            m = modules[str(node.target)]
            if is_float_layer(node):
                if not isinstance(m, QuantAdd):
                    m.weight_fq = None
                if node in float_readers:  # read the value before any fake quant on this edge
                    for a in list(node.args):
                        if isinstance(a, fx.Node) and a in quantized and a.op == "call_module" and isinstance(
                                modules.get(str(a.target), getattr(gm, str(a.target), None)), (FakeQuantize, SharedFakeQuant)):
                            node.replace_input_with(a, a.args[0])  # type: ignore[arg-type]
                plan_f.append(str(node.target))
                quantized[node] = None
                continue
            plan_q.append(str(node.target))
            for a in node.args:
                if isinstance(a, fx.Node):
                    quantize_input(node, a)
            if not isinstance(m, QuantAdd):
                if m.weight_fq is None:
                    m.weight_fq = make_weight_fq(recipe).to(m.weight.device)
                    refresh_qparams(m.weight_fq, m.weight)
            users = list(node.users)
            feeds_output_only = all(u.op == "output" for u in users)
            if (isinstance(m, QuantLinear) and feeds_output_only) or node in feeds_float_only:
                quantized[node] = None  # logits stay float (QGemm with float output), or only float layers read it
            else:
                quantize_after(node)
        elif kind == "pass":
            src = quantized.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
            if src is not None and "MaxPool" not in recipe.float_ops and node not in feeds_float_only:
                quantize_after(node, shared=src)
            else:
                quantized[node] = None
        elif kind == "transparent":
            quantized[node] = quantized.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        elif kind == "pool":
            src = quantized.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
            if src is not None and _pool_op_type(node, modules) not in recipe.float_ops and node not in feeds_float_only:
                quantize_after(node)
            else:
                quantized[node] = None
        else:
            name = _op_name(node, modules)
            if name is not None:
                unquantized.append(f"{name} ({node.name})")
            quantized[node] = None
    g.lint()
    gm.recompile()
    n_act = sum(1 for m in gm.modules() if isinstance(m, FakeQuantize)) - len(plan_q)
    return QuantPlan(recipe.id, plan_f, plan_q, n_act, unquantized)


def prepare(model: nn.Module, recipe: Recipe, *, fold_bn_now: bool,
            float_layers: Iterable[str] = ()) -> Tuple[fx.GraphModule, QuantPlan]:
    gm = fuse_for_quant(model, fold_bn_now)
    plan = insert_fake_quant(gm, recipe, float_layers)
    return gm, plan


# --------------------------------------------------------------------------- schedule helpers


def layers(gm: nn.Module) -> List[Tuple[str, nn.Module]]:
    return [(n, m) for n, m in gm.named_modules() if isinstance(m, LAYER_TYPES)]


def act_fqs(gm: nn.Module) -> List[FakeQuantize]:
    weight_ids = {id(m.weight_fq) for _, m in layers(gm) if getattr(m, "weight_fq", None) is not None}
    return [m for m in gm.modules() if isinstance(m, FakeQuantize) and id(m) not in weight_ids]


def fold_all_bn(gm: nn.Module) -> bool:
    changed = False
    for _, m in layers(gm):
        changed = m.fold_bn() or changed  # type: ignore[operator]
    return changed


def set_act_observers(gm: nn.Module, enabled: bool) -> None:
    for fq in act_fqs(gm):
        fq.enable_observer(enabled)


def set_fake_quant(gm: nn.Module, enabled: bool) -> None:
    for m in gm.modules():
        if isinstance(m, FakeQuantize):
            m.enable_fake_quant(enabled)


def finalize(gm: nn.Module) -> None:
    """Weights' qparams from their final values, every observer off: ready to evaluate and export."""
    fold_all_bn(gm)
    for _, m in layers(gm):
        wfq = getattr(m, "weight_fq", None)
        if wfq is not None:
            refresh_qparams(wfq, m.weight)  # type: ignore[arg-type]
    for m in gm.modules():
        if isinstance(m, FakeQuantize):
            m.disable_observer()
            m.enable_fake_quant()


@torch.no_grad()
def calibrate(gm: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """PTQ: observe float activations (fake quant off), then switch fake quant on."""
    gm.eval()
    for m in gm.modules():
        if isinstance(m, FakeQuantize):
            m.enable_observer()
            m.disable_fake_quant()
    for x in batches:
        gm(x)
    finalize(gm)
