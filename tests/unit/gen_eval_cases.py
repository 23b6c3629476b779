#!/usr/bin/python3
"""Write tests/unit/eval_cases.h: single-node ONNX conformance tests as C
arrays for test_eval.c, with attributes normalised the way the frontend
does (attribute-form axes become an i64 input, defaults filled in).

Run by hand when the case list changes (needs /usr/bin/python3 with onnx
and numpy):  /usr/bin/python3 tests/unit/gen_eval_cases.py > tests/unit/eval_cases.h

Besides the conformance data, a few small pool cases are computed with
the pool() reference that generated ONNX's own (too large) pool tests."""
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.backend.test.case.node import pool_op_common as poolref

DATA = "/usr/share/libonnx-testdata/data/node"
MAX_ELEMS = 2000

CASES = """
conv_with_strides_padding conv_with_strides_and_asymmetric_padding
conv_with_autopad_same basic_conv_with_padding
maxpool_2d_ceil maxpool_2d_dilations maxpool_with_argmax_2d_precomputed_pads
maxpool_2d_uint8 maxpool_1d_default maxpool_2d_precomputed_same_upper
averagepool_2d_ceil averagepool_2d_precomputed_pads_count_include_pad
averagepool_2d_precomputed_strides averagepool_2d_precomputed_same_upper
gemm_all_attributes gemm_transposeB gemm_default_vector_bias gemm_default_scalar_bias
matmul_4d matmul_2d matmul_3d
softmax_axis_1 softmax_default_axis logsoftmax_large_number logsoftmax_axis_0
batchnorm_epsilon
reflect_pad edge_pad constant_pad
slice_neg_steps slice_negative_axes slice_end_out_of_bounds slice_start_out_of_bounds
gather_negative_indices gather_2d_indices gather_1
reduce_mean_keepdims_random reduce_sum_empty_axes_input_noop_random
reduce_prod_do_not_keepdims_random reduce_max_default_axes_keepdims_random
reduce_min_negative_axes_keepdims_random reduce_sum_default_axes_keepdims_random
transpose_all_permutations_3 transpose_default expand_dim_changed
prelu_broadcast where_long_example pow_bcast_array pow_types_int64_float32
max_example mean_example min_int64 add_bcast div_uint8 sub_bcast mul_example
selu softplus hardswish elu leakyrelu hardsigmoid sigmoid softsign tanh
exp log sqrt reciprocal floor ceil relu neg abs
range_float_type_positive_delta range_int32_type_negative_delta
shape_start_1_end_negative_1 shape_clip_start size cast_DOUBLE_to_FLOAT
globalaveragepool globalmaxpool concat_3d_axis_negative_2 concat_1d_axis_0
clip_default_int8_min clip_splitbounds clip_default_inbounds
flatten_axis2 unsqueeze_two_axes squeeze_negative_axes reshape_negative_dim
equal_bcast less greater constantofshape_int_zeros constantofshape_float_ones
dropout_default_mask sum_example identity
""".split()

ONNX_TO_DT = {1: "DT_F32", 2: "DT_U8", 3: "DT_I8", 4: "DT_U16", 5: "DT_I16",
              6: "DT_I32", 7: "DT_I64", 9: "DT_BOOL", 11: "DT_F64", 12: "DT_U32"}
NP_TO_DT = {np.float32: "DT_F32", np.float64: "DT_F64", np.uint8: "DT_U8",
            np.int8: "DT_I8", np.int16: "DT_I16", np.uint16: "DT_U16",
            np.int32: "DT_I32", np.uint32: "DT_U32", np.int64: "DT_I64",
            np.bool_: "DT_BOOL"}
C_TYPE = {"DT_F32": "float", "DT_F64": "double", "DT_U8": "uint8_t",
          "DT_I8": "int8_t", "DT_I16": "int16_t", "DT_U16": "uint16_t",
          "DT_I32": "int32_t", "DT_U32": "uint32_t", "DT_I64": "int64_t",
          "DT_BOOL": "uint8_t"}
OPS = {"Conv": "CONV", "Gemm": "GEMM", "MatMul": "MATMUL", "MaxPool": "MAXPOOL",
       "AveragePool": "AVGPOOL", "GlobalAveragePool": "GAVGPOOL",
       "GlobalMaxPool": "GMAXPOOL", "BatchNormalization": "BATCHNORM",
       "Softmax": "SOFTMAX", "LogSoftmax": "LOGSOFTMAX", "ReduceMean": "REDUCEMEAN",
       "ReduceMax": "REDUCEMAX", "ReduceMin": "REDUCEMIN", "ReduceSum": "REDUCESUM",
       "ReduceProd": "REDUCEPROD", "PRelu": "PRELU", "LeakyRelu": "LEAKYRELU",
       "HardSigmoid": "HARDSIGMOID", "HardSwish": "HARDSWISH",
       "ConstantOfShape": "CONSTOFSHAPE"}


