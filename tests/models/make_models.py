#!/usr/bin/python3
"""Write small ONNX models that imitate what real exporters emit, for
tests/models/run.sh.

    /usr/bin/python3 tests/models/make_models.py [OUTDIR]

The exporters themselves (PyTorch, tf2onnx, paddle2onnx) are not available
here, so each model is built node by node with onnx.helper to reproduce the
graph idioms those exporters are known to write: NHWC transposes and int32
shape arithmetic (tf2onnx), separate BatchNormalization and
x*HardSigmoid(x) hard-swish (paddle2onnx), initializers listed as graph
inputs, Constant-node weights and the Shape/Gather/Unsqueeze/Concat view
idiom (old PyTorch), and so on (README.md lists them per model).

Needs only numpy and onnx (Debian's python3-onnx 1.12).  Seeds are fixed,
so the output is the same on every run.  Each model also gets random
float32 inputs NAME.in0.npy, NAME.in1.npy ...; the reference outputs
NAME.outK.npy come from onnxruntime (make_refs.sh), not from this script.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, I64, I32, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL
INT64_MAX = 9223372036854775807


class Builder:
    """A graph under construction: nodes, initializers, inputs, outputs."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.count = 0

    def tmp(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    # ---- parameters
    def he(self, shape, fan_in):
        """He-initialised float32 weights."""
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def small(self, shape, scale=0.1):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, shape, lo, hi):
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def const(self, out, arr, node_name=""):
        """A Constant node (what PyTorch and paddle2onnx write for literals)."""
        t = numpy_helper.from_array(np.asarray(arr), out)
        self.nodes.append(helper.make_node("Constant", [], [out], name=node_name, value=t))
        return out

    # ---- graph
    def node(self, op, ins, outs, name="", **attrs):
        if isinstance(outs, str):
            outs = [outs]
        self.nodes.append(helper.make_node(op, ins, outs, name=name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    def input(self, name, dtype, shape):
        self.inputs.append(helper.make_tensor_value_info(name, dtype, shape))
        return name

    def output(self, name, dtype, shape):
        self.outputs.append(helper.make_tensor_value_info(name, dtype, shape))

    def model(self, graph_name, opset, producer, version, ir_version,
              inits_as_inputs=False, extra_opsets=(), infer=False, doc=""):
        inputs = list(self.inputs)
        if inits_as_inputs:  # PyTorch before 1.4 / IR < 4 style
            for t in self.inits:
                inputs.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        g = helper.make_graph(self.nodes, graph_name, inputs, self.outputs, self.inits, doc_string=doc)
        ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
        m = helper.make_model(g, opset_imports=ops, producer_name=producer,
                              producer_version=version)
        m.ir_version = ir_version
        if infer:  # exporters that write value_info for intermediates
            m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        return m


def rand_input(seed, shape, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# ========================================================================
# tf2onnx (TensorFlow / Keras)
# ========================================================================

def tf_conv(b, x, name, cin, cout, k, pads, strides=(1, 1), group=1):
    """Keras Conv2D/DepthwiseConv2D after tf2onnx: NCHW Conv with explicit
    pads (SAME resolved by the converter) and a bias."""
    w = b.init(f"{name}/ReadVariableOp:0", b.he((cout, cin // group, k, k), cin // group * k * k))
    bias = b.init(f"{name}/BiasAdd/ReadVariableOp:0", b.small((cout,)))
    attrs = dict(dilations=[1, 1], kernel_shape=[k, k], pads=list(pads), strides=list(strides))
    if group != 1:
        attrs["group"] = group
    return b.node("Conv", [x, w, bias], f"{name}/BiasAdd:0", name=f"{name}/BiasAdd", **attrs)


def tf_flatten(b, x, scope, n):
    """Keras Flatten: reshape(x, [shape(x)[0], -1]).  TF's Shape is int32,
    so tf2onnx casts, slices (strided_slice with shrink_axis_mask -> Slice +
    Squeeze), packs (Unsqueeze + Concat) and casts back to int64."""
    shp = b.node("Shape", [x], f"{scope}/Shape:0", name=f"{scope}/Shape")
    shp32 = b.node("Cast", [shp], f"{scope}/Shape__{n}:0", name=f"{scope}/Shape__{n}", to=I32)
    st = b.init(f"const_starts__{n + 1}", np.array([0], np.int64))
    en = b.init(f"const_ends__{n + 2}", np.array([1], np.int64))
    ax = b.init(f"const_axes__{n + 3}", np.array([0], np.int64))
    sl = b.node("Slice", [shp32, st, en, ax], f"{scope}/strided_slice:0", name=f"{scope}/strided_slice")
    sq = b.node("Squeeze", [sl, ax], f"{scope}/strided_slice__{n + 4}:0", name=f"{scope}/strided_slice__{n + 4}")
    un = b.node("Unsqueeze", [sq, ax], f"{scope}/Reshape/shape_Unsqueeze__{n + 5}:0",
                name=f"{scope}/Reshape/shape_Unsqueeze__{n + 5}")
    m1 = b.init(f"const_fold_opt__{n + 6}", np.array([-1], np.int32))
    cat = b.node("Concat", [un, m1], f"{scope}/Reshape/shape_Concat__{n + 7}:0",
                 name=f"{scope}/Reshape/shape_Concat__{n + 7}", axis=0)
    c64 = b.node("Cast", [cat], f"{scope}/Reshape__{n + 8}:0", name=f"{scope}/Reshape__{n + 8}", to=I64)
    return b.node("Reshape", [x, c64], f"{scope}/Reshape:0", name=f"{scope}/Reshape")


def tf_relu6(b, x, name):
    """Keras ReLU(6.) / tf.nn.relu6: Clip with min and max as inputs."""
    lo = b.init(f"{name}__min:0", np.array(0.0, np.float32))
    hi = b.init(f"{name}__max:0", np.array(6.0, np.float32))
    return b.node("Clip", [x, lo, hi], f"{name}:0", name=name)


def tf_cnn_op13():
    """Keras Sequential CNN, tf2onnx --opset 13, NHWC with symbolic batch."""
    b = Builder(1301)
    x = b.input("input_1", F32, ["unk__123", 32, 32, 3])
    x = b.node("Cast", [x], "sequential/tf.cast/Cast:0", name="sequential/tf.cast/Cast", to=F32)
    # Rescaling(scale=0.5, offset=-0.25)
    s = b.init("sequential/rescaling/Cast/x:0", np.array(0.5, np.float32))
    o = b.init("sequential/rescaling/Cast_1/x:0", np.array(-0.25, np.float32))
    x = b.node("Mul", [x, s], "sequential/rescaling/mul:0", name="sequential/rescaling/mul")
    x = b.node("Add", [x, o], "sequential/rescaling/add:0", name="sequential/rescaling/add")
    x = b.node("Transpose", [x], "sequential/conv2d/BiasAdd__6:0", name="sequential/conv2d/BiasAdd__6",
               perm=[0, 3, 1, 2])
    x = tf_conv(b, x, "sequential/conv2d/Conv2D", 3, 16, 3, [1, 1, 1, 1])
    x = b.node("Relu", [x], "sequential/conv2d/Relu:0", name="sequential/conv2d/Relu")
    x = b.node("MaxPool", [x], "sequential/max_pooling2d/MaxPool:0", name="sequential/max_pooling2d/MaxPool",
               kernel_shape=[2, 2], strides=[2, 2])
    x = tf_conv(b, x, "sequential/depthwise_conv2d/depthwise", 16, 16, 3, [1, 1, 1, 1], group=16)
    x = tf_relu6(b, x, "sequential/re_lu/Relu6")
    x = tf_conv(b, x, "sequential/conv2d_1/Conv2D", 16, 24, 1, [0, 0, 0, 0])
    x = b.node("Relu", [x], "sequential/conv2d_1/Relu:0", name="sequential/conv2d_1/Relu")
    x = b.node("Transpose", [x], "sequential/conv2d_1/Relu__18:0", name="sequential/conv2d_1/Relu__18",
               perm=[0, 2, 3, 1])
    # GlobalAveragePooling2D -> Mean over H, W (axes attribute until opset 18)
    x = b.node("ReduceMean", [x], "sequential/global_average_pooling2d/Mean:0",
               name="sequential/global_average_pooling2d/Mean", axes=[1, 2], keepdims=0)
    # tf.expand_dims(x, 1) then Flatten
    ax1 = b.init("const_axes__20", np.array([1], np.int64))
    x = b.node("Unsqueeze", [x, ax1], "sequential/tf.expand_dims/ExpandDims:0",
               name="sequential/tf.expand_dims/ExpandDims")
    x = tf_flatten(b, x, "sequential/flatten", 21)
    x = b.node("Identity", [x], "sequential/dropout/Identity:0", name="sequential/dropout/Identity")
    w = b.init("sequential/dense/MatMul/ReadVariableOp:0", b.he((24, 10), 24))
    bias = b.init("sequential/dense/BiasAdd/ReadVariableOp:0", b.small((10,)))
    x = b.node("MatMul", [x, w], "sequential/dense/MatMul:0", name="sequential/dense/MatMul")
    x = b.node("Add", [x, bias], "sequential/dense/BiasAdd:0", name="sequential/dense/BiasAdd")
    x = b.node("Softmax", [x], "sequential/dense/Softmax:0", name="sequential/dense/Softmax", axis=-1)
    b.node("Identity", [x], "dense", name="Identity")
    b.output("dense", F32, ["unk__124", 10])
    m = b.model("tf2onnx", 13, "tf2onnx", "1.16.1 15c810", 8, infer=True,
                doc="converted from sequential")
    return m, [rand_input(13, (1, 32, 32, 3))], None


def tf_hard_sigmoid(b, x, name):
    """Keras MobileNetV3 hard_sigmoid: ReLU(6.)(x + 3.) * (1. / 6.)."""
    three = b.init(f"{name}/add/y:0", np.array(3.0, np.float32))
    sixth = b.init(f"{name}/mul/y:0", np.array(1.0 / 6.0, np.float32))
    y = b.node("Add", [x, three], f"{name}/add:0", name=f"{name}/add")
    y = tf_relu6(b, y, f"{name}/re_lu/Relu6")
    return b.node("Mul", [y, sixth], f"{name}/mul:0", name=f"{name}/mul")


def tf_mnv3_op15():
    """Keras MobileNetV3-style block (hard-swish, squeeze-excite with
    1x1 convs), tf2onnx --opset 15, batch bound by --input-shape to 2."""
    b = Builder(1501)
    x = b.input("input_1", F32, ["unk__123", 32, 32, 3])
    x = b.node("Transpose", [x], "model/Conv/Conv2D__5:0", name="model/Conv/Conv2D__5", perm=[0, 3, 1, 2])
    # SAME, stride 2 on an even size: TF pads only at the end
    x = tf_conv(b, x, "model/Conv/Conv2D", 3, 16, 3, [0, 0, 1, 1], strides=(2, 2))
    hs = tf_hard_sigmoid(b, x, "model/tf.nn.hard_swish")
    x = b.node("Mul", [x, hs], "model/multiply/mul:0", name="model/multiply/mul")
    x = tf_conv(b, x, "model/expanded_conv/depthwise/depthwise", 16, 16, 3, [1, 1, 1, 1], group=16)
    x = b.node("Relu", [x], "model/re_lu_1/Relu:0", name="model/re_lu_1/Relu")
    x = tf_conv(b, x, "model/expanded_conv/project/Conv2D", 16, 24, 1, [0, 0, 0, 0])
    feat = b.node("Transpose", [x], "model/expanded_conv/project/BatchNorm/FusedBatchNormV3__14:0",
                  name="model/expanded_conv/project/BatchNorm/FusedBatchNormV3__14", perm=[0, 2, 3, 1])
    # squeeze-excite: GlobalAveragePooling2D(keepdims=True) -> 1x1 convs
    se = b.node("ReduceMean", [feat], "model/expanded_conv/squeeze_excite/AvgPool/Mean:0",
                name="model/expanded_conv/squeeze_excite/AvgPool/Mean", axes=[1, 2], keepdims=1)
    se = b.node("Transpose", [se], "model/expanded_conv/squeeze_excite/Conv/BiasAdd__22:0",
                name="model/expanded_conv/squeeze_excite/Conv/BiasAdd__22", perm=[0, 3, 1, 2])
    se = tf_conv(b, se, "model/expanded_conv/squeeze_excite/Conv/Conv2D", 24, 8, 1, [0, 0, 0, 0])
    se = b.node("Relu", [se], "model/expanded_conv/squeeze_excite/Relu:0",
                name="model/expanded_conv/squeeze_excite/Relu")
    se = tf_conv(b, se, "model/expanded_conv/squeeze_excite/Conv_1/Conv2D", 8, 24, 1, [0, 0, 0, 0])
    se = tf_hard_sigmoid(b, se, "model/expanded_conv/squeeze_excite/tf.nn.hard_sigmoid")
    se = b.node("Transpose", [se], "model/expanded_conv/squeeze_excite/Mul__30:0",
                name="model/expanded_conv/squeeze_excite/Mul__30", perm=[0, 2, 3, 1])
    x = b.node("Mul", [feat, se], "model/expanded_conv/squeeze_excite/Mul:0",
               name="model/expanded_conv/squeeze_excite/Mul")
    x = b.node("Transpose", [x], "model/max_pooling2d/MaxPool__33:0", name="model/max_pooling2d/MaxPool__33",
               perm=[0, 3, 1, 2])
    x = b.node("MaxPool", [x], "model/max_pooling2d/MaxPool:0", name="model/max_pooling2d/MaxPool",
               kernel_shape=[4, 4], strides=[4, 4])
    x = b.node("Transpose", [x], "model/max_pooling2d/MaxPool__35:0", name="model/max_pooling2d/MaxPool__35",
               perm=[0, 2, 3, 1])
    x = tf_flatten(b, x, "model/flatten", 36)
    w = b.init("model/dense/MatMul/ReadVariableOp:0", b.he((384, 10), 384))
    bias = b.init("model/dense/BiasAdd/ReadVariableOp:0", b.small((10,)))
    x = b.node("MatMul", [x, w], "model/dense/MatMul:0", name="model/dense/MatMul")
    x = b.node("Add", [x, bias], "model/dense/BiasAdd:0", name="model/dense/BiasAdd")
    x = b.node("Softmax", [x], "model/dense/Softmax:0", name="model/dense/Softmax")  # default axis -1
    x = b.node("Identity", [x], "Identity:0", name="Identity")
    b.node("Identity", [x], "dense_1", name="Identity_1")
    b.output("dense_1", F32, ["unk__125", 10])
    m = b.model("tf2onnx", 15, "tf2onnx", "1.16.1 15c810", 8, extra_opsets=[("ai.onnx.ml", 2)], infer=True,
                doc="converted from model")
    return m, [rand_input(15, (2, 32, 32, 3))], "--input-shape input_1=2x32x32x3"


# ========================================================================
# paddle2onnx
# ========================================================================

class Paddle:
    """paddle2onnx naming: nodes p2o.OP.N, tensors LAYER_N.tmp_K, params
    LAYER_N.w_K / .b_K."""

    def __init__(self, b):
        self.b, self.n = b, {}

    def idx(self, kind):
        i = self.n.get(kind, 0)
        self.n[kind] = i + 1
        return i

    def node(self, op, ins, out, **attrs):
        return self.b.node(op, ins, out, name=f"p2o.{op}.{self.idx('node' + op)}", **attrs)

    def const(self, arr):
        i = self.idx("const")
        return self.b.const(f"p2o.helper.constant.{i}", arr, node_name=f"p2o.Constant.{i}")

    def conv_bn(self, x, cin, cout, k, pads, stride=1, group=1):
        b, i, j = self.b, self.idx("conv2d"), self.idx("batch_norm")
        w = b.init(f"conv2d_{i}.w_0", b.he((cout, cin // group, k, k), cin // group * k * k))
        x = self.node("Conv", [x, w], f"conv2d_{i}.tmp_0", dilations=[1, 1], group=group,
                      kernel_shape=[k, k], pads=list(pads), strides=[stride, stride])
        sc = b.init(f"batch_norm_{j}.w_0", b.uniform((cout,), 0.5, 1.5))
        bi = b.init(f"batch_norm_{j}.b_0", b.small((cout,)))
        mu = b.init(f"batch_norm_{j}.w_1", b.small((cout,)))
        var = b.init(f"batch_norm_{j}.w_2", b.uniform((cout,), 0.5, 1.5))
        return self.node("BatchNormalization", [x, sc, bi, mu, var], f"batch_norm_{j}.tmp_2",
                         epsilon=1e-5, momentum=0.9)

    def hardswish(self, x):
        """paddle.nn.Hardswish: x * HardSigmoid(x, 1/6, 0.5)."""
        i = self.idx("hardswish")
        h = self.node("HardSigmoid", [x], f"hardswish_{i}.tmp_0", alpha=1.0 / 6.0, beta=0.5)
        return self.node("Mul", [x, h], f"hardswish_{i}.tmp_1")

    def fc(self, x, cin, cout):
        b, i = self.b, self.idx("linear")
        w = b.init(f"linear_{i}.w_0", b.he((cin, cout), cin))
        bias = b.init(f"linear_{i}.b_0", b.small((cout,)))
        x = self.node("MatMul", [x, w], f"linear_{i}.tmp_0")
        return self.node("Add", [x, bias], f"linear_{i}.tmp_1")

    def reshape_batch(self, x):
        """paddle.reshape(x, [x.shape[0], -1]): Shape -> Gather([0]) ->
        Concat with [-1] -> Reshape."""
        i = self.idx("reshape")
        s = self.node("Shape", [x], f"shape_{i}.tmp_0")
        g = self.node("Gather", [s, self.const(np.array([0], np.int64))], f"shape_{i}.tmp_0_slice_0", axis=0)
        shape = self.node("Concat", [g, self.const(np.array([-1], np.int64))], f"reshape2_{i}.tmp_shape", axis=0)
        return self.node("Reshape", [x, shape], f"reshape2_{i}.tmp_0")


def paddle_op11():
    """PP-LCNet-style block from paddle2onnx --opset_version 11."""
    b = Builder(1101)
    p = Paddle(b)
    x = b.input("x", F32, ["p2o.DynamicDimension.0", 3, 32, 32])
    x = p.conv_bn(x, 3, 16, 3, [1, 1, 1, 1], stride=2)
    blk = p.hardswish(x)
    # nn.Pad2D([1, 1, 1, 1]) before a padding-0 depthwise conv: pads and
    # value are inputs from opset 11
    pads = p.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    val = p.const(np.array(0.0, np.float32))
    x = p.node("Pad", [blk, pads, val], "pad2d_0.tmp_0", mode="constant")
    x = p.conv_bn(x, 16, 16, 3, [0, 0, 0, 0], group=16)
    x = p.node("Relu", [x], "relu_0.tmp_0")
    x = p.conv_bn(x, 16, 16, 1, [0, 0, 0, 0])
    lo, hi = p.const(np.array(0.0, np.float32)), p.const(np.array(6.0, np.float32))
    x = p.node("Clip", [x, lo, hi], "relu6_0.tmp_0")
    x = p.node("Add", [x, blk], "elementwise_add_0")   # residual
    x = p.node("GlobalAveragePool", [x], "pool2d_0.tmp_0")
    x = p.reshape_batch(x)
    x = p.fc(x, 16, 32)
    x = p.hardswish(x)
    x = p.fc(x, 32, 10)
    p.node("Softmax", [x], "softmax_0.tmp_0", axis=-1)
    b.output("softmax_0.tmp_0", F32, ["p2o.DynamicDimension.1", 10])
    m = b.model("Model from PaddlePaddle.", 11, "PaddlePaddle", "2.6.0", 6)
    return m, [rand_input(11, (1, 3, 32, 32))], None


def paddle_op9():
    """Small ResNet-ish CNN from paddle2onnx --opset_version 9: Pad and Clip
    take attributes, a reflect pad, Flatten before the classifier."""
    b = Builder(901)
    p = Paddle(b)
    x = b.input("image", F32, [1, 3, 24, 24])
    x = p.node("Pad", [x], "pad2d_0.tmp_0", mode="constant", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.0)
    x = p.conv_bn(x, 3, 12, 3, [0, 0, 0, 0])
    x = p.node("Relu", [x], "relu_0.tmp_0")
    x = p.node("Clip", [x], "relu6_0.tmp_0", min=0.0, max=6.0)
    blk = p.node("MaxPool", [x], "pool2d_0.tmp_0", kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    x = p.conv_bn(blk, 12, 12, 3, [1, 1, 1, 1])
    x = p.hardswish(x)
    x = p.node("Add", [x, blk], "elementwise_add_0")
    x = p.node("Pad", [x], "pad2d_1.tmp_0", mode="reflect", pads=[0, 0, 1, 1, 0, 0, 1, 1])
    x = p.conv_bn(x, 12, 16, 3, [0, 0, 0, 0], stride=2)
    x = p.node("Relu", [x], "relu_1.tmp_0")
    x = p.node("GlobalAveragePool", [x], "pool2d_1.tmp_0")
    x = p.node("Flatten", [x], "flatten_0.tmp_0", axis=1)
    x = p.fc(x, 16, 10)
    x = p.reshape_batch(x)
    p.node("Softmax", [x], "softmax_0.tmp_0", axis=1)
    b.output("softmax_0.tmp_0", F32, [1, 10])
    m = b.model("Model from PaddlePaddle.", 9, "PaddlePaddle", "2.1.0", 4)
    return m, [rand_input(9, (1, 3, 24, 24))], None


# ========================================================================
# PyTorch
# ========================================================================

class Torch:
    """torch.onnx naming: numbered intermediate values; parameters named
    after the module path."""

    def __init__(self, b, first=10, named_nodes=False):
        self.b, self.v, self.named = b, first, named_nodes
        self.ops = {}

    def val(self):
        self.v += 1
        return str(self.v)

    def node(self, op, ins, nout=1, **attrs):
        outs = [self.val() for _ in range(nout)]
        name = ""
        if self.named:  # torch >= 1.5: Op_N
            name = f"{op}_{len(self.b.nodes)}"
        self.b.node(op, ins, outs, name=name, **attrs)
        return outs[0] if nout == 1 else outs

    def const(self, arr):
        out = self.val()
        name = f"Constant_{len(self.b.nodes)}" if self.named else ""
        return self.b.const(out, arr, node_name=name)

    def conv(self, x, pname, cin, cout, k, pads, stride=1, as_const=False):
        b = self.b
        w, bias = b.he((cout, cin, k, k), cin * k * k), b.small((cout,))
        if as_const:
            ws, bs = self.const(w), self.const(bias)
        else:
            ws, bs = b.init(f"{pname}.weight", w), b.init(f"{pname}.bias", bias)
        return self.node("Conv", [x, ws, bs], dilations=[1, 1], group=1, kernel_shape=[k, k],
                         pads=list(pads), strides=[stride, stride])

    def linear(self, x, pname, cin, cout):
        """nn.Linear on 2-D input: Gemm(transB=1)."""
        b = self.b
        w = b.init(f"{pname}.weight", b.he((cout, cin), cin))
        bias = b.init(f"{pname}.bias", b.small((cout,)))
        return self.node("Gemm", [x, w, bias], alpha=1.0, beta=1.0, transB=1)

    def linear3d(self, x, pname, cin, cout):
        """nn.Linear on 3-D input: MatMul with the transposed weight, Add."""
        b = self.b
        w = b.init(f"onnx::MatMul_{self.v + 100}", b.he((cin, cout), cin))
        bias = b.init(f"{pname}.bias", b.small((cout,)))
        y = self.node("MatMul", [x, w])
        return self.node("Add", [bias, y])

    def view_batch(self, x):
        """x.view(x.size(0), -1) at opset 9-12: Shape, Gather of a scalar
        index, Unsqueeze(axes attr) of the size and of -1, Concat, Reshape."""
        s = self.node("Shape", [x])
        g = self.node("Gather", [s, self.const(np.array(0, np.int64))], axis=0)
        m1 = self.const(np.array(-1, np.int64))
        u0 = self.node("Unsqueeze", [g], axes=[0])
        u1 = self.node("Unsqueeze", [m1], axes=[0])
        shape = self.node("Concat", [u0, u1], axis=0)
        return self.node("Reshape", [x, shape])

    def onnx_paddings(self, x_rank, pad):
        """torch.onnx symbolic_opset11._prepare_onnx_paddings: F.pad's
        [last_begin, last_end, prev_begin, ...] list turned into ONNX order
        with Shape/Gather/ConstantOfShape/Concat/Reshape/flip/Transpose."""
        pad = self.const(np.array(pad, np.int64))
        s = self.node("Shape", [pad])
        pad_len = self.node("Gather", [s, self.const(np.array([0], np.int64))], axis=0)
        rank = self.const(np.array(x_rank, np.int64))
        two = self.const(np.array(2, np.int64))
        ext = self.node("Sub", [self.node("Mul", [rank, two]), pad_len])
        padc = self.node("Cast", [pad], to=I64)
        zeros = self.node("ConstantOfShape", [ext], value=numpy_helper.from_array(np.array([0], np.int64)))
        p = self.node("Concat", [padc, zeros], axis=0)
        p = self.node("Reshape", [p, self.const(np.array([-1, 2], np.int64))])
        # symbolic_opset10.flip: Slice(starts=-1, ends=-INT64_MAX, steps=-1)
        p = self.node("Slice", [p, self.const(np.array([-1], np.int64)),
                                self.const(np.array([-INT64_MAX], np.int64)),
                                self.const(np.array([0], np.int64)),
                                self.const(np.array([-1], np.int64))])
        p = self.node("Transpose", [p], perm=[1, 0])
        p = self.node("Reshape", [p, self.const(np.array([-1], np.int64))])
        return self.node("Cast", [p], to=I64)


def torch_op9():
    """LeNet/AlexNet-style CNN from torch 1.1 at opset 9: parameters are
    also graph inputs, conv2's weights are Constant nodes, AvgPool2d with
    count_include_pad becomes Pad + AveragePool, Dropout keeps its mask."""
    b = Builder(9001)
    t = Torch(b, first=0)
    x = b.input("input.1", F32, [1, 1, 28, 28])
    x = t.conv(x, "features.0", 1, 8, 5, [2, 2, 2, 2])
    x = t.node("Relu", [x])
    x = t.node("MaxPool", [x], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    x = t.node("Pad", [x], mode="constant", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.0)
    x = t.node("AveragePool", [x], kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[2, 2])
    x = t.conv(x, "features.4", 8, 16, 3, [1, 1, 1, 1], as_const=True)
    x = t.node("Relu", [x])
    x = t.node("Slice", [x], axes=[1], starts=[0], ends=[12])      # x[:, :12]
    x = t.view_batch(x)
    x, _ = t.node("Dropout", [x], nout=2, ratio=0.5)
    x = t.linear(x, "classifier.1", 12 * 7 * 7, 32)
    x = t.node("Relu", [x])
    x, _ = t.node("Dropout", [x], nout=2, ratio=0.5)
    x = t.linear(x, "classifier.4", 32, 10)
    y = t.node("Softmax", [x], axis=1)
    b.output(y, F32, [1, 10])
    m = b.model("torch-jit-export", 9, "pytorch", "1.1", 4, inits_as_inputs=True)
    # three samples for a batch-1 model: the driver runs them one by one
    return m, [rand_input(90, (3, 1, 28, 28))], None


def torch_op10():
    """Two-input, two-output model from torch 1.4 at opset 10: Slice with
    inputs (INT64_MAX end, step 2), AveragePool(count_include_pad=1),
    Flatten, Dropout, Gemm, a legacy Softmax(axis=1) on 3-D (the old
    exporter's direct mapping of softmax(dim=1))."""
    b = Builder(1001)
    t = Torch(b, first=20, named_nodes=True)
    img = b.input("image", F32, [1, 3, 16, 16])
    meta = b.input("meta", F32, [1, 8])
    x = t.conv(img, "backbone.conv", 3, 16, 3, [1, 1, 1, 1])
    x = t.node("Relu", [x])
    x = t.node("AveragePool", [x], ceil_mode=0, count_include_pad=1, kernel_shape=[3, 3],
               pads=[1, 1, 1, 1], strides=[2, 2])
    # x[:, :, 1:7, 1::2]
    x = t.node("Slice", [x, t.const(np.array([1, 1], np.int64)), t.const(np.array([7, INT64_MAX], np.int64)),
                         t.const(np.array([2, 3], np.int64)), t.const(np.array([1, 2], np.int64))])
    x = t.node("MaxPool", [x], ceil_mode=0, kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    x = t.node("Flatten", [x], axis=1)
    x = t.node("Dropout", [x], ratio=0.1)
    f_img = t.linear(x, "head.img", 16 * 3 * 2, 16)
    f_meta = t.node("Tanh", [t.linear(meta, "head.meta", 8, 16)])
    h = t.node("Concat", [f_img, f_meta], axis=1)
    h = t.node("Relu", [h])
    logits = t.linear(h, "head.out", 32, 5)
    b.node("Softmax", [logits], ["probs"], name="Softmax_out", axis=1)
    e = t.node("Add", [f_img, f_meta])
    e = t.node("Reshape", [e, t.const(np.array([-1, 4, 4], np.int64))])
    b.node("Softmax", [e], ["attn"], name="Softmax_attn", axis=1)  # legacy: over the 16 values
    b.output("probs", F32, [1, 5])
    b.output("attn", F32, [1, 4, 4])
    m = b.model("torch-jit-export", 10, "pytorch", "1.4", 6)
    return m, [rand_input(100, (1, 3, 16, 16)), rand_input(101, (1, 8))], None


def torch_op11():
    """torch 1.8 at opset 11: ReflectionPad2d and ReplicationPad2d through
    _prepare_onnx_paddings, clamp(min=) as Clip with an absent max,
    MaxPool(ceil_mode=1), mean over H, W, LogSoftmax."""
    b = Builder(1102)
    t = Torch(b, first=30, named_nodes=True)
    x = b.input("input", F32, [1, 3, 20, 20])
    x = t.conv(x, "conv1", 3, 8, 3, [0, 0, 0, 0])                    # 18x18
    x = t.node("Pad", [x, t.onnx_paddings(4, [1, 1, 2, 0])], mode="reflect")   # 20x20
    x = t.conv(x, "conv2", 8, 8, 3, [1, 1, 1, 1], stride=2)          # 10x10
    x = t.node("Clip", [x, t.const(np.array(0.1, np.float32)), ""])  # clamp(min=0.1)
    x = t.node("MaxPool", [x], ceil_mode=1, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])  # 6x6
    x = t.node("Pad", [x, t.onnx_paddings(4, [0, 1, 1, 1])], mode="edge")      # 8x7
    x = t.conv(x, "conv3", 8, 12, 3, [0, 0, 0, 0])                   # 6x5
    x = t.node("Relu", [x])
    x = t.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    x = t.node("Dropout", [x], ratio=0.2)
    x = t.linear(x, "fc", 12, 10)
    b.node("LogSoftmax", [x], ["output"], name="LogSoftmax_out", axis=1)
    b.output("output", F32, [1, 10])
    m = b.model("torch-jit-export", 11, "pytorch", "1.8", 6)
    return m, [rand_input(110, (1, 3, 20, 20))], None


def torch_ops_op13():
    """torch 1.10 at opset 13, a grab-bag of element-wise and reduction ops
    in their opset-13 form: Squeeze/Unsqueeze/ReduceSum with axes inputs,
    Clip with an absent min, per-axis Softmax, Size, Tile, Expand."""
    b = Builder(1302)
    t = Torch(b, first=40, named_nodes=True)
    x = b.input("x", F32, [1, 4, 8, 8])
    x = t.conv(x, "conv", 4, 8, 3, [1, 1, 1, 1])
    x = t.node("PRelu", [x, b.init("act.weight", b.uniform((8, 1, 1), 0.05, 0.3))])
    a = t.node("Elu", [x], alpha=1.0)
    s = t.node("Selu", [x], alpha=1.6732631921768188, gamma=1.0507010221481323)
    sp = t.node("Softplus", [x])
    ss = t.node("Softsign", [x])
    mx = t.node("Max", [a, s])
    mn = t.node("Min", [sp, ss])
    sm = t.node("Sum", [a, s, sp])
    me = t.node("Mean", [s, sp, ss])
    ab = t.node("Abs", [x])
    lg = t.node("Log", [t.node("Add", [ab, t.const(np.array(1.0, np.float32))])])
    ex = t.node("Exp", [t.node("Neg", [ab])])
    rc = t.node("Reciprocal", [t.node("Add", [ab, t.const(np.array(2.0, np.float32))])])
    q = t.node("Mul", [x, t.const(np.array(4.0, np.float32))])
    fl = t.node("Floor", [q])
    ce = t.node("Ceil", [q])
    rnd = t.node("Mul", [t.node("Add", [fl, ce]), t.const(np.array(0.125, np.float32))])
    y = t.node("Sum", [mx, mn, sm, me, lg, ex, rc, rnd])
    y = t.node("Where", [t.node("Greater", [y, t.const(np.array(0.0, np.float32))]), y,
                         t.node("Mul", [y, t.const(np.array(0.1, np.float32))])])
    y = t.node("Clip", [y, "", t.const(np.array(4.0, np.float32))])  # clamp(max=4)
    # pooled statistics, [1, 8, 1, 1] each
    st = [t.node("GlobalMaxPool", [y]),
          t.node("ReduceMax", [y], axes=[2, 3], keepdims=1),
          t.node("ReduceMin", [y], axes=[2, 3], keepdims=1),
          t.node("ReduceSum", [y, t.const(np.array([2, 3], np.int64))], keepdims=1),
          t.node("ReduceProd", [t.node("Sigmoid", [y])], axes=[2, 3], keepdims=1)]
    p = t.node("Concat", st, axis=1)                                     # [1, 40, 1, 1]
    p = t.node("Squeeze", [p, t.const(np.array([2, 3], np.int64))])      # [1, 40]
    p = t.node("Div", [p, t.node("Cast", [t.node("Size", [y])], to=F32)])  # / 512
    p = t.node("Tile", [p, t.const(np.array([1, 2], np.int64))])         # [1, 80]
    p = t.node("Unsqueeze", [p, t.const(np.array([1], np.int64))])      # [1, 1, 80]
    p = t.node("Expand", [p, t.const(np.array([1, 3, 1], np.int64))])   # [1, 3, 80]
    bias = t.node("ConstantOfShape", [t.const(np.array([3, 1], np.int64))],
                  value=numpy_helper.from_array(np.array([0.5], np.float32)))
    w = b.init("mix", b.small((1, 3, 80), 4.0))
    p = t.node("Add", [t.node("Mul", [p, w]), bias])
    b.node("Softmax", [p], ["probs"], name="Softmax_out", axis=1)   # opset 13: over axis 1 only
    b.node("GlobalAveragePool", [y], ["pooled"], name="GlobalAveragePool_out")
    b.output("probs", F32, [1, 3, 80])
    b.output("pooled", F32, [1, 8, 1, 1])
    m = b.model("torch-jit-export", 13, "pytorch", "1.10", 7)
    return m, [rand_input(130, (1, 4, 8, 8))], None


def torch_attn_op15():
    """One causal self-attention block from torch 1.13 at opset 15: Linear
    on 3-D as MatMul + Add, head split by Reshape/Transpose, causal mask
    from Shape(start, end)/Range/Less/Cast/Equal, masked_fill(-inf) as
    Where, Dropout with a ratio input, Reshape with a 0 (copy) dim."""
    b = Builder(1503)
    t = Torch(b, first=50, named_nodes=True)
    x = b.input("x", F32, [1, 8, 16])
    pos = b.init("pos_emb", b.small((1, 1, 16), 0.5))
    shp = t.node("Shape", [x])
    x = t.node("Add", [x, t.node("Expand", [pos, shp])])
    q = t.linear3d(x, "attn.q", 16, 16)
    k = t.linear3d(x, "attn.k", 16, 16)
    v = t.linear3d(x, "attn.v", 16, 16)
    heads = t.const(np.array([1, 8, 2, 8], np.int64))
    q = t.node("Transpose", [t.node("Reshape", [q, heads])], perm=[0, 2, 1, 3])   # [1, 2, 8, 8]
    k = t.node("Transpose", [t.node("Reshape", [k, heads])], perm=[0, 2, 3, 1])   # [1, 2, 8, 8] (K^T)
    v = t.node("Transpose", [t.node("Reshape", [v, heads])], perm=[0, 2, 1, 3])
    sc = t.node("Div", [t.node("MatMul", [q, k]), t.const(np.array(np.sqrt(8.0), np.float32))])
    # allowed = (arange(T)[None, :] <= arange(T)[:, None]) -> as long, == 1
    n = t.node("Shape", [x], start=1, end=2)
    n = t.node("Squeeze", [n, t.const(np.array([0], np.int64))])
    r = t.node("Range", [t.const(np.array(0, np.int64)), n, t.const(np.array(1, np.int64))])
    col = t.node("Unsqueeze", [r, t.const(np.array([0], np.int64))])
    row = t.node("Unsqueeze", [r, t.const(np.array([1], np.int64))])
    fut = t.node("Less", [row, col])
    fut = t.node("Cast", [fut], to=I64)
    allowed = t.node("Equal", [fut, t.const(np.array(0, np.int64))])
    sc = t.node("Where", [allowed, sc, t.const(np.array(-np.inf, np.float32))])
    pr = t.node("Softmax", [sc], axis=-1)
    pr = t.node("Dropout", [pr, t.const(np.array(0.1, np.float32))])
    o = t.node("Transpose", [t.node("MatMul", [pr, v])], perm=[0, 2, 1, 3])   # [1, 8, 2, 8]
    o = t.node("Reshape", [o, t.const(np.array([0, 0, -1], np.int64))])       # [1, 8, 16]
    o = t.linear3d(o, "attn.proj", 16, 16)
    o = t.node("Dropout", [o, t.const(np.array(0.1, np.float32)), t.const(np.array(False))])
    x = t.node("Add", [x, o])
    h = t.node("Relu", [t.linear3d(x, "mlp.fc1", 16, 32)])
    h = t.linear3d(h, "mlp.fc2", 32, 16)
    b.node("Add", [x, h], ["y"], name="Add_out")
    b.output("y", F32, [1, 8, 16])
    m = b.model("torch_jit", 15, "pytorch", "1.13.1", 8)
    return m, [rand_input(150, (1, 8, 16))], None


def mixer_op17():
    """MLP-mixer-like block from torch 2.x at opset 17 with a hand-written
    layer norm (no LayerNormalization op): 3-D MatMul, erf GELU, token
    mixing through Transpose, ReduceMean/Sub/Pow/Sqrt/Div, SiLU, Tanh,
    LeakyRelu, HardSwish, Concat.  Writes value_info like torch 2."""
    b = Builder(1701)
    t = Torch(b, first=60, named_nodes=True)
    x = b.input("tokens", F32, [1, 16, 32])

    def gelu(h):
        e = t.node("Erf", [t.node("Div", [h, t.const(np.array(1.4142135381698608, np.float32))])])
        e = t.node("Add", [e, t.const(np.array(1.0, np.float32))])
        return t.node("Mul", [t.node("Mul", [h, e]), t.const(np.array(0.5, np.float32))])

    def layer_norm(h, pname, c):
        mu = t.node("ReduceMean", [h], axes=[-1], keepdims=1)
        d = t.node("Sub", [h, mu])
        var = t.node("ReduceMean", [t.node("Pow", [d, t.const(np.array(2.0, np.float32))])], axes=[-1], keepdims=1)
        sd = t.node("Sqrt", [t.node("Add", [var, t.const(np.array(1e-5, np.float32))])])
        h = t.node("Div", [d, sd])
        h = t.node("Mul", [h, b.init(f"{pname}.weight", b.uniform((c,), 0.8, 1.2))])
        return t.node("Add", [h, b.init(f"{pname}.bias", b.small((c,)))])

    # channel MLP
    h = t.linear3d(x, "channel_mlp.fc1", 32, 64)
    h = gelu(h)
    h = t.linear3d(h, "channel_mlp.fc2", 64, 32)
    x = t.node("Add", [x, h])
    # token mixing on the transposed sequence
    tt = t.node("Transpose", [layer_norm(x, "norm1", 32)], perm=[0, 2, 1])      # [1, 32, 16]
    tt = t.node("Tanh", [t.linear3d(tt, "token_mlp", 16, 16)])
    x = t.node("Add", [x, t.node("Transpose", [tt], perm=[0, 2, 1])])
    x = layer_norm(x, "norm2", 32)
    silu = t.node("Mul", [x, t.node("Sigmoid", [x])])
    leaky = t.node("LeakyRelu", [x], alpha=0.1)
    hsw = t.node("HardSwish", [x])
    h = t.node("Concat", [silu, leaky, hsw], axis=-1)                         # [1, 16, 96]
    h = t.node("ReduceMean", [h], axes=[1], keepdims=0)                       # [1, 96]
    w = b.init("head.weight", b.he((96, 10), 96))
    h = t.node("MatMul", [h, w])
    b.node("Add", [h, b.init("head.bias", b.small((10,)))], ["logits"], name="Add_out")
    b.output("logits", F32, [1, 10])
    m = b.model("main_graph", 17, "pytorch", "2.1.0", 8, infer=True)
    return m, [rand_input(170, (1, 16, 32))], None


MODELS = [tf_cnn_op13, tf_mnv3_op15, paddle_op11, paddle_op9, torch_op9, torch_op10,
          torch_op11, torch_ops_op13, torch_attn_op15, mixer_op17]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for make in MODELS:
        name = make.__name__
        model, inputs, args = make()
        onnx.checker.check_model(model, full_check=True)
        path = os.path.join(out, name + ".onnx")
        onnx.save(model, path)
        for i, a in enumerate(inputs):
            np.save(os.path.join(out, f"{name}.in{i}.npy"), a)
        argf = os.path.join(out, name + ".args")
        if args:
            with open(argf, "w") as f:
                f.write(args + "\n")
        elif os.path.exists(argf):
            os.remove(argf)
        print(f"{name}: opset {model.opset_import[0].version}, {len(model.graph.node)} nodes, "
              f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
