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
    """Two unsupported ops (data-dependent shapes: never static): both reported."""
    nodes = [helper.make_node("Unique", ["x"], ["a"], name="s"),
             helper.make_node("NonZero", ["a"], ["y"], name="c")]
    return model(nodes, [vi("x", [2])], [vi("y", [2])])


def untyped_attr():
    """IR version 1 attributes have no type field; Selu and Clip defaults."""
    fl = helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=2)
    fl.attribute[0].ClearField("type")
    nodes = [fl, helper.make_node("Selu", ["f"], ["s"], name="selu"),
             helper.make_node("Clip", ["s"], ["y"], name="clip", min=-1.0, max=1.0)]
    return model(nodes, [vi("x", [1, 2, 3])], [vi("y", None)], opset=10)


def legacy_broadcast():
    """Opset 6 broadcast=1 with axis: B gets trailing 1s (Unsqueeze) unless
    it already lines up with A's last dims; a 1-D PRelu slope is per channel."""
    b = numpy_helper.from_array(np.ones((3, 4), np.float32), "b")
    c = numpy_helper.from_array(np.ones((4, 5), np.float32), "c")
    s = numpy_helper.from_array(np.ones(3, np.float32), "s")
    nodes = [
        helper.make_node("Add", ["x", "b"], ["t1"], name="add", broadcast=1, axis=1),
        helper.make_node("Mul", ["t1", "c"], ["t2"], name="mul", broadcast=1, axis=2),
        helper.make_node("Relu", ["t2"], ["t3"], name="relu"),
        helper.make_node("Sub", ["t3", "v"], ["t4"], name="sub", broadcast=1, axis=0),
        helper.make_node("Div", ["t4", "x"], ["t5"], name="div"),
        helper.make_node("PRelu", ["t5", "s"], ["y"], name="prelu"),
    ]
    return model(nodes, [vi("x", [2, 3, 4, 5]), vi("v", [2])], [vi("y", None)], [b, c, s], opset=6)


def legacy_cast():
    """Cast-1 (opset 5): 'to' is a type name; Selu-1's rounded defaults;
    Clip-1 has no default bounds."""
    nodes = [
        helper.make_node("Cast", ["x"], ["i"], name="cast_i", to="INT32"),
        helper.make_node("Cast", ["i"], ["y"], name="cast_f", to="FLOAT"),
        helper.make_node("Selu", ["y"], ["z"], name="selu", consumed_inputs=[0]),
        helper.make_node("Clip", ["z"], ["c"], name="clip", max=1.0),
    ]
    return model(nodes, [vi("x", [2, 3])], [vi("c", None)], opset=5)


def legacy_opset1():
    """Opset 1: Pad paddings, Concat's default axis 1, Reshape's shape
    attribute, Tile-1's (tiles, axis), BatchNormalization spatial = 0 with
    per-channel statistics, Dropout is_test."""
    st = [numpy_helper.from_array(np.ones((2, 1, 1), np.float32), n) for n in ("sc", "bi", "me", "va")]
    tiles = numpy_helper.from_array(np.array([3.0], np.float32), "tiles")
    axis = numpy_helper.from_array(np.array([1.0], np.float32), "axis")
    nodes = [
        helper.make_node("Pad", ["x"], ["p"], name="pad", paddings=[0, 0, 1, 2], mode="edge"),
        helper.make_node("Concat", ["p", "p"], ["c"], name="concat"),
        helper.make_node("Reshape", ["c"], ["r"], name="reshape", shape=[1, 2, -1, 1],
                         consumed_inputs=[1]),
        helper.make_node("BatchNormalization", ["r", "sc", "bi", "me", "va"], ["b"], name="bn",
                         is_test=1, spatial=0, consumed_inputs=[0, 0, 0, 1, 1]),
        helper.make_node("Dropout", ["b"], ["d"], name="drop", is_test=1, ratio=0.2),
        helper.make_node("Tile", ["d", "tiles", "axis"], ["y"], name="tile"),
    ]
    return model(nodes, [vi("x", [1, 3])], [vi("y", None)], st + [tiles, axis], opset=1)


def one(node, opset=13, inputs=None, inits=()):
    return model([node], inputs or [vi("x", [1, 2, 3, 4])], [vi("y", None)], inits, opset=opset)


