"""A quantize-dequantize (QDQ) ONNX graph run by torch: int8 ONNX models on a GPU without
onnxruntime-gpu.

Covers the operators of YAMNet's w8a8 export (QuantizeLinear, DequantizeLinear, Conv, Relu,
GlobalAveragePool, Reshape, Gemm) and refuses any other. Quantisation is simulated in float
("fake quant"): QuantizeLinear gives round-half-to-even(x / scale) + zero point, saturated to the
zero point's integer range, held in float32; DequantizeLinear gives (q - zero point) * scale. Every
tensor so takes the values of onnxruntime's integer kernels up to float rounding (a value at a
rounding tie can land one step away). Convolutions run in float32 with TF32 off, and the Gemm in
float64, so that such ties stay rare. Nodes whose inputs are all constants (the weights' own
quantise/dequantise pairs) are evaluated once, at construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mediafm.errors import ModelUnavailableError

SUPPORTED = frozenset({"QuantizeLinear", "DequantizeLinear", "Conv", "Relu", "GlobalAveragePool", "Reshape", "Gemm"})
_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127), np.dtype(np.int32): (-2**31, 2**31 - 1)}


def _broadcast(param, x, axis: int):
    """A per-tensor (scalar) or per-axis (1-D) scale/zero point shaped to broadcast against x."""
    if param.ndim == 0:
        return param
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    return param.reshape(shape)


class QDQGraph:
    """`graph(feeds)` -> {output name: float32 tensor}, every tensor on `device`."""

    def __init__(self, model: bytes, device: str):
        import onnx
        import torch
        from onnx import numpy_helper

        graph = onnx.load_model_from_string(model).graph
        ops = {n.op_type for n in graph.node}
        if not ops <= SUPPORTED:
            raise ModelUnavailableError(None, f"QDQ graph has operators torch cannot run here: {sorted(ops - SUPPORTED)}")
        self.device = torch.device(device)
        self.ranges: dict[str, tuple[int, int]] = {}  # integer range of each zero point, by name
        values: dict[str, Any] = {}
        for init in graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype in _RANGES:
                self.ranges[init.name] = _RANGES[arr.dtype]
            wide = arr.dtype in (np.int32, np.int64)  # int32 biases exceed float32's exact integers
            values[init.name] = torch.from_numpy(np.array(arr, dtype=np.float64 if wide else np.float32))
        self.outputs = [o.name for o in graph.output]
        self.inputs = [i.name for i in graph.input if i.name not in values]
        self.nodes = []
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            step = (node.op_type, list(node.input), list(node.output), attrs)
            if all(name in values for name in node.input if name):
                with torch.no_grad():  # constant: fold it now (on the CPU, in float64 where it matters)
                    for name, out in zip(node.output, self._apply(step, values)):
                        values[name] = out
            else:
                self.nodes.append(step)
        needed = {name for _, ins, _, _ in self.nodes for name in ins} | set(self.outputs)
        self.consts = {k: v.to(self.device) for k, v in values.items() if k in needed}

    def __call__(self, feeds: dict[str, Any]) -> dict[str, Any]:
        import torch

        values = dict(self.consts)
        values.update({k: v.to(self.device, torch.float32) for k, v in feeds.items()})
        flags = torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=False)
        with torch.inference_mode(), flags:
            for step in self.nodes:
                for name, out in zip(step[2], self._apply(step, values)):
                    values[name] = out
        return {name: values[name] for name in self.outputs}

    def _apply(self, step: tuple, values: dict[str, Any]) -> list:
        import torch
        import torch.nn.functional as F

        op, ins, _, attrs = step
        x = values[ins[0]]
        if op == "QuantizeLinear":
            scale, zp = values[ins[1]], values[ins[2]]
            lo, hi = self.ranges.get(ins[2], (0, 255))
            axis = attrs.get("axis", 1)
            q = torch.round(x / _broadcast(scale, x, axis)) + _broadcast(zp, x, axis)
            return [q.clamp_(lo, hi)]
        if op == "DequantizeLinear":
            axis = attrs.get("axis", 1)
            zp = values[ins[2]] if len(ins) > 2 and ins[2] else torch.zeros((), dtype=x.dtype, device=x.device)
            return [((x - _broadcast(zp, x, axis)) * _broadcast(values[ins[1]], x, axis)).float()]
        if op == "Conv":
            w = values[ins[1]]
            b = values[ins[2]] if len(ins) > 2 and ins[2] else None
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            if (top, left) != (bottom, right):
                x, top, left = F.pad(x, [left, right, top, bottom]), 0, 0
            return [F.conv2d(x, w.float(), None if b is None else b.float(), stride=tuple(attrs.get("strides", [1, 1])),
                             padding=(top, left), dilation=tuple(attrs.get("dilations", [1, 1])),
                             groups=attrs.get("group", 1))]
        if op == "Relu":
            return [F.relu(x)]
        if op == "GlobalAveragePool":
            return [x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)]
        if op == "Reshape":
            shape = [int(s) for s in values[ins[1]].tolist()]
            shape = [x.shape[i] if s == 0 and not attrs.get("allowzero", 0) else s for i, s in enumerate(shape)]
            return [x.reshape(shape)]
        if op == "Gemm":
            a, b = values[ins[0]].double(), values[ins[1]].double()
            a = a.T if attrs.get("transA", 0) else a
            b = b.T if attrs.get("transB", 0) else b
            y = attrs.get("alpha", 1.0) * (a @ b)
            if len(ins) > 2 and ins[2]:
                y = y + attrs.get("beta", 1.0) * values[ins[2]].double()
            return [y.float()]
        raise AssertionError(op)  # unreachable: refused in __init__
