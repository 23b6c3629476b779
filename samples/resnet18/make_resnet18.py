#!/usr/bin/env python3
"""Build a ResNet-18 ONNX graph with seeded random weights using only onnx + numpy.

    python3 samples/resnet18/make_resnet18.py OUT.onnx [--opset 13] [--seed 0] [--batch 1] [--fold-bn]

Same graph as export.py produces with torch (node order, op types, attributes,
initializer names follow torch/torchvision naming: conv1.weight,
layer1.0.bn1.running_mean, fc.bias, ...): input "input" float32 [B,3,224,224],
output "logits" [B,1000], 11,689,512 trainable parameters (+9,600 BN running
stats), ~47 MB. No torch needed, so CI can generate it. Do NOT commit the .onnx.

Op types: Conv, BatchNormalization (omitted with --fold-bn: folded into Conv
weight+bias), Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm.
"""
import argparse
import collections
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, rng, fold_bn):
        self.rng = rng
        self.fold_bn = fold_bn
        self.nodes = []
        self.inits = []
        self.nparams = 0
        self.n = 0

    def tmp(self, prefix):
        self.n += 1
        return "%s_%d" % (prefix, self.n)

    def init(self, name, arr, trainable=True):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        if trainable:
            self.nparams += arr.size
        return name

    def conv_bn(self, x, prefix, bn_prefix, cin, cout, k, stride, pad):
        fan_out = cout * k * k
        w = self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_out)
        gamma = self.rng.random(cout) * 0.5 + 0.5
        beta = self.rng.standard_normal(cout) * 0.1
        mean = self.rng.standard_normal(cout) * 0.1
        var = self.rng.random(cout) + 0.5
        eps = 1e-5
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                     dilations=[1, 1], group=1)
        if self.fold_bn:
            s = gamma / np.sqrt(var + eps)
            wi = self.init(prefix + ".weight", w * s[:, None, None, None])
            bi = self.init(prefix + ".bias", beta - mean * s)
            # Folding turns 4 BN tensors (2 trainable) into one conv bias; count like torch.
            self.nparams += cout
            y = self.tmp("conv")
            self.nodes.append(helper.make_node("Conv", [x, wi, bi], [y], name=prefix, **attrs))
            return y
        wi = self.init(prefix + ".weight", w)
        c = self.tmp("conv")
        self.nodes.append(helper.make_node("Conv", [x, wi], [c], name=prefix, **attrs))
        names = [self.init(bn_prefix + ".weight", gamma), self.init(bn_prefix + ".bias", beta),
                 self.init(bn_prefix + ".running_mean", mean, trainable=False),
                 self.init(bn_prefix + ".running_var", var, trainable=False)]
        y = self.tmp("bn")
        self.nodes.append(helper.make_node("BatchNormalization", [c] + names, [y],
                                           name=bn_prefix, epsilon=eps, momentum=0.9))
        return y

    def relu(self, x):
        y = self.tmp("relu")
        self.nodes.append(helper.make_node("Relu", [x], [y]))
        return y

    def basic_block(self, x, p, cin, cout, stride):
        y = self.relu(self.conv_bn(x, p + ".conv1", p + ".bn1", cin, cout, 3, stride, 1))
        y = self.conv_bn(y, p + ".conv2", p + ".bn2", cout, cout, 3, 1, 1)
        idt = x
        if stride != 1 or cin != cout:
            idt = self.conv_bn(x, p + ".downsample.0", p + ".downsample.1", cin, cout, 1, stride, 0)
        s = self.tmp("add")
        self.nodes.append(helper.make_node("Add", [y, idt], [s]))
        return self.relu(s)


def build(seed=0, opset=13, batch=1, fold_bn=False, num_classes=1000):
    b = Builder(np.random.default_rng(seed), fold_bn)
    x = b.relu(b.conv_bn("input", "conv1", "bn1", 3, 64, 7, 2, 3))
    mp = b.tmp("maxpool")
    b.nodes.append(helper.make_node("MaxPool", [x], [mp], kernel_shape=[3, 3], strides=[2, 2],
                                    pads=[1, 1, 1, 1], ceil_mode=0))
    x, cin = mp, 64
    for i, c in enumerate([64, 128, 256, 512]):
        stride = 1 if i == 0 else 2
        x = b.basic_block(x, "layer%d.0" % (i + 1), cin, c, stride)
        x = b.basic_block(x, "layer%d.1" % (i + 1), c, c, 1)
        cin = c
    gap = b.tmp("gap")
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], [gap]))
    fl = b.tmp("flatten")
    b.nodes.append(helper.make_node("Flatten", [gap], [fl], axis=1))
    bound = 1.0 / np.sqrt(512)
    fw = b.init("fc.weight", b.rng.uniform(-bound, bound, (num_classes, 512)))
    fb = b.init("fc.bias", b.rng.uniform(-bound, bound, num_classes))
    b.nodes.append(helper.make_node("Gemm", [fl, fw, fb], ["logits"], name="fc",
                                    alpha=1.0, beta=1.0, transB=1))
    graph = helper.make_graph(
        b.nodes, "resnet18",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, num_classes])],
        initializer=b.inits)
    model = helper.make_model(graph, producer_name="potc-make_resnet18",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7  # opset 13 era; readable by onnx >= 1.8
    return model, b.nparams


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--fold-bn", action="store_true")
    args = ap.parse_args()
    model, nparams = build(args.seed, args.opset, args.batch, args.fold_bn)
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    ninit = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print("%s: %d params (%d initializer floats), %.1f MB, opset %d, ops %s"
          % (args.out, nparams, ninit, os.path.getsize(args.out) / 1e6, args.opset,
             dict(sorted(ops.items()))))


if __name__ == "__main__":
    main()
