#!/usr/bin/python3
"""Writes the calibration-data fixtures of tests/unit/test_calib_data.c.

Run from anywhere: /usr/bin/python3 tests/calib/make_fixtures.py
The outputs are committed; the script is deterministic (fixed values, gzip
mtime 0), so re-running it changes nothing.  Every file is < 10 KB.

The model input the tests assume is [1, 1, 5, 5] (25 elements per sample)
unless a test says otherwise.  Sample k, element i holds k + i / 100 in the
float files (so a test can check order and layout), and (40 * k + i) in the
uint8 ones.
"""
import gzip
import os
import struct

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def samples(n, shape, dtype=np.float32):
    per = int(np.prod(shape))
    a = np.array([[k + i / 100 for i in range(per)] for k in range(n)], dtype=np.float64)
    return a.reshape((n,) + tuple(shape)).astype(dtype)


def samples_u8(n, shape):
    per = int(np.prod(shape))
    a = np.array([[(40 * k + i) % 256 for i in range(per)] for k in range(n)], dtype=np.uint8)
    return a.reshape((n,) + tuple(shape))


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    assert len(data) < 10 * 1024, name


def npy(name, a):
    path = os.path.join(HERE, name)
    np.save(path, a)
    assert os.path.getsize(path) < 10 * 1024


def idx(a):
    """IDX: 0, 0, type code, rank, big-endian uint32 dims, big-endian data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
            np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    be = a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a
    head = bytes([0, 0, code[be.dtype], a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
    return head + be.tobytes()


def varint(v):
    out = b""
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def key(field, wire):
    return varint(field << 3 | wire)


def unpacked_pb(a):
    """A TensorProto by hand: unpacked dims and float_data, plus unknown
    fields of every skippable wire type and a name, all to be skipped."""
    out = key(8, 2) + varint(3) + b"x_2"                  # name
    for d in a.shape:
        out += key(1, 0) + varint(d)                       # dims, one by one
    out += key(99, 1) + struct.pack("<q", -5)              # unknown fixed64
    out += key(2, 0) + varint(TensorProto.FLOAT)
    out += key(98, 5) + struct.pack("<I", 7)               # unknown fixed32
    for v in a.reshape(-1):
        out += key(4, 5) + struct.pack("<f", v)            # float_data, unpacked
    out += key(97, 0) + varint(-3)                         # unknown negative varint
    out += key(12, 2) + varint(2) + b"hi"                  # doc_string
    return out


def main():
    shape = (1, 5, 5)
    # .npy: leading dim = samples, or one sample without the batch dim
    npy("f32_n4.npy", samples(4, (1, 1, 5, 5)))           # [4,1,1,5,5]: 4 x the input shape
    npy("f64_n3.npy", samples(3, (5, 5), np.float64))     # [3,5,5]
    npy("u8_n2.npy", samples_u8(2, shape))                # uint8 [2,1,5,5]
    npy("i64_n2.npy", samples(2, (25,), np.int64))        # int64 [2,25]: taken raw
    npy("one_f32.npy", samples(1, (5, 5))[0])             # [5,5]: exactly one sample
    npy("zero_f32.npy", np.zeros((0, 5, 5), np.float32))  # no samples
    npy("wrong_shape.npy", samples(2, (7,)))              # fits no [1,1,5,5]
    npy("layout_f32.npy", samples(2, (5, 5, 3)))          # NHWC data for an NCHW model
    nan = samples(2, shape)
    nan[1, 0, 2, 3] = np.nan
    npy("nan_f32.npy", nan)
    good = open(os.path.join(HERE, "f32_n4.npy"), "rb").read()
    write("trunc.npy", good[:len(good) - 30])
    write("bad_magic.npy", b"this is not a numpy file\n")

    # a directory of TensorProto files, one sample each, natural name order:
    # input_0 (raw_data), input_1 (packed float_data), input_2 (unpacked, by
    # hand), input_10 (uint8 raw_data): 0, 1, 2, 10 is the order, not 0, 1, 10, 2
    s = samples(4, (1, 1, 5, 5))
    write("pbdir/input_0.pb", numpy_helper.from_array(s[0], "x").SerializeToString())
    t = helper.make_tensor("x", TensorProto.FLOAT, s[1].shape, s[1].reshape(-1).tolist(), raw=False)
    write("pbdir/input_1.pb", t.SerializeToString())
    write("pbdir/input_2.pb", unpacked_pb(s[2]))
    write("pbdir/input_10.pb", numpy_helper.from_array(samples_u8(1, (1, 5, 5)), "x").SerializeToString())
    write("pbdir/README.txt", b"not a .pb: ignored\n")
    # broken TensorProto files, each loaded alone
    raw = numpy_helper.from_array(s[0], "x").SerializeToString()
    write("pbbad/trunc.pb", raw[:len(raw) - 9])
    write("pbbad/wiretype.pb", key(1, 0) + varint(25) + key(5, 3) + b"\x00")
    write("pbbad/shape.pb", numpy_helper.from_array(samples(1, (24,))[0], "x").SerializeToString())
    bad_count = helper.make_tensor("x", TensorProto.FLOAT, (1, 24), list(range(24)), raw=False)
    bad_count.dims[1] = 25
    write("pbbad/mismatch.pb", bad_count.SerializeToString())   # dims 25, holds 24
    f16 = helper.make_tensor("x", TensorProto.FLOAT16, (1, 25), np.zeros(25, np.float16).view(np.uint16).tolist())
    write("pbbad/float16.pb", f16.SerializeToString())
    write("pbbad/nodata.pb", key(1, 0) + varint(25) + key(2, 0) + varint(TensorProto.FLOAT))
    # a directory whose second file is broken
    write("pbdir_bad/a.pb", raw)
    write("pbdir_bad/b.pb", raw[:20])

    # IDX (MNIST layout) and its gzip form
    imgs = samples_u8(3, (5, 5))
    write("imgs_u8.idx", idx(imgs))
    write("imgs_u8.idx.gz", gzip.compress(idx(imgs), mtime=0))
    write("f32_2x25.idx", idx(samples(2, (25,)).astype(">f4")))
    write("labels.idx", idx(np.array([3, 1, 4], np.uint8)))
    write("zero.idx", idx(np.zeros((0, 5, 5), np.uint8)))
    full = idx(imgs)
    write("trunc.idx", full[:len(full) - 1])
    write("trunc_head.idx", full[:9])
    write("trailing.idx", full + b"\x00\x00")
    write("badtype.idx", bytes([0, 0, 0x07, 3]) + full[4:])
    write("trunc.idx.gz", gzip.compress(full, mtime=0)[:30])


if __name__ == "__main__":
    main()