def c_num(v, dt):
    if dt in ("DT_F32", "DT_F64"):
        if np.isnan(v):
            return "NAN"
        if np.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        return "%.9g" % v if dt == "DT_F32" else "%.17g" % v
    if dt == "DT_I64":
        return "INT64_C(%d)" % int(v)
    return str(int(v))


class Emitter:
    def __init__(self):
        self.decls = []
        self.rows = []
        self.n = 0

    def array(self, name, arr):
        arr = np.ascontiguousarray(arr)
        dt = NP_TO_DT[arr.dtype.type]
        vals = [c_num(v, dt) for v in arr.reshape(-1)] or ["0"]
        lines = []
        for i in range(0, len(vals), 8):
            lines.append("\t" + ", ".join(vals[i:i + 8]) + ",")
        self.decls.append("static const %s %s[] = {\n%s\n};" % (C_TYPE[dt], name, "\n".join(lines)))
        dims = ", ".join(str(d) for d in arr.shape) or "0"
        return "{%s, %d, {%s}, %s}" % (dt, arr.ndim, dims, name)

    def case(self, name, op, attr_lines, inputs, outputs):
        i = self.n
        self.n += 1
        ins = [self.array("c%d_i%d" % (i, j), a) if a is not None else "{DT_UNDEF, 0, {0}, NULL}"
               for j, a in enumerate(inputs)]
        outs = [self.array("c%d_o%d" % (i, j), a) for j, a in enumerate(outputs)]
        body = "".join("\t%s\n" % l for l in attr_lines)
        self.decls.append("static void c%d_attr(Node *n)\n{\n\t(void)n;\n%s}" % (i, body))
        self.rows.append('\t{"%s", OP_%s, c%d_attr, %d, {%s}, %d, {%s}},' % (
            name, op, i, len(ins), ", ".join(ins), len(outs), ", ".join(outs)))


def window_attrs(A, x_shape, w_shape):
    nsp = len(x_shape) - 2
    k = list(A.get("kernel_shape", w_shape[2:] if w_shape is not None else []))
    s = list(A.get("strides", [1] * nsp))
    d = list(A.get("dilations", [1] * nsp))
    p = list(A.get("pads", [0] * 2 * nsp))
    ap = A.get("auto_pad", b"NOTSET").decode()
    ap = {"NOTSET": "PAD_EXPLICIT", "VALID": "PAD_VALID", "SAME_UPPER": "PAD_SAME_UPPER",
          "SAME_LOWER": "PAD_SAME_LOWER"}[ap]
    L = ["n->a.win.nsp = %d;" % nsp, "n->a.win.autopad = %s;" % ap]
    for i in range(nsp):
        L += ["n->a.win.k[%d] = %d;" % (i, k[i]), "n->a.win.s[%d] = %d;" % (i, s[i]),
              "n->a.win.d[%d] = %d;" % (i, d[i])]
    L += ["n->a.win.pad[%d] = %d;" % (i, v) for i, v in enumerate(p)]
    L.append("n->a.win.group = %d;" % A.get("group", 1))
    L.append("n->a.win.ceil = %d;" % A.get("ceil_mode", 0))
    L.append("n->a.win.incl_pad = %d;" % A.get("count_include_pad", 0))
    return L


def normalise(node, opset, ins):
    """(IR op, attribute lines, inputs) for one ONNX node."""
    A = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    t = node.op_type
    op = OPS.get(t, t.upper())
    L = []
    if t in ("Conv", "MaxPool", "AveragePool"):
        L = window_attrs(A, ins[0].shape, ins[1].shape if t == "Conv" else None)
    elif t == "Gemm":
        L = ["n->a.gemm.alpha = %sf;" % repr(float(A.get("alpha", 1.0))),
             "n->a.gemm.beta = %sf;" % repr(float(A.get("beta", 1.0))),
             "n->a.gemm.ta = %d;" % A.get("transA", 0), "n->a.gemm.tb = %d;" % A.get("transB", 0)]
    elif t in ("Softmax", "LogSoftmax"):
        legacy = opset < 13
        L = ["n->a.axis.axis = %d;" % A.get("axis", 1 if legacy else -1),
             "n->a.axis.legacy = %d;" % legacy]
    elif t in ("Concat", "Gather", "Flatten"):
        L = ["n->a.axis.axis = %d;" % A.get("axis", 1 if t == "Flatten" else 0)]
    elif t.startswith("Reduce"):
        L = ["n->a.reduce.keepdims = %d;" % A.get("keepdims", 1),
             "n->a.reduce.noop_empty = %d;" % A.get("noop_with_empty_axes", 0)]
        if "axes" in A:
            ins = ins[:1] + [np.array(A["axes"], dtype=np.int64)]
    elif t == "Transpose":
        perm = A.get("perm", [])
        L = ["n->a.perm.n = %d;" % len(perm)] + \
            ["n->a.perm.p[%d] = %d;" % (i, v) for i, v in enumerate(perm)]
    elif t in ("LeakyRelu", "HardSigmoid", "Elu", "Selu"):
        dflt = {"LeakyRelu": (0.01, 0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, 0),
                "Selu": (1.67326319217681884765625, 1.05070102214813232421875)}[t]
        L = ["n->a.ab.alpha = %sf;" % repr(float(A.get("alpha", dflt[0]))),
             "n->a.ab.beta = %sf;" % repr(float(A.get("beta", A.get("gamma", dflt[1]))))]
    elif t == "BatchNormalization":
        L = ["n->a.bn.eps = %sf;" % repr(float(A.get("epsilon", 1e-5)))]
    elif t == "Cast":
        L = ["n->a.cast.to = %s;" % ONNX_TO_DT[A["to"]]]
    elif t == "ConstantOfShape":
        v = numpy_helper.to_array(A["value"]) if "value" in A else np.zeros(1, np.float32)
        L = ["n->a.cast.to = %s;" % NP_TO_DT[v.dtype.type],
             "n->a.cast.value = %r;" % float(v.reshape(-1)[0])]
    elif t == "Pad":
        L = ["n->a.pad.mode = PADMODE_%s;" % A.get("mode", b"constant").decode().upper()]
    elif t == "Reshape":
        L = ["n->a.reshape.allowzero = %d;" % A.get("allowzero", 0)]
    elif t == "Shape":
        L = ["n->a.shape.start = %d;" % A.get("start", 0)]
        if "end" in A:
            L += ["n->a.shape.end = %d;" % A["end"], "n->a.shape.has_end = 1;"]
    return op, L, ins


