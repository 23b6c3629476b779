#!/usr/bin/python3
"""accuracy.py LOGITS.npy LABELS.npy: top-1 accuracy of argmax over the last axis."""
import sys

import numpy as np

logits, labels = np.load(sys.argv[1]), np.load(sys.argv[2])
if logits.shape[0] != labels.shape[0]:
    sys.exit(f"accuracy.py: {logits.shape[0]} predictions for {labels.shape[0]} labels")
acc = float((logits.reshape(len(labels), -1).argmax(axis=1) == labels).mean())
print(f"top-1 accuracy: {acc * 100:.2f}% ({len(labels)} images)")
