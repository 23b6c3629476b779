#!/usr/bin/env python3
"""Write the Fashion-MNIST test set as .npy files (numpy + gzip only; no torch).

    python3 samples/export_fmnist_npy.py OUTDIR [--data-dir DIR] [--split t10k|train]

Writes OUTDIR/<split>_images.npy  float32 [N,1,28,28], pixels / 255.0 (range [0,1])
       OUTDIR/<split>_labels.npy  int64   [N]
For the default split (t10k) N = 10000, files are test_images.npy / test_labels.npy.
Data dir defaults to $FMNIST_DIR or /usr/share/datasets/fashion-mnist.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import fmnist  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--data-dir", default=fmnist.DEFAULT_DIR)
    ap.add_argument("--split", default="t10k", choices=["t10k", "train"])
    args = ap.parse_args()
    x, y = fmnist.load(args.split, args.data_dir)
    os.makedirs(args.outdir, exist_ok=True)
    stem = "test" if args.split == "t10k" else "train"
    xi = os.path.join(args.outdir, stem + "_images.npy")
    yl = os.path.join(args.outdir, stem + "_labels.npy")
    np.save(xi, np.ascontiguousarray(x, dtype=np.float32))
    np.save(yl, np.ascontiguousarray(y, dtype=np.int64))
    print("wrote %s %s %s" % (xi, x.dtype, x.shape))
    print("wrote %s %s %s" % (yl, y.dtype, y.shape))


if __name__ == "__main__":
    main()
