#!/usr/bin/python3
"""Export a ResNet-18 (random weights, seeded) to ONNX with torch.

    /usr/bin/python3 samples/resnet18/export.py OUT.onnx [--opset 13] [--seed 0] [--fold-bn]

Input "input" float32 [1,3,224,224], output "logits" [1,1000], ~11.7M params,
~45 MB. Generated on demand for the compile-time benchmark; do NOT commit the
.onnx. Uses torchvision.models.resnet18 when available, otherwise the
hand-written (architecturally identical) model below. By default
BatchNormalization nodes are kept (the compiler folds them); --fold-bn lets
torch fuse Conv+BN at export time (what most published resnet18.onnx look like).

CI without torch: use make_resnet18.py (same graph, onnx + numpy only).
"""
import argparse
import collections
import os

import torch
import torch.nn as nn
import onnx


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        # Same evaluation order as torchvision (downsample after bn2).
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(y + idt)


class ResNet18(nn.Module):
    """Same module/parameter names as torchvision.models.resnet18."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [64, 128, 256, 512]
        cin = 64
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            setattr(self, "layer%d" % (i + 1),
                    nn.Sequential(BasicBlock(cin, c, stride), BasicBlock(c, c, 1)))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(seed):
    torch.manual_seed(seed)
    try:
        import torchvision
        model = torchvision.models.resnet18(weights=None)
        src = "torchvision"
    except ImportError:
        model = ResNet18()
        src = "hand-written"
    # Non-trivial BN statistics so BN folding is actually exercised.
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) * 0.5 + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean = torch.randn(n, generator=g) * 0.1
            m.running_var = torch.rand(n, generator=g) + 0.5
    return model.eval(), src


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fold-bn", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, src = build(args.seed)
    nparams = sum(p.numel() for p in model.parameters())
    mode = torch.onnx.TrainingMode.EVAL if args.fold_bn else torch.onnx.TrainingMode.PRESERVE
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), args.out, opset_version=args.opset,
                      input_names=["input"], output_names=["logits"],
                      do_constant_folding=args.fold_bn, training=mode)
    m = onnx.load(args.out)
    onnx.checker.check_model(m)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    print("%s: %s ResNet-18, %d params, %.1f MB, opset %d, ops %s"
          % (args.out, src, nparams, os.path.getsize(args.out) / 1e6, args.opset,
             dict(sorted(ops.items()))))


if __name__ == "__main__":
    main()
