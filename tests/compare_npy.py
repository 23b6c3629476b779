#!/usr/bin/python3
"""compare_npy.py GOT.npy EXPECTED.npy [--rtol R] [--atol A]

Passes when shapes match and |got - exp| <= atol + rtol * |exp| everywhere
(NaN matches NaN).  Prints one line with the worst error; exit 1 on mismatch."""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("got")
    ap.add_argument("exp")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    a = ap.parse_args()
    got, exp = np.load(a.got), np.load(a.exp)
    if got.shape != exp.shape:
        print(f"shape {got.shape} != expected {exp.shape}")
        return 1
    g, e = got.astype(np.float64), exp.astype(np.float64)
    err = np.abs(g - e)
    bad = ~((err <= a.atol + a.rtol * np.abs(e)) | (np.isnan(g) & np.isnan(e)))
    worst = float(np.nanmax(err)) if err.size else 0.0
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
        print(f"mismatch: {int(bad.sum())} of {err.size} elements, worst at {i}: "
              f"got {g[i]!r} want {e[i]!r}")
        return 1
    print(f"ok: max abs err {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
