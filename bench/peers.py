"""Peer architectures, built from their papers' layer tables with random weights (speed does not depend on the
weight values), to measure side by side with this project's models.

- ECCV16: Zhang, Isola & Efros, "Colorful Image Colorization" (2016): 8 conv blocks, 313-bin classification at
  1/4 resolution, annealed-mean decoding (richzhang/colorization ``eccv16.py`` layer table).
- SIGGRAPH17: Zhang et al., "Real-Time User-Guided Image Colorization" (2017), automatic mode (empty hints):
  the same trunk with a U-Net style decoder and shortcuts, input L + ab hints + mask (``siggraph17.py``).
- DeOldify-style: a ResNet-34 encoder with a fastai DynamicUnet decoder (pixel-shuffle upsampling, self-attention
  at 1/8), widened by ``nf_factor=2`` as DeOldify's "stable" model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def _block(channels: list[int], dilation: int = 1, norm: bool = True, stride_last: bool = False) -> nn.Sequential:
    layers = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        stride = 2 if stride_last and i == len(channels) - 2 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride, dilation, dilation), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCV16(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            _block([1, 64, 64], stride_last=True), _block([64, 128, 128], stride_last=True),
            _block([128, 256, 256, 256], stride_last=True), _block([256, 512, 512, 512]),
            _block([512, 512, 512, 512], dilation=2), _block([512, 512, 512, 512], dilation=2),
            _block([512, 512, 512, 512]),
            nn.ConvTranspose2d(512, 256, 4, 2, 1), nn.ReLU(True), nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(True), nn.Conv2d(256, 313, 1))
        self.out = nn.Conv2d(313, 2, 1, bias=False)

    def forward(self, lightness):
        logits = self.model(lightness)  # (B, 313, H/4, W/4)
        ab = self.out(torch.softmax(logits / 0.38, dim=1))
        return F.interpolate(ab, scale_factor=4, mode="bilinear")


class SIGGRAPH17(nn.Module):
    def __init__(self):
        super().__init__()
        self.model1 = _block([4, 64, 64])
        self.model2 = _block([64, 128, 128])
        self.model3 = _block([128, 256, 256, 256])
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.up8, self.short3 = nn.ConvTranspose2d(512, 256, 4, 2, 1), nn.Conv2d(256, 256, 3, 1, 1)
        self.model8 = _block([256, 256, 256])
        self.up9, self.short2 = nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.Conv2d(128, 128, 3, 1, 1)
        self.model9 = _block([128, 128])
        self.up10, self.short1 = nn.ConvTranspose2d(128, 128, 4, 2, 1), nn.Conv2d(64, 128, 3, 1, 1)
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, 1, 1), nn.LeakyReLU(0.2))
        self.model_class = nn.Conv2d(256, 529, 1)
        self.out = nn.Conv2d(128, 2, 1)

    def forward(self, lightness):
        hints = torch.zeros(lightness.shape[0], 3, *lightness.shape[-2:], dtype=lightness.dtype)  # automatic mode
        c1 = self.model1(torch.cat((lightness, hints), dim=1))
        c2 = self.model2(F.max_pool2d(c1, 2))
        c3 = self.model3(F.max_pool2d(c2, 2))
        c4 = self.model4(F.max_pool2d(c3, 2))
        c7 = self.model7(self.model6(self.model5(c4)))
        c8 = self.model8(self.up8(c7) + self.short3(c3))
        self.model_class(c8)  # the classification branch runs in the paper's forward pass too
        c9 = self.model9(self.up9(c8) + self.short2(c2))
        c10 = self.model10(self.up10(c9) + self.short1(c1))
        return torch.tanh(self.out(c10))


class _SelfAttention(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.query, self.key = nn.Conv1d(channels, channels // 8, 1), nn.Conv1d(channels, channels // 8, 1)
        self.value, self.gamma = nn.Conv1d(channels, channels, 1), nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        flat = x.view(b, c, -1)
        attention = torch.softmax(torch.bmm(self.query(flat).transpose(1, 2), self.key(flat)), dim=1)
        return x + self.gamma * torch.bmm(self.value(flat), attention).view(b, c, h, w)


class _UnetBlock(nn.Module):
    def __init__(self, up_in: int, skip: int, out: int, attention: bool = False):
        super().__init__()
        self.shuffle = nn.Sequential(nn.Conv2d(up_in, up_in // 2 * 4, 1), nn.ReLU(True), nn.PixelShuffle(2))
        self.bn = nn.BatchNorm2d(skip)
        self.conv = nn.Sequential(nn.Conv2d(up_in // 2 + skip, out, 3, 1, 1), nn.ReLU(True),
                                  nn.Conv2d(out, out, 3, 1, 1), nn.ReLU(True))
        self.attention = _SelfAttention(out) if attention else nn.Identity()

    def forward(self, x, skip):
        x = self.shuffle(x)
        return self.attention(self.conv(torch.cat((x, self.bn(skip)), dim=1)))


class DeOldifyStyle(nn.Module):
    def __init__(self, nf_factor: int = 2):
        super().__init__()
        r = torchvision.models.resnet34(weights=None)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu)
        self.layers = nn.ModuleList([nn.Sequential(r.maxpool, r.layer1), r.layer2, r.layer3, r.layer4])
        self.middle = nn.Sequential(nn.Conv2d(512, 1024, 3, 1, 1), nn.ReLU(True), nn.Conv2d(1024, 512, 3, 1, 1),
                                    nn.ReLU(True))
        n = 256 * nf_factor
        self.blocks = nn.ModuleList([_UnetBlock(512, 256, n), _UnetBlock(n, 128, n, attention=True),
                                     _UnetBlock(n, 64, n // 2), _UnetBlock(n // 2, 64, n // 4)])
        self.final = nn.Sequential(nn.Conv2d(n // 4 * 4 // 4, 32 * 4, 1), nn.PixelShuffle(2),
                                   nn.Conv2d(32 + 3, 3, 1))

    def forward(self, lightness):
        rgb = lightness.expand(-1, 3, -1, -1)
        s0 = self.stem(rgb)  # (B, 64, H/2)
        skips, x = [s0], s0
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
        x = self.middle(x)
        for block, skip in zip(self.blocks, reversed(skips[:-1])):
            x = block(x, skip)
        return self.final[2](torch.cat((self.final[1](self.final[0](x)), rgb), dim=1))


PEERS = {"eccv16 (Zhang 2016)": ECCV16, "siggraph17 (Zhang 2017)": SIGGRAPH17, "deoldify-style (ResNet-34)": DeOldifyStyle}
