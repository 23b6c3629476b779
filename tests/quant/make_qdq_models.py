#!/usr/bin/python3
"""Two tiny pre-quantized CNNs for pass_qdq's end-to-end tests, and their
reference data.

  /usr/bin/python3 tests/quant/make_qdq_models.py [--potc build/potc] [--ort scripts/ort_run.js]

One network, x [1,1,8,8] in [0, 1] -> Conv 3x3 (4 channels, pad 1) -> Relu
-> MaxPool 2x2 -> flatten [1, 64] -> fully connected (10, no bias: QLinearMatMul
has none) -> y [1, 10],
written in ONNX's two quantized forms:
  qop_tiny.onnx  QOperator: QuantizeLinear, QLinearConv (the Relu is the
                 uint8 output with zero point 0: the clamp at 0), MaxPool and
                 Reshape on uint8, QLinearMatMul, DequantizeLinear;
  qdq_tiny.onnx  QDQ: float Conv / Relu / MaxPool / Reshape / Gemm between
                 QuantizeLinear-DequantizeLinear pairs, weights and biases as
                 DequantizeLinear of int8 / int32 initializers.
Both use the same integers and scales: weights int8 per output channel
(symmetric), biases int32 at x_scale * w_scale, activations uint8.

With --potc the script also writes tiny_input.npy (one image) and each
model's output from `potc run` (the float reference evaluator, which
implements the ONNX quantization operators), qop_tiny_output.npy and
qdq_tiny_output.npy, and checks them against onnxruntime when
scripts/ort_run.js can load it (POTC_ORT_DIR, default /opt/potc-ort).
Needs only numpy and onnx.
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as TP, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 13


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def params(seed=7):
    """Integer weights and every scale, from a float network and a few
    random inputs (ranges for the activation scales)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 4).astype(np.float32)
    w2 = rng.normal(0, 0.2, (64, 10)).astype(np.float32)
    p = {}
    p['sx'] = np.float32(1 / 255)
    p['sw1'] = (np.abs(w1).reshape(4, -1).max(1) / 127).astype(np.float32)
    p['w1'] = np.round(w1 / p['sw1'].reshape(4, 1, 1, 1)).astype(np.int8)
    p['b1'] = np.round(b1 / (np.float64(p['sx']) * p['sw1'])).astype(np.int32)
    p['sw2'] = (np.abs(w2).max(0) / 127).astype(np.float32)        # per column
    p['w2'] = np.round(w2 / p['sw2']).astype(np.int8)
    # activation ranges over random images, float network
    x = rng.random((64, 1, 8, 8)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    wf = p['w1'].astype(np.float32) * p['sw1'].reshape(4, 1, 1, 1)
    y1 = np.zeros((64, 4, 8, 8), np.float32)
    for i in range(3):
        for j in range(3):
            y1 += np.einsum('nhw,m->nmhw', xp[:, 0, i:i + 8, j:j + 8], wf[:, 0, i, j])
    y1 = np.maximum(y1 + (p['b1'] * np.float64(p['sx']) * p['sw1']).astype(np.float32).reshape(1, 4, 1, 1), 0)
    p['sy1'] = np.float32(y1.max() / 255)
    h = y1.reshape(64, 4, 4, 2, 4, 2).max(axis=(3, 5)).reshape(64, 64)
    y2 = h @ (p['w2'].astype(np.float32) * p['sw2'])
    p['sy2'] = np.float32(2 * np.abs(y2).max() / 255)
    return p


def qop_model(p):
    """QOperator form."""
    u8 = lambda v: np.array(v, np.uint8)  # noqa: E731
    inits = [
        init('sx', p['sx']), init('zx', u8(0)),
        init('w1', p['w1']), init('sw1', p['sw1']), init('zw1', np.zeros(4, np.int8)),
        init('sy1', p['sy1']), init('zy1', u8(0)), init('b1', p['b1']),
        init('shape', np.array([1, 64], np.int64)),
        init('w2', p['w2']), init('sw2', p['sw2'].reshape(1, 10)),
        init('zw2', np.zeros((1, 10), np.int8)),
        init('sy2', p['sy2']), init('zy2', u8(128)),
    ]
    nodes = [
        helper.make_node('QuantizeLinear', ['x', 'sx', 'zx'], ['xq'], name='quant_x'),
        helper.make_node('QLinearConv', ['xq', 'sx', 'zx', 'w1', 'sw1', 'zw1', 'sy1', 'zy1', 'b1'],
                         ['c1'], name='conv1', pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node('MaxPool', ['c1'], ['p1'], name='pool1', kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node('Reshape', ['p1', 'shape'], ['f1'], name='flat'),
        helper.make_node('QLinearMatMul', ['f1', 'sy1', 'zy1', 'w2', 'sw2', 'zw2', 'sy2', 'zy2'],
                         ['yq'], name='fc'),
        helper.make_node('DequantizeLinear', ['yq', 'sy2', 'zy2'], ['y'], name='dequant_y'),
    ]
    return graph('qop_tiny', nodes, inits)


def qdq_model(p):
    """QDQ form: the same integers around float ops."""
    u8 = lambda v: np.array(v, np.uint8)  # noqa: E731
    inits = [
        init('sx', p['sx']), init('zx', u8(0)),
        init('w1q', p['w1']), init('sw1', p['sw1']), init('zw1', np.zeros(4, np.int8)),
        init('b1q', p['b1']), init('sb1', (np.float64(p['sx']) * p['sw1']).astype(np.float32)),
        init('zb1', np.zeros(4, np.int32)),
        init('sy1', p['sy1']), init('zy1', u8(0)),
        init('shape', np.array([1, 64], np.int64)),
        init('w2q', p['w2'].T.copy()), init('sw2', p['sw2']), init('zw2', np.zeros(10, np.int8)),
        init('sy2', p['sy2']), init('zy2', u8(128)),
    ]
    Q = lambda x, s, z, y: helper.make_node('QuantizeLinear', [x, s, z], [y], name='q_' + y)  # noqa: E731
    DQ = lambda x, s, z, y, **a: helper.make_node('DequantizeLinear', [x, s, z], [y], name='dq_' + y, **a)  # noqa: E731
    nodes = [
        Q('x', 'sx', 'zx', 'xq'), DQ('xq', 'sx', 'zx', 'xd'),
        DQ('w1q', 'sw1', 'zw1', 'w1', axis=0), DQ('b1q', 'sb1', 'zb1', 'b1', axis=0),
        helper.make_node('Conv', ['xd', 'w1', 'b1'], ['c1f'], name='conv1', pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node('Relu', ['c1f'], ['r1'], name='relu1'),
        Q('r1', 'sy1', 'zy1', 'r1q'), DQ('r1q', 'sy1', 'zy1', 'r1d'),
        helper.make_node('MaxPool', ['r1d'], ['p1'], name='pool1', kernel_shape=[2, 2], strides=[2, 2]),
        Q('p1', 'sy1', 'zy1', 'p1q'), DQ('p1q', 'sy1', 'zy1', 'p1d'),
        helper.make_node('Reshape', ['p1d', 'shape'], ['f1'], name='flat'),
        Q('f1', 'sy1', 'zy1', 'f1q'), DQ('f1q', 'sy1', 'zy1', 'f1d'),
        DQ('w2q', 'sw2', 'zw2', 'w2', axis=0),
        helper.make_node('Gemm', ['f1d', 'w2'], ['g'], name='fc', transB=1),
        Q('g', 'sy2', 'zy2', 'gq'), DQ('gq', 'sy2', 'zy2', 'y'),
    ]
    return graph('qdq_tiny', nodes, inits)


def graph(name, nodes, inits):
    x = helper.make_tensor_value_info('x', TP.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info('y', TP.FLOAT, [1, 10])
    m = helper.make_model(helper.make_graph(nodes, name, [x], [y], inits),
                          opset_imports=[helper.make_opsetid('', OPSET)],
                          producer_name='potc tests/quant/make_qdq_models.py')
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode:
        sys.exit('%s: %s' % (' '.join(argv), r.stderr.strip()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--potc', help='potc binary: also write the reference data')
    ap.add_argument('--ort', default=os.path.join(HERE, '..', '..', 'scripts', 'ort_run.js'),
                    help='onnxruntime runner for the cross-check (default scripts/ort_run.js)')
    ap.add_argument('--out', default=HERE, help='output directory (default: this one)')
    args = ap.parse_args()
    p = params()
    models = {'qop_tiny': qop_model(p), 'qdq_tiny': qdq_model(p)}
    for name, m in models.items():
        onnx.save(m, os.path.join(args.out, name + '.onnx'))
    if not args.potc:
        return
    x = np.random.default_rng(3).random((1, 1, 8, 8)).astype(np.float32)
    xin = os.path.join(args.out, 'tiny_input.npy')
    np.save(xin, x)
    have_ort = subprocess.run(['node', args.ort, '--help'], capture_output=True).returncode != 127
    for name in models:
        mp = os.path.join(args.out, name + '.onnx')
        out = os.path.join(args.out, name + '_output.npy')
        run([args.potc, 'run', mp, xin, '-o', out])
        got = np.load(out)
        if not have_ort:
            print('%s: potc run %s (onnxruntime not available)' % (name, got.ravel()[:4]))
            continue
        ort = out + '.ort.npy'
        # no graph optimizations: onnxruntime would fuse DQ-Conv-Q into its own
        # QLinearConv, which rounds differently from the float Conv the model says
        run(['node', args.ort, mp, xin, '-o', ort, '--opt', 'disabled'])
        ref = np.load(ort)
        os.unlink(ort)
        if not np.array_equal(got, ref):
            sys.exit('%s: potc run and onnxruntime differ: max %g' % (name, np.abs(got - ref).max()))
        print('%s: potc run == onnxruntime, y[:4] = %s' % (name, got.ravel()[:4]))


if __name__ == '__main__':
    main()
