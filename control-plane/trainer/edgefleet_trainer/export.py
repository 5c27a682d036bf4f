"""ONNX export: fp32 models as is; fake-quantized models as QDQ with int8 weight initializers,
scalar per-tensor qparams and int32 biases, so runtimes fuse them into integer kernels."""
from __future__ import annotations

import copy
import hashlib
import inspect
import io
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(model: nn.Module, input_shape: Tuple[int, int, int], path: str, opset: int = 13,
                quantized: bool = False) -> onnx.ModelProto:
    m = copy.deepcopy(model).cpu().eval()
    dummy = torch.zeros(1, *input_shape)
    buf = io.BytesIO()
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch 2.x: the TorchScript exporter knows FakeQuantize -> Q/DQ
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches in FakeQuantize
        torch.onnx.export(m, (dummy,), buf, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True, **kwargs)
    proto = onnx.load_from_string(buf.getvalue())
    if quantized:
        proto = postprocess_qdq(proto)
    proto.producer_name = "edgefleet-trainer"
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return proto


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.g = model.graph
        self.inits: Dict[str, TensorProto] = {t.name: t for t in self.g.initializer}
        self.reserved: set = set()
        self._promote_constants()
        self._bypass_identities()

    def _promote_constants(self) -> None:
        """Constant nodes -> initializers, so every qparam is found in one place."""
        keep = []
        for n in self.g.node:
            if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
                t = copy.deepcopy(n.attribute[0].t)
                t.name = n.output[0]
                self.g.initializer.append(t)
                self.inits[t.name] = t
            else:
                keep.append(n)
        del self.g.node[:]
        self.g.node.extend(keep)

    def _bypass_identities(self) -> None:
        """The exporter dedups equal initializers through Identity nodes; read through them."""
        outputs = {o.name for o in self.g.output}
        alias: Dict[str, str] = {}
        keep = []
        for n in self.g.node:
            src = alias.get(n.input[0], n.input[0]) if n.input else ""
            if n.op_type == "Identity" and src in self.inits and n.output[0] not in outputs:
                alias[n.output[0]] = src
            else:
                keep.append(n)
        for n in keep:
            for i, name in enumerate(n.input):
                if name in alias:
                    n.input[i] = alias[name]
        del self.g.node[:]
        self.g.node.extend(keep)

    def arr(self, name: str) -> Optional[np.ndarray]:
        t = self.inits.get(name)
        return None if t is None else numpy_helper.to_array(t)

    def set_init(self, name: str, value: np.ndarray) -> None:
        t = numpy_helper.from_array(value, name)
        if name in self.inits:
            self.inits[name].CopyFrom(t)
        else:
            self.g.initializer.append(t)
            self.inits[name] = self.g.initializer[-1]

    def producers(self) -> Dict[str, onnx.NodeProto]:
        return {o: n for n in self.g.node for o in n.output}

    def consumers(self) -> Dict[str, List[onnx.NodeProto]]:
        out: Dict[str, List[onnx.NodeProto]] = {}
        for n in self.g.node:
            for i in n.input:
                out.setdefault(i, []).append(n)
        return out

    def unique(self, base: str) -> str:
        names = set(self.inits) | {o for n in self.g.node for o in n.output} | self.reserved
        name, i = base, 0
        while name in names:
            i += 1
            name = f"{base}_{i}"
        self.reserved.add(name)
        return name

    def prune(self) -> None:
        """Drop nodes and initializers nothing reaches from the outputs (nodes keyed by their
        first output: protobuf hands out fresh wrappers, so id() is not stable)."""
        nodes = list(self.g.node)
        prod = {o: i for i, n in enumerate(nodes) for o in n.output}
        live = set()
        stack = [o.name for o in self.g.output]
        while stack:
            i = prod.get(stack.pop())
            if i is None or i in live:
                continue
            live.add(i)
            stack.extend(x for x in nodes[i].input if x)
        kept_nodes = [copy.deepcopy(n) for i, n in enumerate(nodes) if i in live]
        del self.g.node[:]
        self.g.node.extend(kept_nodes)
        used = {i for n in self.g.node for i in n.input} | {o.name for o in self.g.output}
        kept = [copy.deepcopy(t) for t in self.g.initializer if t.name in used]
        del self.g.initializer[:]
        self.g.initializer.extend(kept)
        self.inits = {t.name: t for t in self.g.initializer}


def _quantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int, dtype: np.dtype) -> np.ndarray:
    if scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape)
    info = np.iinfo(dtype)
    q = np.rint(x.astype(np.float64) / scale.astype(np.float64)) + zp.astype(np.float64)
    return np.clip(q, info.min, info.max).astype(dtype)


def postprocess_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    gr = _Graph(model)
    _fold_weight_quantize(gr)
    _scalar_qparams(gr)
    _quantize_biases(gr)
    _unshare_zero_points(gr)
    gr.prune()
    _compact_names(gr)
    return model


def _compact_names(gr: _Graph) -> None:
    """Short tensor and node names: on a small int8 model the exporter's long names are a
    noticeable share of the file, and devices download every byte."""
    keep = {i.name for i in gr.g.input} | {o.name for o in gr.g.output}
    mapping: Dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping)}"
        return mapping[name]

    for t in gr.g.initializer:
        t.name = short(t.name)
    for k, n in enumerate(gr.g.node):
        for i, name in enumerate(n.input):
            n.input[i] = short(name)
        for i, name in enumerate(n.output):
            n.output[i] = short(name)
        n.name = f"n{k}"
    del gr.g.value_info[:]
    gr.inits = {t.name: t for t in gr.g.initializer}


