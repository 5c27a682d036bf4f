"""Model zoo (teacher and students), user student files and TorchScript teachers.

All models take float32 N x C x H x W in [0, 1] and return logits. They are plain
Conv/BN/ReLU/Add/pool/Linear graphs so torch.fx can trace them for QAT.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from typing import Callable, List, Sequence, Tuple

import torch
from torch import nn

from .errors import bad_spec


def _ch(base: int, width: float, divisor: int = 8) -> int:
    return max(divisor, int(round(base * width / divisor)) * divisor)


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 act: Callable[[], nn.Module] = lambda: nn.ReLU(inplace=False)) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class ResNetTeacher(nn.Module):
    """ResNet-style teacher for small images: 3 stages of basic blocks, global pool, linear."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0,
                 blocks: Sequence[int] = (2, 2, 2)) -> None:
        super().__init__()
        c = [_ch(32, width), _ch(64, width), _ch(128, width)]
        self.stem = conv_bn_relu(in_channels, c[0])
        layers: List[nn.Module] = []
        cin = c[0]
        for i, (cout, n) in enumerate(zip(c, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.flatten(self.pool(self.layers(self.stem(x))))))


class CompactCNN(nn.Module):
    """Plain VGG-style student: conv-BN-ReLU stacks with max pooling, ~70k params at width 1."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = _ch(16, width), _ch(32, width), _ch(64, width)
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, c1), nn.MaxPool2d(2),
            conv_bn_relu(c1, c2), conv_bn_relu(c2, c2), nn.MaxPool2d(2),
            conv_bn_relu(c2, c3), conv_bn_relu(c3, c3),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: List[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu(cin, hidden, 1, act=nn.ReLU6))
        layers += [conv_bn_relu(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Mini(nn.Module):
    """MobileNetV2-style student: depthwise-separable inverted residuals with linear bottlenecks."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> None:
        super().__init__()
        # (expand, out, repeats, stride)
        cfg: List[Tuple[int, int, int, int]] = [(1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 64, 1, 1)]
        cin = _ch(16, width)
        blocks: List[nn.Module] = [conv_bn_relu(in_channels, cin, 3, act=nn.ReLU6)]
        for t, c, n, s in cfg:
            cout = _ch(c, width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        last = _ch(128, width)
        blocks.append(conv_bn_relu(cin, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


def torchvision_model(arch: str, num_classes: int, in_channels: int, small_input: bool) -> nn.Module:
    import torchvision  # imported late: only the kernel bench and big teachers need it

    if arch == "resnet18":
        m = torchvision.models.resnet18(weights=None, num_classes=num_classes)
        if small_input or in_channels != 3:
            m.conv1 = nn.Conv2d(in_channels, 64, 3 if small_input else 7, 1 if small_input else 2,
                                1 if small_input else 3, bias=False)
        if small_input:
            m.maxpool = nn.Identity()  # type: ignore[assignment]
        return m
    if arch == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes)
        if small_input or in_channels != 3:
            first = m.features[0][0]  # type: ignore[index]
            m.features[0][0] = nn.Conv2d(in_channels, first.out_channels, 3, 1 if small_input else 2, 1, bias=False)  # type: ignore[index]
        return m
    raise bad_spec(f"unknown torchvision arch {arch!r}")


def build_teacher(arch: str, width: float, num_classes: int, in_channels: int, depth: int = 2) -> nn.Module:
    if arch == "resnet-teacher":
        return ResNetTeacher(num_classes, in_channels, width, blocks=(depth, depth, depth))
    if arch == "torchvision-resnet18":
        return torchvision_model("resnet18", num_classes, in_channels, small_input=True)
    if arch == "torchvision-mobilenet_v2":
        return torchvision_model("mobilenet_v2", num_classes, in_channels, small_input=True)
    raise bad_spec(f"teacher.arch: unknown {arch!r}")


def build_student(arch: str, width: float, num_classes: int, in_channels: int) -> nn.Module:
    if arch == "compact-cnn":
        return CompactCNN(num_classes, in_channels, width)
    if arch == "mobilenetv2-mini":
        return MobileNetV2Mini(num_classes, in_channels, width)
    raise bad_spec(f"student.arch: unknown {arch!r}")


def load_student_file(ref: str, width: float, num_classes: int, in_channels: int) -> nn.Module:
    """`path/to/file.py:ClassName`; the constructor gets whichever of num_classes, in_channels, width it takes."""
    path, _, cls_name = ref.rpartition(":")
    if not os.path.isfile(path):
        raise bad_spec(f"student.path: {path} not found")
    mod_name = "edgefleet_user_student_" + str(abs(hash(os.path.abspath(path))))
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise bad_spec(f"student.path: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # user code: report, do not crash
        raise bad_spec(f"student.path: importing {path} failed: {type(e).__name__}: {e}")
    cls = getattr(module, cls_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise bad_spec(f"student.path: {path} has no nn.Module class {cls_name}")
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels), ("width", width))
              if k in params}
    try:
        return cls(**kwargs)
    except Exception as e:
        raise bad_spec(f"student.path: constructing {cls_name}({kwargs}) failed: {type(e).__name__}: {e}")


def load_torchscript(path: str, device: torch.device) -> nn.Module:
    if not os.path.isfile(path):
        raise bad_spec(f"teacher.path: {path} not found")
    try:
        return torch.jit.load(path, map_location=device)
    except Exception as e:
        raise bad_spec(f"teacher.path: {path} is not a TorchScript file: {e}")


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
