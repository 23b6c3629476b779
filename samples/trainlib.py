"""Shared training / export helpers for the Fashion-MNIST sample models.

Requires torch + onnx (Debian: /usr/bin/python3). Data loading lives in
fmnist.py, which is numpy-only.
"""
import collections
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import onnx

import fmnist

N_REF = 16


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)


def load_data():
    xtr, ytr = fmnist.load("train")
    xte, yte = fmnist.load("t10k")
    return (torch.from_numpy(xtr), torch.from_numpy(ytr),
            torch.from_numpy(xte), torch.from_numpy(yte))


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        logits = model(x[i:i + batch])
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return correct / x.shape[0]


def train(model, xtr, ytr, xte, yte, epochs, lr, batch=128, seed=0, log=print):
    """Adam + one-cycle LR schedule. Returns final test accuracy."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (xtr.shape[0] + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=g)
        tot = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * idx.shape[0]
        acc = evaluate(model, xte, yte)
        log("epoch %d  loss %.4f  test_top1 %.4f  (%.0fs)"
            % (ep + 1, tot / xtr.shape[0], acc, time.time() - t0))
    return evaluate(model, xte, yte)


def export(model, path, opset):
    """Export an eval-mode model keeping BatchNormalization nodes.

    torch 1.13 runs _jit_pass_onnx_eval_peephole (which fuses Conv+BN) whenever
    training=TrainingMode.EVAL (the default), even with do_constant_folding=False.
    TrainingMode.PRESERVE on a model already in eval() exports inference-mode
    BatchNormalization nodes without that fusion.
    """
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28, dtype=torch.float32)
    torch.onnx.export(model, dummy, path, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    assert not model.training
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    print("%s: opset %d, %d bytes, ops %s"
          % (path, m.opset_import[0].version, os.path.getsize(path), dict(sorted(ops.items()))))
    return m


def write_reference(model, xte, yte, outdir, acc):
    model.eval()
    x = xte[:N_REF].contiguous()
    with torch.no_grad():
        # Run one image at a time with batch 1 to mirror the exported [1,1,28,28] graph.
        y = torch.cat([model(x[i:i + 1]) for i in range(N_REF)], 0)
        yb = model(x)
    assert torch.allclose(y, yb, atol=1e-4), "batch/single mismatch"
    np.save(os.path.join(outdir, "ref_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(outdir, "ref_output.npy"), y.numpy().astype(np.float32))
    with open(os.path.join(outdir, "accuracy.txt"), "w") as f:
        f.write("float_top1 %.4f\n" % acc)
    print("ref argmax", y.argmax(1).tolist())
    print("labels    ", yte[:N_REF].tolist())