def conformance(em, name):
    d = os.path.join(DATA, "test_" + name)
    m = onnx.load(os.path.join(d, "model.onnx"))
    g = m.graph
    assert len(g.node) == 1, name
    node = g.node[0]
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]

    def load(kind, i):
        t = onnx.TensorProto()
        with open(os.path.join(d, "test_data_set_0", "%s_%d.pb" % (kind, i)), "rb") as f:
            t.ParseFromString(f.read())
        return numpy_helper.to_array(t)

    feeds = {vi.name: load("input", i) for i, vi in enumerate(g.input)}
    ins = [feeds[x] if x else None for x in node.input]
    outs = [load("output", i) for i in range(len(g.output))]
    op, L, ins = normalise(node, opset, ins)
    total = sum(a.size for a in ins if a is not None) + sum(a.size for a in outs)
    if total > MAX_ELEMS:
        sys.stderr.write("skipping %s: %d elements\n" % (name, total))
        return
    em.case("test_" + name, op, L, ins, outs)


def pool_case(em, name, kind, shape, k, s, pads, incl):
    """A small pool test computed as ONNX's pool tests are (pool_op_common)."""
    rng = np.random.RandomState(len(name))
    x = rng.randn(*shape).astype(np.float32)
    nsp = len(shape) - 2
    pb, pe = pads[:nsp], pads[nsp:]
    pad_shape = [pb[i] + pe[i] for i in range(nsp)]
    out_shape = poolref.get_output_shape("VALID", np.add(shape[2:], pad_shape), k, s)
    fill = 0 if incl else np.nan
    padded = np.pad(x, [(0, 0), (0, 0)] + list(zip(pb, pe)), mode="constant", constant_values=fill)
    y = poolref.pool(padded, shape, k, s, out_shape, pad_shape, kind, count_include_pad=incl)
    A = {"kernel_shape": k, "strides": s, "pads": pads, "count_include_pad": incl}
    em.case(name, "MAXPOOL" if kind == "MAX" else "AVGPOOL",
            window_attrs(A, shape, None), [x], [y])


def main():
    em = Emitter()
    for name in CASES:
        conformance(em, name)
    pool_case(em, "small_averagepool_2d_pads_count_include_pad", "AVG", (1, 2, 5, 5), (3, 3), (1, 1), (2, 2, 2, 2), 1)
    pool_case(em, "small_averagepool_2d_pads", "AVG", (1, 2, 5, 5), (3, 3), (1, 1), (2, 2, 2, 2), 0)
    pool_case(em, "small_averagepool_2d_asym_pads_incl", "AVG", (1, 1, 6, 5), (3, 2), (2, 2), (1, 0, 2, 1), 1)
    pool_case(em, "small_maxpool_2d_pads", "MAX", (1, 2, 5, 5), (3, 3), (1, 1), (2, 2, 2, 2), 0)
    pool_case(em, "small_averagepool_3d_pads_incl", "AVG", (1, 1, 4, 4, 3), (2, 3, 2), (2, 1, 1), (1, 1, 0, 1, 1, 1), 1)
    out = sys.stdout
    out.write("/* Generated by tests/unit/gen_eval_cases.py from ONNX's conformance data\n"
              " * (%s): do not edit. */\n\n" % DATA)
    out.write("\n\n".join(em.decls))
    out.write("\n\nstatic const EvCase eval_cases[] = {\n%s\n};\n" % "\n".join(em.rows))


if __name__ == "__main__":
    main()
