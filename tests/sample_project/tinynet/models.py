"""A torchvision-style ResNet that takes `norm_layer=`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tinynet.layers import BatchNorm2d, FrozenBatchNorm2d

NormLayer = Callable[[int], nn.Module]


class BasicBlock(nn.Module):
    def __init__(self, planes: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = norm_layer(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(out)))


class SmallResNet(nn.Module):
    def __init__(self, num_classes: int = 10, norm_layer: NormLayer | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or BatchNorm2d
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = norm_layer(8)
        self.layer1 = nn.Sequential(BasicBlock(8, norm_layer), BasicBlock(8, norm_layer))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        return self.fc(self.layer1(x).mean(dim=(2, 3)))


def small_resnet() -> SmallResNet:
    """The trained-from-scratch model: tinynet's BatchNorm2d everywhere."""
    return SmallResNet()


def detector_backbone() -> SmallResNet:
    """A detection-style backbone: frozen statistics in the blocks, a trainable stem norm."""
    model = SmallResNet(norm_layer=FrozenBatchNorm2d)
    model.bn = BatchNorm2d(8, momentum=0.01)
    return model