W4 = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
B4 = numpy_helper.from_array(np.ones(4, np.float32), "b")

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
    ("legacy_rank", model([helper.make_node("Squeeze", ["x"], ["s"]),
                           helper.make_node("Add", ["s", "b"], ["y"], name="n", broadcast=1, axis=0)],
                          [vi("x", [1, 2, 3, 4])], [vi("y", None)], [B4], opset=6),
     "node \"n\" (Add): error: attribute 'axis' needs the rank of input 's', which potc "
     "cannot tell before shape inference"),
    ("legacy_fit", one(helper.make_node("Add", ["x", "b"], ["y"], name="n", broadcast=1, axis=4),
                       6, inits=[B4]),
     "node \"n\" (Add): error: input 'b' (rank 1) does not fit in input 'x' (rank 4) at axis 4"),
    ("legacy_same", one(helper.make_node("Mul", ["x", "b"], ["y"], name="n", axis=1), 6, inits=[B4]),
     "node \"n\" (Mul): error: inputs 'x' [1,2,3,4] and 'b' [4] differ in shape; at opset 6 "
     "that needs attribute 'broadcast' = 1"),
    ("legacy_max", model([helper.make_node("Relu", ["x"], ["r"]),
                          helper.make_node("Max", ["r", "b"], ["y"], name="n")],
                         [vi("x", [1, 2, 3, 4])], [vi("y", None)], [B4], opset=7),
     "node \"n\" (Max): error: inputs 'r' (rank 4) and 'b' [4] differ in shape; at opset 7 they "
     "must not (broadcasting came with opset 8)"),
    ("legacy_neg_axis", one(helper.make_node("Sub", ["x", "b"], ["y"], name="n", broadcast=1, axis=-1),
                            6, inits=[B4]),
     "node \"n\" (Sub): error: attribute 'axis' = -1 is negative"),
    ("legacy_gemm", one(helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="n"), 6,
                        [vi("x", [2, 3])], [B4, numpy_helper.from_array(np.ones((3, 4), np.float32), "w")]),
     "node \"n\" (Gemm): error: input C 'b' has rank 1; at opset 6 it must be [M, N] unless "
     "attribute 'broadcast' = 1"),
    ("cast_name", one(helper.make_node("Cast", ["x"], ["y"], name="n", to="float32"), 5),
     "node \"n\" (Cast): error: attribute 'to' = 'float32' is not a TensorProto data type name "
     "(FLOAT, INT64, ...)"),
    ("cast_int_v1", one(helper.make_node("Cast", ["x"], ["y"], name="n", to=TensorProto.FLOAT), 5),
     "node \"n\" (Cast): error: attribute 'to' should be a string, it is an int"),
    ("bn_training", one(helper.make_node("BatchNormalization", ["x", "b", "b", "b", "b"], ["y"], name="n"),
                        6, [vi("x", [1, 4])], [B4]),
     "node \"n\" (BatchNormalization): error: training mode (attribute 'is_test' = 0, the default) "
     "is not supported: potc compiles inference, the model must set is_test = 1"),
    ("ceil_mode8", one(helper.make_node("MaxPool", ["x"], ["y"], name="n", kernel_shape=[2, 2],
                                        ceil_mode=1), 8),
     "node \"n\" (MaxPool): error: attribute 'ceil_mode' is not supported at opset 8"),
    ("since", one(helper.make_node("Where", ["c", "x", "x"], ["y"], name="n"), 8,
                  inits=[numpy_helper.from_array(np.array(True), "c")]),
     "node \"n\" (Where): error: op Where does not exist at opset 8 (it came with opset 9)"),
    ("tile1", one(helper.make_node("Tile", ["x", "x", "x"], ["y"], name="n"), 5),
     "node \"n\" (Tile): error: inputs 'tiles' and 'axis' must be constants holding one integer "
     "(tiles >= 0)"),
    ("reshape1", one(helper.make_node("Reshape", ["x"], ["y"], name="n"), 4),
     "node \"n\" (Reshape): error: attribute 'shape' is required"),
    ("pad1", one(helper.make_node("Pad", ["x"], ["y"], name="n", pads=[0, 0, 0, 0, 1, 1, 1, 1]), 1),
     "node \"n\" (Pad): error: attribute 'paddings' is required, with 2 values per dim"),
    ("concat4", one(helper.make_node("Concat", ["x", "x"], ["y"], name="n"), 4),
     "node \"n\" (Concat): error: attribute 'axis' is required"),
]

MODELS = [untyped_attr, raw_init, typed_init, init_as_input, constant_node, symbolic, batch_only,
          opset9_attrs, foreign_import, unordered, conv_nokernel, bad_attr, two_unsupported,
          legacy_broadcast, legacy_cast, legacy_opset1]


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