def _fold_weight_quantize(gr: _Graph) -> None:
    """QuantizeLinear(float initializer) -> int8 initializer feeding DequantizeLinear directly."""
    consumers = gr.consumers()
    drop = []
    for n in gr.g.node:
        if n.op_type != "QuantizeLinear":
            continue
        w = gr.arr(n.input[0])
        s = gr.arr(n.input[1])
        z = gr.arr(n.input[2]) if len(n.input) > 2 else np.zeros((), np.uint8)
        if w is None or s is None or z is None:
            continue
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if axis < 0:
            axis += w.ndim
        q = _quantize(w, s, z, axis, z.dtype)
        qname = gr.unique(n.input[0] + "_quantized")
        gr.set_init(qname, q)
        for c in consumers.get(n.output[0], []):
            for i, name in enumerate(c.input):
                if name == n.output[0]:
                    c.input[i] = qname
        drop.append(n)
    for n in drop:
        gr.g.node.remove(n)


def _scalar_qparams(gr: _Graph) -> None:
    """Per-tensor scale/zero point of shape [1] -> scalars (fused ops such as QLinearAdd demand it)."""
    renamed: Dict[str, str] = {}
    for n in gr.g.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i in (1, 2):
            if i >= len(n.input):
                continue
            name = n.input[i]
            a = gr.arr(name)
            if a is None or a.ndim == 0 or a.size != 1:
                continue
            if name not in renamed:
                new = gr.unique(name + "_scalar")
                gr.set_init(new, a.reshape(()))
                renamed[name] = new
            n.input[i] = renamed[name]
        # a per-tensor Q/DQ must not keep an axis attribute
        if gr.arr(n.input[1]) is not None and gr.arr(n.input[1]).ndim == 0:  # type: ignore[union-attr]
            attrs = [a for a in n.attribute if a.name != "axis"]
            del n.attribute[:]
            n.attribute.extend(attrs)


def _unshare_zero_points(gr: _Graph) -> None:
    """One zero-point initializer per Q/DQ node. The exporter shares equal ones (every weight's zero
    point 0 is one tensor); onnxruntime's U8U8 remedy for AVX2 CPUs without VNNI
    (session.x64quantprecision, see shared/ort-session.ts) rewrites each weight's zero point to uint8
    under a name derived from the shared one and fails to load the model on the second
    ("Attempt to replace the existing tensor"). A few bytes per node."""
    seen: set = set()
    for n in gr.g.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(n.input) < 3:
            continue
        name = n.input[2]
        z = gr.arr(name)
        if z is None:
            continue
        if name in seen:
            new = gr.unique(name + "_zp")
            gr.set_init(new, z)
            n.input[2] = new
        else:
            seen.add(name)


def _quantize_biases(gr: _Graph) -> None:
    """Conv/Gemm whose input and weight come from DequantizeLinear: bias -> int32 + DQ(scale = sx*sw)."""
    prod = gr.producers()
    new_nodes: List[Tuple[onnx.NodeProto, onnx.NodeProto]] = []
    for n in gr.g.node:
        if n.op_type not in ("Conv", "Gemm") or len(n.input) < 3 or not n.input[2]:
            continue
        if n.op_type == "Gemm":
            attrs = {a.name: a for a in n.attribute}
            if "transA" in attrs and attrs["transA"].i != 0:
                continue
            if "beta" in attrs and abs(attrs["beta"].f - 1.0) > 1e-9:
                continue
            if "alpha" in attrs and abs(attrs["alpha"].f - 1.0) > 1e-9:
                continue
        b = gr.arr(n.input[2])
        dx, dw = prod.get(n.input[0]), prod.get(n.input[1])
        if b is None or dx is None or dw is None or dx.op_type != "DequantizeLinear" or dw.op_type != "DequantizeLinear":
            continue
        sx, sw = gr.arr(dx.input[1]), gr.arr(dw.input[1])
        if sx is None or sw is None or sx.size != 1:
            continue
        w_axis = next((a.i for a in dw.attribute if a.name == "axis"), 1)
        if sw.size > 1 and w_axis != 0:
            continue
        if n.op_type == "Gemm" and sw.size > 1:
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            if trans_b != 1:
                continue
        scale = (sx.astype(np.float64).reshape(()) * sw.astype(np.float64)).astype(np.float32)
        if np.any(scale <= 0):
            continue
        qb = np.clip(np.rint(b.astype(np.float64) / scale.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        base = n.input[2]
        qname = gr.unique(base + "_int32")
        sname = gr.unique(base + "_scale")
        zname = gr.unique(base + "_zero_point")
        gr.set_init(qname, qb)
        gr.set_init(sname, scale if scale.size > 1 else scale.reshape(()))
        gr.set_init(zname, np.zeros(scale.shape if scale.size > 1 else (), np.int32))
        out = gr.unique(base + "_dequantized")
        attrs = {"axis": 0} if scale.size > 1 else {}
        dq = helper.make_node("DequantizeLinear", [qname, sname, zname], [out], name=out + "_DQ", **attrs)
        n.input[2] = out
        new_nodes.append((n, dq))
    before = {c.output[0]: dq for c, dq in new_nodes}
    order: List[onnx.NodeProto] = []
    for n in gr.g.node:
        if n.output[0] in before:
            order.append(before[n.output[0]])
        order.append(n)
    copies = [copy.deepcopy(n) for n in order]
    del gr.g.node[:]
    gr.g.node.extend(copies)


def onnx_summary(path: str) -> Dict[str, object]:
    m = onnx.load(path)
    ops: Dict[str, int] = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"opset": next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None), "ops": ops}
