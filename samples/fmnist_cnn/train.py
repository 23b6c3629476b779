#!/usr/bin/python3
"""Train, evaluate and export the small Fashion-MNIST CNN sample.

Run with Debian's python (torch 1.13 + onnx 1.12):
    /usr/bin/python3 samples/fmnist_cnn/train.py
Writes into this folder: model.onnx (opset 13), model_opset9.onnx,
ref_input.npy, ref_output.npy, accuracy.txt.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import trainlib  # noqa: E402

SEED = 1234
EPOCHS = 3
LR = 2e-3


class FmnistCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64), nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    trainlib.seed_everything(SEED)
    xtr, ytr, xte, yte = trainlib.load_data()
    model = FmnistCNN()
    acc = trainlib.train(model, xtr, ytr, xte, yte, EPOCHS, LR, seed=SEED)
    print("float_top1 %.4f" % acc)
    model.eval()
    trainlib.export(model, os.path.join(HERE, "model.onnx"), 13)
    trainlib.export(model, os.path.join(HERE, "model_opset9.onnx"), 9)
    trainlib.write_reference(model, xte, yte, HERE, acc)


if __name__ == "__main__":
    main()
