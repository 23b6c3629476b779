#!/usr/bin/python3
"""Write the bad-input corpus: tests/bad/NAME.onnx, each a broken or
unsupported model, and tests/bad/NAME.err, the one line potc must print on
stderr for it (run as `potc NAME.onnx -o ... [NAME.args]` from this
directory, exit 1).

Run by hand from anywhere when a case changes (needs /usr/bin/python3 with
onnx and numpy); both the script and its output are committed:
    /usr/bin/python3 tests/bad/make_corpus.py
"""
import os
import random

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "samples", "fmnist_cnn", "model.onnx")
F = TensorProto.FLOAT
CASES = []


def case(expect, args=None):
    """Register a generator; expect is the message after 'NAME.onnx: ',
    args the extra command-line arguments (written to NAME.args)."""
    def wrap(f):
        CASES.append((f.__name__, f, expect, args))
        return f
    return wrap


def vi(name, dims, t=F):
    return helper.make_tensor_value_info(name, t, dims)


def model(nodes, inputs=None, outputs=None, inits=(), opset=13, opsets=None):
    inputs = [vi("x", [1, 4])] if inputs is None else inputs
    outputs = [vi("y", [1, 4])] if outputs is None else outputs
    g = helper.make_graph(nodes, "bad", inputs, outputs, list(inits))
    ops = opsets or [helper.make_opsetid("", opset)]
    return helper.make_model(g, opset_imports=ops).SerializeToString()


def relu():
    return [helper.make_node("Relu", ["x"], ["y"], name="relu")]


@case("error: not a valid ONNX model (protobuf parse failed)")
def truncated():
    data = open(SAMPLE, "rb").read()
    return data[: len(data) // 2]


@case("error: not a valid ONNX model (protobuf parse failed)")
def random_bytes():
    rng = random.Random(1234)
    return bytes(rng.randrange(256) for _ in range(4096))


@case("error: empty file, not an ONNX model")
def empty():
    return b""


@case("error: not a valid ONNX model (protobuf parse failed)")
def numpy_file():
    path = os.path.join(HERE, "_tmp.npy")
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    data = open(path, "rb").read()
    os.remove(path)
    return data


@case("error: not a valid ONNX model (protobuf parse failed)")
def text_file():
    return b"This is not a model.\nIt is a text file that someone renamed.\n"


@case("error: not a valid ONNX model (it has no graph)")
def no_graph():
    m = helper.make_model(helper.make_graph(relu(), "g", [vi("x", [1])], [vi("y", [1])]))
    m.ClearField("graph")
    return m.SerializeToString()


@case("error: not a valid ONNX model (messages nested deeper than 64 levels)")
def deep_nesting():
    # graph{node{attribute{g: graph{...}}}} 100 levels: protobuf-c alone
    # would recurse without limit (a stack overflow at ~100k levels).
    def varint(n):
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    heads, size = [], 0
    for _ in range(100):
        for field in (6, 5, 1):
            h = varint(field << 3 | 2) + varint(size)
            heads.append(h)
            size += len(h)
    heads.append(varint(7 << 3 | 2) + varint(size))
    return b"".join(reversed(heads))


@case('node "a" (Add): error: node is part of a dependency cycle (through its input \'t2\')')
def cycle():
    nodes = [
        helper.make_node("Add", ["x", "t2"], ["t1"], name="a"),
        helper.make_node("Neg", ["t1"], ["t2"], name="b"),
        helper.make_node("Relu", ["t2"], ["y"], name="c"),
    ]
    return model(nodes)


@case('node "relu" (Relu): error: input \'x_typo\' is not produced by any node, '
      'initializer or graph input')
def dangling_input():
    return model([helper.make_node("Relu", ["x_typo"], ["y"], name="relu")])


@case('node "fc" (MatMul): error: input \'fc.weight\' is not produced by any node, '
      'initializer or graph input')
def missing_initializer():
    return model([helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="fc")],
                 outputs=[vi("y", [1, 2])])


@case("error: tensor 'w' has a negative dim (-2)")
def negative_dim():
    w = TensorProto(name="w", data_type=F, dims=[-2, 2])
    w.float_data.extend([1.0, 2.0, 3.0, 4.0])
    return model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w])


@case("error: input 'x' dims [1,1099511627776] exceed potc's limit of 2147483647 elements")
def huge_dim():
    return model(relu(), inputs=[vi("x", [1, 1 << 40])])


@case("error: tensor 'w' has 20 bytes of data but its dims [2,3] of f32 need 24")
def data_length():
    w = TensorProto(name="w", data_type=F, dims=[2, 3], raw_data=bytes(20))
    return model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w])


@case("error: tensor 'w' has 5 values but its dims [2,3] need 6")
def typed_length():
    w = helper.make_tensor("w", F, [5], [1.0] * 5)
    w.dims[:] = [2, 3]
    return model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w])


@case('node "uniq" (Unique): error: unsupported op \'Unique\'')
def unsupported_op():
    return model([helper.make_node("Unique", ["x"], ["y"], name="uniq")])


