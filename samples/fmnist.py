"""Tiny Fashion-MNIST IDX reader (numpy + gzip only, no torch).

Preprocessing used by every potc sample model: pixels are uint8 0..255,
converted to float32 and divided by 255.0 -> range [0, 1]. No mean/std
normalisation. C demo code must apply exactly the same transform.
"""
import gzip
import os

import numpy as np

DEFAULT_DIR = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")

CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0:
        raise ValueError("%s: bad IDX magic" % path)
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError("%s: only uint8 IDX supported (got 0x%02x)" % (path, dtype_code))
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    arr = np.frombuffer(data, dtype=np.uint8, offset=off)
    expected = int(np.prod(dims))
    if arr.size != expected:
        raise ValueError("%s: expected %d bytes of payload, got %d" % (path, expected, arr.size))
    return arr.reshape(dims)


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(directory, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(directory, stem + ".gz"))


def load_raw(split, directory=DEFAULT_DIR):
    """Return (images uint8 [N,28,28], labels uint8 [N]) for split 'train' or 't10k'/'test'."""
    prefix = {"train": "train", "t10k": "t10k", "test": "t10k"}[split]
    images = _read_idx(_find(directory, prefix + "-images-idx3-ubyte"))
    labels = _read_idx(_find(directory, prefix + "-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("image/label count mismatch")
    return images, labels


def preprocess(images_u8):
    """uint8 [N,28,28] -> float32 [N,1,28,28] in [0,1] (x / 255.0)."""
    x = images_u8.astype(np.float32) / np.float32(255.0)
    return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])


def load(split, directory=DEFAULT_DIR):
    """Return (float32 [N,1,28,28] in [0,1], int64 [N] labels)."""
    images, labels = load_raw(split, directory)
    return preprocess(images), labels.astype(np.int64)
