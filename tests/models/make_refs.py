#!/usr/bin/python3
"""Write the reference outputs NAME.outK.npy of every tests/models/NAME.onnx
with onnxruntime-node (scripts/ort_run.js; install it with
scripts/setup_ort.sh).  Only needed when the models change: run.sh compares
against the saved files and needs no onnxruntime.

    /usr/bin/python3 tests/models/make_refs.py

An input with more samples than the model's fixed batch is run one batch
at a time and the outputs stacked, as potc's driver does.  Each model is
also run with ORT's graph optimizations off; the two must agree within
run.sh's tolerance, or the reference is not trustworthy."""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ORT_RUN = os.path.join(ROOT, "scripts", "ort_run.js")


def ort(model, inputs, nout, tmp, opt):
    """Run once with ORT; inputs are arrays; returns the output arrays."""
    ins = []
    for i, a in enumerate(inputs):
        p = os.path.join(tmp, f"in{i}.npy")
        np.save(p, a)
        ins.append(p)
    outs = [os.path.join(tmp, f"out{k}.npy") for k in range(nout)]
    cmd = ["node", ORT_RUN, model] + ins + ["--opt", opt]
    for o in outs:
        cmd += ["-o", o]
    subprocess.run(cmd, check=True)
    return [np.load(o) for o in outs]


def reference(model_path, inputs, tmp, opt):
    m = onnx.load(model_path)
    nout = len(m.graph.output)
    d0 = m.graph.input[0].type.tensor_type.shape.dim[0]
    batch = d0.dim_value if d0.HasField("dim_value") else 0
    n = inputs[0].shape[0]
    if batch == 0 or n <= batch:
        return ort(model_path, inputs, nout, tmp, opt)
    runs = [ort(model_path, [a[s:s + batch] for a in inputs], nout, tmp, opt) for s in range(0, n, batch)]
    return [np.concatenate([r[k] for r in runs], axis=0) for k in range(nout)]


def main():
    bad = 0
    for model in sorted(glob.glob(os.path.join(HERE, "*.onnx"))):
        name = model[:-len(".onnx")]
        inputs = [np.load(p) for p in sorted(glob.glob(name + ".in*.npy"))]
        with tempfile.TemporaryDirectory() as tmp:
            ref = reference(model, inputs, tmp, "all")
            plain = reference(model, inputs, tmp, "disabled")
        for k, (r, p) in enumerate(zip(ref, plain)):
            np.save(f"{name}.out{k}.npy", r.astype(np.float32))
            err = np.abs(r.astype(np.float64) - p)
            ok = bool(np.all(err <= 1e-5 + 1e-4 * np.abs(p)))
            bad += not ok
            print(f"{os.path.basename(name)}.out{k}: shape {r.shape}, "
                  f"optimized vs plain max err {err.max():.3g}{'' if ok else '  DISAGREE'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