@case('node "fused" (FusedConv): error: domain \'com.microsoft\' is not supported '
      '(potc compiles the default ONNX domain)')
def foreign_domain():
    n = helper.make_node("FusedConv", ["x"], ["y"], name="fused", domain="com.microsoft")
    return model([n], opsets=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])


@case('node "bn" (BatchNormalization): error: attribute \'spatial\' = 0 (per-activation '
      'statistics) is supported only when they are per channel anyway; \'s\' holds 16 values '
      'for 4 channels')
def opset8_spatial():
    # spatial (opsets 1 to 8) = 0: statistics per activation [C, H, W]
    x = vi("x", [1, 4, 2, 2])
    s = [numpy_helper.from_array(np.ones((4, 2, 2), np.float32), n) for n in ("s", "b", "m", "v")]
    n = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn",
                         spatial=0)
    return model([n], inputs=[x], outputs=[vi("y", [1, 4, 2, 2])], inits=s, opset=8)


@case('node "drop" (Dropout): error: training mode (attribute \'is_test\' = 0, the default) '
      'is not supported: potc compiles inference, the model must set is_test = 1')
def opset6_training():
    return model([helper.make_node("Dropout", ["x"], ["y"], name="drop", ratio=0.5)], opset=6)


@case("error: opset 99 not supported (potc supports 1 to 17)")
def opset99():
    return model(relu(), opset=99)


@case("error: model imports no default ONNX opset (potc supports 1 to 17)")
def no_opset():
    return model(relu(), opsets=[helper.make_opsetid("com.microsoft", 1)])


@case("error: tensor 'w' stores its data in an external file; potc needs it embedded "
      "(save the model with all tensors inside)")
def external_data():
    w = TensorProto(name="w", data_type=F, dims=[1, 4],
                    data_location=TensorProto.EXTERNAL)
    e = w.external_data.add()
    e.key, e.value = "location", "weights.bin"
    return model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w])


@case("error: tensor 'names' is string, which potc does not support")
def string_tensor():
    s = helper.make_tensor("names", TensorProto.STRING, [2], [b"cat", b"dog"])
    return model(relu(), inits=[s])


@case("error: tensor 'w' is float16; potc supports float32 models (convert it to float32)")
def float16_tensor():
    w = numpy_helper.from_array(np.ones((1, 4), np.float16), "w")
    return model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w])


@case('node "second" (Neg): error: output \'t\' is already produced by another node, '
      'an initializer or a graph input')
def produced_twice():
    nodes = [
        helper.make_node("Relu", ["x"], ["t"], name="first"),
        helper.make_node("Neg", ["x"], ["t"], name="second"),
        helper.make_node("Relu", ["t"], ["y"], name="last"),
    ]
    return model(nodes)


@case("error: input 'image' dim 2 ('height') is not fixed; "
      "pass --input-shape image=1x3x<height>x<width>")
def symbolic_dim():
    x = vi("image", ["batch", 3, "height", "width"])
    y = vi("y", ["batch", 3, "height", "width"])
    return model([helper.make_node("Relu", ["image"], ["y"])], inputs=[x], outputs=[y])


@case('node "pad" (Pad): error: attribute \'mode\' = \'wrap\' is not supported '
      '(constant, reflect, edge)')
def pad_wrap():
    pads = numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads")
    n = helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="wrap")
    return model([n], inits=[pads], outputs=[vi("y", [1, 6])])


@case('node "bn" (BatchNormalization): error: attribute \'training_mode\' = 1 is not '
      'supported (potc compiles inference)')
def batchnorm_training():
    s = [numpy_helper.from_array(np.ones(4, np.float32), n) for n in ("s", "b", "m", "v")]
    n = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn",
                         training_mode=1)
    return model([n], inits=s, opset=15)


@case('node "bn" (BatchNormalization): error: output 1 (\'mean_out\') is used, but potc '
      'computes only the first output of BatchNormalization')
def bn_stats_used():
    x = vi("x", [1, 2, 4, 4])
    s = [numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("s", "b", "m", "v")]
    n = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "mean_out"], name="bn")
    return model([n], inputs=[x], inits=s, outputs=[vi("y", None), vi("mean_out", None)], opset=9)


@case("error: --input-shape names 'z', which is not an input of the model",
      args="--input-shape z=1x4")
def binding_unknown():
    return model(relu())


@case("error: --input-shape image has 3 dims but input 'image' has rank 4",
      args="--input-shape image=1x3x48")
def binding_rank():
    return symbolic_dim()


@case("error: graph output 'z' is not produced by any node, initializer or graph input")
def missing_output():
    return model(relu(), outputs=[vi("y", [1, 4]), vi("z", [1, 4])])


def main():
    for name, gen, expect, args in CASES:
        with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
            f.write(gen())
        with open(os.path.join(HERE, name + ".err"), "w") as f:
            f.write(f"{name}.onnx: {expect}\n")
        if args:
            with open(os.path.join(HERE, name + ".args"), "w") as f:
                f.write(args + "\n")


if __name__ == "__main__":
    main()
