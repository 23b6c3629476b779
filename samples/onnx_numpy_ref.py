#!/usr/bin/env python3
"""Minimal numpy interpreter for the ONNX ops used by the potc samples.

Only numpy + onnx are needed (no torch, no onnxruntime; onnx 1.12 has no
onnx.reference). Computes in float64 so it can serve as an independent
cross-check of the exported graphs against the torch reference outputs.

Usage:
    python3 samples/onnx_numpy_ref.py MODEL.onnx [REF_INPUT.npy REF_OUTPUT.npy]
With only MODEL.onnx, runs a seeded random input and prints output stats.
Exit status 1 if the comparison exceeds tolerance.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads(a, nd):
    p = list(a.get("pads", [0] * (2 * nd)))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad")
    return p[:nd], p[nd:]


def _windows(xp, kh, kw, sh, sw, dh, dw, oh, ow):
    """xp [N,C,H,W] -> [N,C,kh,kw,oh,ow] strided patches."""
    n, c = xp.shape[:2]
    out = np.empty((n, c, kh, kw, oh, ow), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                                 j * dw: j * dw + sw * (ow - 1) + 1: sw]
    return out


def conv(x, w, b, a):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    (pt, pl), (pb, pr) = _pads(a, 2)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    cols = _windows(xp, kh, kw, sh, sw, dh, dw, oh, ow)
    cols = cols.reshape(n, g, cg * kh * kw, oh * ow)
    wg = w.reshape(g, m // g, cg * kh * kw)
    y = np.einsum("gmk,ngkp->ngmp", wg, cols, optimize=True).reshape(n, m, oh, ow)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def maxpool(x, a):
    if a.get("ceil_mode", 0) or a.get("storage_order", 0):
        raise NotImplementedError("MaxPool ceil_mode/storage_order")
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    (pt, pl), (pb, pr) = _pads(a, 2)
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (w + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    return _windows(xp, kh, kw, sh, sw, dh, dw, oh, ow).max(axis=(2, 3))


def run(model, feeds):
    env = {}
    for init in model.graph.initializer:
        env[init.name] = numpy_helper.to_array(init).astype(np.float64) \
            if numpy_helper.to_array(init).dtype.kind == "f" else numpy_helper.to_array(init)
    env.update(feeds)
    env[""] = None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    for node in model.graph.node:
        a = _attrs(node)
        ins = [env[i] for i in node.input]
        op = node.op_type
        if op == "Constant":
            v = numpy_helper.to_array(a["value"])
            y = v.astype(np.float64) if v.dtype.kind == "f" else v
        elif op == "Conv":
            y = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "BatchNormalization":
            x, s, bb, mean, var = ins[:5]
            sh = (1, -1) + (1,) * (x.ndim - 2)
            y = (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get("epsilon", 1e-5)) \
                * s.reshape(sh) + bb.reshape(sh)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Clip":
            if opset < 11:
                lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
            else:
                lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
                hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            y = np.clip(ins[0], lo, hi)
        elif op == "HardSigmoid":
            y = np.clip(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0, 1)
        elif op == "HardSwish":
            y = ins[0] * np.clip(ins[0] / 6.0 + 0.5, 0, 1)
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "Mul":
            y = ins[0] * ins[1]
        elif op == "MaxPool":
            y = maxpool(ins[0], a)
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=tuple(range(2, ins[0].ndim)), keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Reshape":
            shape = [d if d != 0 else ins[0].shape[i] for i, d in enumerate(ins[1].astype(np.int64))]
            y = ins[0].reshape(shape)
        elif op == "Gemm":
            A = ins[0].T if a.get("transA", 0) else ins[0]
            B = ins[1].T if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            y = ins[0] @ ins[1]
        else:
            raise NotImplementedError(op)
        env[node.output[0]] = y
    return [env[o.name] for o in model.graph.output]


def main(argv):
    model = onnx.load(argv[1])
    inp = model.graph.input[0]
    if len(argv) >= 4:
        xs = np.load(argv[2]).astype(np.float64)
        ref = np.load(argv[3])
        outs = np.concatenate([run(model, {inp.name: xs[i:i + 1]})[0] for i in range(xs.shape[0])])
        diff = np.abs(outs - ref.astype(np.float64))
        tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
        same_argmax = bool((outs.argmax(1) == ref.argmax(1)).all())
        print("%s: max_abs_diff %.3g (tol %.3g) argmax_match %s"
              % (argv[1], diff.max(), tol, same_argmax))
        return 0 if diff.max() <= tol and same_argmax else 1
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(dims)
    y = run(model, {inp.name: x})[0]
    print("%s: output shape %s finite %s mean %.4g std %.4g argmax %s"
          % (argv[1], y.shape, bool(np.isfinite(y).all()), y.mean(), y.std(), y.argmax(-1)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
