#!/usr/bin/python3
"""Write tests/unit/frontend_models.h: small ONNX models, serialised, as C
arrays for test_frontend.c.  Each exercises one thing the importer must do.

Run by hand when the list changes (needs /usr/bin/python3 with onnx):
    /usr/bin/python3 tests/unit/make_frontend_models.py > tests/unit/frontend_models.h
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=13, extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    return helper.make_model(g, opset_imports=ops, producer_name="potc-test")


def vi(name, dims, t=F):
    return helper.make_tensor_value_info(name, t, dims)


W = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5


def raw_init():
    """Add(x, w), w stored as raw_data."""
    w = numpy_helper.from_array(W, "w")
    assert w.HasField("raw_data")
    return model([helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                 [vi("x", [2, 3])], [vi("y", [2, 3])], [w])


def typed_init():
    """Initializers in typed fields: float, int64, int32, double, uint64."""
    inits = [
        helper.make_tensor("w", F, [2, 3], W.flatten().tolist()),
        helper.make_tensor("i64", TensorProto.INT64, [3], [-1, 0, 1 << 40]),
        helper.make_tensor("i8", TensorProto.INT8, [2], [-128, 127]),
        helper.make_tensor("b", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("f64", TensorProto.DOUBLE, [2], [0.25, -1e300]),
        helper.make_tensor("u32", TensorProto.UINT32, [1], [4000000000]),
    ]
    nodes = [helper.make_node("Add", ["x", "w"], ["y"], name="add")]
    for n in ("i64", "i8", "b", "f64", "u32"):
        nodes.append(helper.make_node("Identity", [n], [n + "_out"]))
    outs = [vi("y", [2, 3])] + [vi(n + "_out", None) for n in ("i64", "i8", "b", "f64", "u32")]
    return model(nodes, [vi("x", [2, 3])], outs, inits)


def init_as_input():
    """Old exporters list every weight as a graph input too."""
    w = numpy_helper.from_array(W, "w")
    return model([helper.make_node("Mul", ["x", "w"], ["y"])],
                 [vi("x", [2, 3]), vi("w", [2, 3])], [vi("y", [2, 3])], [w])


def constant_node():
    """Constant nodes (value tensor, value_ints, value_float) become constants."""
    nodes = [
        helper.make_node("Constant", [], ["shape"], value_ints=[3, 2]),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Constant", [], ["k"], value_float=2.0),
        helper.make_node("Mul", ["r", "k"], ["m"]),
        helper.make_node("Constant", [], ["c"],
                         value=numpy_helper.from_array(np.array([1.5, -1.5], np.float32))),
        helper.make_node("Add", ["m", "c"], ["y"]),
    ]
    return model(nodes, [vi("x", [2, 3])], [vi("y", [3, 2])])


def symbolic():
    """x[N, 3, H, W]: N defaults to 1, H and W need a binding."""
    return model([helper.make_node("Relu", ["x"], ["y"])],
                 [vi("x", ["N", 3, "H", "W"])], [vi("y", ["N", 3, "H", "W"])])


def batch_only():
    """Only the batch dim is symbolic (and one unnamed): loads as is."""
    x = vi("x", [None, 4])
    return model([helper.make_node("Relu", ["x"], ["y"])], [x], [vi("y", [None, 4])])


def opset9_attrs():
    """Opset 9 attribute forms (Slice, Pad, Squeeze, Clip...) as inputs."""
    nodes = [
        helper.make_node("Slice", ["x"], ["s"], starts=[0, 1], ends=[1, 1000], axes=[0, 2], name="slice"),
        helper.make_node("Pad", ["s"], ["p"], pads=[0, 0, 1, 0, 0, 2], value=1.5, name="pad"),
        helper.make_node("Squeeze", ["p"], ["q"], axes=[0], name="squeeze"),
        helper.make_node("Unsqueeze", ["q"], ["u"], axes=[0], name="unsqueeze"),
        helper.make_node("Clip", ["u"], ["c"], min=0.0, name="clip"),
        helper.make_node("ReduceSum", ["c"], ["r"], axes=[2], keepdims=0, name="rsum"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax"),
    ]
    return model(nodes, [vi("x", [1, 3, 4])], [vi("y", None)], opset=9)


def foreign_import():
    """An import of another domain that no node uses is harmless."""
    return model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])],
                 extra_opsets=[("com.microsoft", 1), ("ai.onnx.ml", 3)])


def unordered():
    """Nodes out of topological order: b needs a's output."""
    nodes = [helper.make_node("Relu", ["t"], ["y"], name="b"),
             helper.make_node("Neg", ["x"], ["t"], name="a")]
    return model(nodes, [vi("x", [2])], [vi("y", [2])])


def conv_nokernel():
    """Conv without kernel_shape; unread BatchNorm and Dropout outputs."""
    w = numpy_helper.from_array(np.ones((4, 2, 3, 5), np.float32), "w")
    s = [numpy_helper.from_array(np.ones(4, np.float32), n) for n in ("sc", "bi", "me", "va")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 2, 1, 2], name="conv"),
        helper.make_node("BatchNormalization", ["c", "sc", "bi", "me", "va"],
                         ["bn", "", "", "", ""], epsilon=1e-3, name="bn"),
        helper.make_node("Dropout", ["bn"], ["y", "mask"], name="drop"),
    ]
    return model(nodes, [vi("x", [1, 2, 8, 8])], [vi("y", None)], [w] + s, opset=12)


