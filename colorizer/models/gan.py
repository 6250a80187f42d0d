"""The cGAN parts of OrGANic (Nazeri et al., "Image Colorization with Generative Adversarial Networks").

``patchgan``: the pix2pix 70x70 PatchGAN discriminator. Input L and chroma, (B, 1 + 2, H, W); output one logit
per overlapping patch, (B, 1, ~H/8 - 2, ~W/8 - 2). Not a colorizer: it judges (L, chroma) pairs.
``nazeri_unet``: OrGANic's main generator, Nazeri et al.'s U-Net: eight 4x4 conv-BN-LeakyReLU(0.2) encoder layers
(C, 2C, 4C, 8C x5; the first at stride 1, the rest stride 2: H -> H/128), seven 4x4 stride-2 transpose convs with
BN, ReLU, dropout 0.5 on the first three, each concatenated with the encoder layer of its scale, and a 1x1 conv
with tanh. C = 64 in the paper. Output (B, 2, H, W).
``resnet_generator``: the small residual generator (pix2pix / Johnson et al.): 7x7 stem, two stride-2 convs,
residual blocks at H/4, two transpose convs, 7x7 output conv and tanh.
``organic_residual``: OrGANic's own generator (Table 1, "Custom Gen"): "a series of convolutional blocks with
residual connections (but no expanding or contracting)": 3x3 convs at full resolution throughout.
``organic_discriminator``: OrGANic's own discriminator ("Custom Disc"): "a typical sequential classifier ...
contracting convolutional layers, followed by batch normalizations and max pooling layers, with intermittent dropout
and a linear layer at the end": one logit per (L, chroma) image. The paper gives no widths or depths; those here are
ours (stated in the recipe).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig


@dataclass
class DiscriminatorConfig:
    """Fields every discriminator config has (they judge (L, chroma) pairs, so they are not ``ModelConfig``s)."""

    in_channels: int = 3  # L + two chroma channels

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PatchGANConfig(DiscriminatorConfig):
    base_channels: int = 64  # C64-C128-C256-C512 as pix2pix
    layers: int = 3  # stride-2 layers after the first; 3 gives the 70x70 receptive field


class PatchGAN(nn.Module):
    kind = "discriminator"

    def __init__(self, config: PatchGANConfig):
        super().__init__()
        self.config = config
        c = config.base_channels
        layers = [nn.Conv2d(config.in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = c
        for i in range(1, config.layers + 1):
            out = c * min(2 ** i, 8)
            stride = 2 if i < config.layers else 1
            layers += [nn.Conv2d(channels, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, lightness: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((lightness, chroma), dim=1))


@dataclass
class ResNetGeneratorConfig(ModelConfig):
    base_channels: int = 32  # stem width; 2x and 4x after the two downsamplings
    blocks: int = 6  # residual blocks at H/4


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(ColorModel):
    size_multiple = 4

    def __init__(self, config: ResNetGeneratorConfig):
        super().__init__(config)
        c = config.base_channels
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(1, c, 7, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(c * mult, c * mult * 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c * mult * 2),
                       nn.ReLU(inplace=True)]
        layers += [_ResidualBlock(4 * c) for _ in range(config.blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(c * mult, c * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c * mult // 2), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, self.out_channels, 7)]
        self.net = nn.Sequential(*layers)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.regression_output(self.net(lightness), "tanh")


@dataclass
class NazeriUNetConfig(ModelConfig):
    base_channels: int = 64  # C: the paper's 64 -> 512 (the shipped recipe uses 32 to fit the file limit)


class NazeriUNet(ColorModel):
    size_multiple = 128

    def __init__(self, config: NazeriUNetConfig):
        super().__init__(config)
        c = config.base_channels
        widths = (c, 2 * c, 4 * c, 8 * c, 8 * c, 8 * c, 8 * c, 8 * c)
        self.down = nn.ModuleList()
        in_channels = 1
        for i, out in enumerate(widths):
            if i == 0:  # 4x4 at stride 1 with TensorFlow's "same" padding: 1 before, 2 after
                layers = [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(in_channels, out, 4, 1)]
            else:
                layers = [nn.Conv2d(in_channels, out, 4, 2, 1), nn.BatchNorm2d(out)]
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            in_channels = out
        self.up = nn.ModuleList()
        for i, (out, skip) in enumerate(zip((8 * c, 8 * c, 8 * c, 4 * c, 2 * c, c, c), reversed(widths[:-1]))):
            layers = [nn.ConvTranspose2d(in_channels, out, 4, 2, 1), nn.BatchNorm2d(out)]
            if i < 3:
                layers.append(nn.Dropout(0.5))
            layers.append(nn.ReLU(inplace=True))
            self.up.append(nn.Sequential(*layers))
            in_channels = out + skip
        self.head = nn.Conv2d(in_channels, self.out_channels, 1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        skips, x = [], lightness
        for layer in self.down:
            x = layer(x)
            skips.append(x)  # C@H, 2C@H/2, ..., 8C@H/128
        for layer, skip in zip(self.up, reversed(skips[:-1])):
            x = torch.cat((layer(x), skip), dim=1)  # back up to (B, 2C, H, W)
        return self.regression_output(self.head(x), "tanh")


@dataclass
class OrganicResidualConfig(ModelConfig):
    channels: int = 32  # the paper gives no width
    blocks: int = 6  # residual blocks, each two 3x3 conv-BN(-ReLU) at full resolution


class OrganicResidual(ColorModel):
    size_multiple = 1  # no down- or upsampling: any size as it is

    def __init__(self, config: OrganicResidualConfig):
        super().__init__(config)
        c = config.channels
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_ResidualBlock(c) for _ in range(config.blocks)])
        self.head = nn.Conv2d(c, self.out_channels, 3, padding=1)

    def _forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.regression_output(self.head(torch.relu(self.blocks(self.stem(lightness)))), "tanh")


@dataclass
class OrganicDiscriminatorConfig(DiscriminatorConfig):
    base_channels: int = 32  # doubles per block
    blocks: int = 4  # conv-BN-LeakyReLU-maxpool blocks (H -> H/16)
    dropout: float = 0.3  # after every other block ("intermittent dropout")


class OrganicDiscriminator(nn.Module):
    kind = "discriminator"

    def __init__(self, config: OrganicDiscriminatorConfig):
        super().__init__()
        self.config = config
        layers, channels = [], config.in_channels
        for i in range(config.blocks):
            out = config.base_channels * 2 ** i
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True), nn.MaxPool2d(2)]
            if i % 2 == 1:
                layers.append(nn.Dropout(config.dropout))
            channels = out
        # the linear layer needs a fixed size: crops of any size are pooled to 4 x 4 first
        layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(channels * 16, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, lightness: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((lightness, chroma), dim=1))  # (B, 1): one logit per image
