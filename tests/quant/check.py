#!/usr/bin/python3
"""Checks on `potc eval --report` JSON and `potc run --quant` output (numpy).

    check.py report R.json --accuracy ACC.txt --max-drop D --data X.npy --labels Y.npy [--wbits N]
        samples and float top-1 as the training script measured them (torch,
        ACC.txt "float_top1 F"), quantized top-1 at most D below float,
        counts and fractions consistent, weights at N bits and activations
        at 8, int32 accumulators within their proven limit, and the input's
        SQNR recomputed here from the reported Quant.
    check.py grid OUT.npy R.json
        every value of OUT.npy (potc run --quant) is q * scale of the
        output's Quant for an integer q in its bit range.
    check.py argmax OUT.npy LABELS.npy
        writes argmax over the last axis of OUT.npy as int64 labels.
"""
import json
import math
import sys

import numpy as np


def fail(msg):
    sys.exit("check.py: " + msg)


def args_of(argv):
    out = {}
    for i in range(0, len(argv), 2):
        out[argv[i].lstrip("-")] = argv[i + 1]
    return out


def quantize(x, t):
    """Round half away from zero, saturate: ir_quantize (per-tensor)."""
    s, z = t["scale"][0], t["zero_point"][0]
    v = x.astype(np.float64) / s
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + z
    lo, hi = (0, 2 ** t["bits"] - 1) if t["unsigned"] else (-(2 ** (t["bits"] - 1)), 2 ** (t["bits"] - 1) - 1)
    return np.clip(q, lo, hi), lo, hi


def input_sqnr(r, data):
    t = next(t for t in r["tensors"] if t["kind"] == "input")
    x = np.load(data).astype(np.float64)[: r["samples"]]
    q, _, _ = quantize(x, t)
    xh = t["scale"][0] * (q - t["zero_point"][0])
    return t["name"], 10 * math.log10(np.sum(x * x) / np.sum((x - xh) ** 2))


def check_report(a):
    r = json.load(open(a["report"]))
    labels = np.load(a["labels"])
    want = float(open(a["accuracy"]).read().split()[1])
    if r["samples"] != len(labels):
        fail("%d samples evaluated, %d labels" % (r["samples"], len(labels)))
    if r["float_correct"] != round(want * len(labels)):
        fail("float top-1 %d/%d, the training script measured %.4f" % (r["float_correct"], r["samples"], want))
    for k, n in (("float_top1", "float_correct"), ("quant_top1", "quant_correct"), ("agreement", "agree")):
        if abs(r[k] - r[n] / r["samples"]) > 1e-12:
            fail("%s %r is not %s / samples" % (k, r[k], n))
    drop = r["float_top1"] - r["quant_top1"]
    if drop > float(a["max-drop"]):
        fail("quantized top-1 %.4f is %.2f points below float %.4f (allowed %.2f)"
             % (r["quant_top1"], 100 * drop, r["float_top1"], 100 * float(a["max-drop"])))
    # Weights at --wbits (or 8 where the pass keeps a layer wider), at
    # least one of them at --wbits; int32 biases; activations at 8.
    wbits = int(a.get("wbits", 8))
    narrow = 0
    for t in r["tensors"]:
        weight = t["kind"] == "const" and t["dtype"] != "i32"
        ok = (wbits, 8) if weight else (32,) if t["dtype"] == "i32" else (8,)
        if t["bits"] not in ok:
            fail("tensor %s has %d bits" % (t["name"], t["bits"]))
        narrow += weight and t["bits"] == wbits
    if not narrow:
        fail("no weight has %d bits" % wbits)
    for n in r["nodes"]:
        # narrow (--acc-bits) nodes: over the limit only when tiled or scaled into tiles
        narrow_ok = n.get("acc_bits") and n.get("acc_method") != "fits"
        if not n["acc64"] and n["acc_limit"] and n["acc_worst"] > n["acc_limit"] and not narrow_ok:
            fail("node %s: accumulator bound %d over %d" % (n["name"], n["acc_worst"], n["acc_limit"]))
    name, db = input_sqnr(r, a["data"])
    got = next(s["db"] for s in r["sqnr"] if s["tensor"] == name)
    if abs(got - db) > 1e-6 * abs(db):
        fail("input SQNR %.9f dB, numpy says %.9f" % (got, db))
    print("top-1 float %.2f%%, quantized %.2f%% (drop %.2f points), agreement %.2f%%, input SQNR %.2f dB"
          % (100 * r["float_top1"], 100 * r["quant_top1"], 100 * drop, 100 * r["agreement"], db))


def check_grid(out, report):
    r = json.load(open(report))
    y = np.load(out).astype(np.float64)
    t = next(t for t in r["tensors"] if t["output"])
    q = y / t["scale"][0] + t["zero_point"][0]
    _, lo, hi = quantize(np.zeros(1), t)
    if np.abs(q - np.round(q)).max() > 1e-3 or q.min() < lo or q.max() > hi:
        fail("%s: values are not on the grid of %s (scale %r)" % (out, t["name"], t["scale"][0]))
    print("%d values on the grid of %s" % (y.size, t["name"]))


def main():
    cmd = sys.argv[1]
    if cmd == "report":
        check_report(args_of(sys.argv[2:]))
    elif cmd == "grid":
        check_grid(sys.argv[2], sys.argv[3])
    elif cmd == "argmax":
        np.save(sys.argv[3], np.load(sys.argv[2]).argmax(axis=-1).reshape(-1).astype(np.int64))
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()
