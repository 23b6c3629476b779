#!/usr/bin/python3
"""Train, evaluate and export the MobileNet-style Fashion-MNIST sample.

Run with Debian's python (torch 1.13 + onnx 1.12):
    /usr/bin/python3 samples/fmnist_mobilenet/train.py
Writes into this folder: model.onnx (opset 13), model_opset17.onnx,
ref_input.npy, ref_output.npy, accuracy.txt.

Architecture (input [1,1,28,28]):
  stem    Conv 1->16 3x3 s1 p1 + BN + ReLU6                      28x28x16
  ds1     dw 3x3 s2 (16) + BN + ReLU6, pw 16->32 + BN + Hardswish 14x14x32
  ds2     dw 3x3 s1 (32) + BN + ReLU6, pw 32->32 + BN + Hardswish, + skip
  ir3     inverted residual, expand 2: pw 32->64 + BN + Hardswish,
          dw 3x3 s1 (64) + BN + ReLU6, pw 64->32 + BN (linear), + skip
  ds4     dw 3x3 s2 (32) + BN + ReLU6, pw 32->64 + BN + Hardswish  7x7x64
  ds5     dw 3x3 s1 (64) + BN + ReLU6, pw 64->64 + BN + Hardswish, + skip
  head    AdaptiveAvgPool2d(1) (-> GlobalAveragePool), Flatten, Linear 64->10
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import trainlib  # noqa: E402

SEED = 4321
EPOCHS = 6
LR = 4e-3


def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class DSBlock(nn.Module):
    """Depthwise-separable block: dw3x3+BN+ReLU6, pw1x1+BN+Hardswish (+ skip if shapes match)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = conv_bn(cin, cin, 3, stride, groups=cin, act=nn.ReLU6)
        self.pw = conv_bn(cin, cout, 1, act=nn.Hardswish)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


class InvertedResidual(nn.Module):
    """MobileNetV2-style: expand pw+BN+Hardswish, dw+BN+ReLU6, project pw+BN, + skip."""

    def __init__(self, c, expand):
        super().__init__()
        h = c * expand
        self.expand = conv_bn(c, h, 1, act=nn.Hardswish)
        self.dw = conv_bn(h, h, 3, 1, groups=h, act=nn.ReLU6)
        self.project = conv_bn(h, c, 1)

    def forward(self, x):
        return x + self.project(self.dw(self.expand(x)))


class FmnistMobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3, 1, act=nn.ReLU6)
        self.blocks = nn.Sequential(
            DSBlock(16, 32, 2),
            DSBlock(32, 32, 1),
            InvertedResidual(32, 2),
            DSBlock(32, 64, 2),
            DSBlock(64, 64, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


def main():
    trainlib.seed_everything(SEED)
    xtr, ytr, xte, yte = trainlib.load_data()
    model = FmnistMobileNet()
    print("params", sum(p.numel() for p in model.parameters()))
    acc = trainlib.train(model, xtr, ytr, xte, yte, EPOCHS, LR, seed=SEED)
    print("float_top1 %.4f" % acc)
    model.eval()
    trainlib.export(model, os.path.join(HERE, "model.onnx"), 13)
    trainlib.export(model, os.path.join(HERE, "model_opset17.onnx"), 17)
    trainlib.write_reference(model, xte, yte, HERE, acc)


if __name__ == "__main__":
    main()