def bad_attr():
    """An attribute potc does not know: an error naming node and attribute."""
    return model([helper.make_node("Relu", ["x"], ["y"], name="r", foo=1)],
                 [vi("x", [2])], [vi("y", [2])])


def two_unsupported():
    """Two unsupported ops: both reported."""
    nodes = [helper.make_node("Sin", ["x"], ["a"], name="s"),
             helper.make_node("Cos", ["a"], ["y"], name="c")]
    return model(nodes, [vi("x", [2])], [vi("y", [2])])


def untyped_attr():
    """IR version 1 attributes have no type field; Selu and Clip defaults."""
    fl = helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=2)
    fl.attribute[0].ClearField("type")
    nodes = [fl, helper.make_node("Selu", ["f"], ["s"], name="selu"),
             helper.make_node("Clip", ["s"], ["y"], name="clip", min=-1.0, max=1.0)]
    return model(nodes, [vi("x", [1, 2, 3])], [vi("y", None)], opset=10)


def one(node, opset=13, inputs=None, inits=()):
    return model([node], inputs or [vi("x", [1, 2, 3, 4])], [vi("y", None)], inits, opset=opset)


W4 = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")

# (name, model, the one error it must give after "NAME.onnx: ")
ERRORS = [
    ("attr_type", one(helper.make_node("Flatten", ["x"], ["y"], name="n", axis=1.0)),
     "node \"n\" (Flatten): error: attribute 'axis' should be an int, it is a float"),
    ("axis_range", one(helper.make_node("Softmax", ["x"], ["y"], name="n", axis=9)),
     "node \"n\" (Softmax): error: attribute 'axis' = 9 is out of range [-8, 7]"),
    ("perm", one(helper.make_node("Transpose", ["x"], ["y"], name="n", perm=[0, 0, 1, 2])),
     "node \"n\" (Transpose): error: attribute 'perm' is not a permutation (value 0)"),
    ("slice_len", one(helper.make_node("Slice", ["x"], ["y"], name="n", starts=[0], ends=[1, 2]), 9),
     "node \"n\" (Slice): error: attributes 'starts', 'ends' and 'axes' differ in length"),
    ("arity", one(helper.make_node("Add", ["x"], ["y"], name="n")),
     "node \"n\" (Add): error: takes 2 inputs at opset 13, it has 1"),
    ("squeeze13", one(helper.make_node("Squeeze", ["x"], ["y"], name="n", axes=[0])),
     "node \"n\" (Squeeze): error: attribute 'axes' is not supported at opset 13"),
    ("strides", one(helper.make_node("Conv", ["x", "w"], ["y"], name="n", strides=[1]), inits=[W4]),
     "node \"n\" (Conv): error: attribute 'strides' has 1 values, the window needs 2"),
    ("autopad", one(helper.make_node("MaxPool", ["x"], ["y"], name="n", kernel_shape=[2, 2],
                                     auto_pad="SAME")),
     "node \"n\" (MaxPool): error: attribute 'auto_pad' = 'SAME' is not valid"),
    ("kernel_unknown", model([helper.make_node("Neg", ["w"], ["v"]),
                              helper.make_node("Conv", ["x", "v"], ["y"], name="n")],
                             [vi("x", [1, 2, 3, 4])], [vi("y", None)], [W4]),
     "node \"n\" (Conv): error: attribute 'kernel_shape' is absent and the weight's shape is not known"),
    ("training", one(helper.make_node("Dropout", ["x", "", "t"], ["y"], name="n"),
                     inits=[numpy_helper.from_array(np.array(True), "t")]),
     "node \"n\" (Dropout): error: training mode is not supported "
     "(input 'training_mode' must be a constant false)"),
    ("cast_string", one(helper.make_node("Cast", ["x"], ["y"], name="n", to=TensorProto.STRING)),
     "node \"n\" (Cast): error: attribute 'to' is string, which potc does not support"),
    ("empty_input", one(helper.make_node("Mul", ["x", ""], ["y"], name="n")),
     "node \"n\" (Mul): error: input 1 is required but empty"),
]

MODELS = [untyped_attr, raw_init, typed_init, init_as_input, constant_node, symbolic, batch_only,
          opset9_attrs, foreign_import, unordered, conv_nokernel, bad_attr, two_unsupported]


def c_array(name, data):
    lines = [f"static const unsigned char model_{name}[] = {{"]
    for i in range(0, len(data), 16):
        lines.append("\t" + ", ".join(str(b) for b in data[i:i + 16]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    print("/* Generated by tests/unit/make_frontend_models.py: do not edit. */")
    for f in MODELS:
        m = f()
        print(f"\n/* {f.__name__}: {f.__doc__.strip().splitlines()[0]} */")
        print(c_array(f.__name__, m.SerializeToString()))
    print("\n/* Models that must fail with exactly one error. */")
    for name, m, _ in ERRORS:
        print(c_array(name, m.SerializeToString()))
    print("\nstatic const struct {\n\tconst char *name;\n\tconst unsigned char *bytes;"
          "\n\tsize_t len;\n\tconst char *error;\n} error_models[] = {")
    for name, _, err in ERRORS:
        msg = f"{name}.onnx: {err}".replace("\\", "\\\\").replace('"', '\\"')
        print(f'\t{{"{name}", model_{name}, sizeof model_{name},\n\t "{msg}"}},')
    print("};")


if __name__ == "__main__":
    main()
