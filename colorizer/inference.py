"""Colorize photos of any size: the network runs at a working size, its chroma is upsampled and joined to the
photo's full-resolution lightness, so a 4000x3000 scan comes back 4000x3000 and as sharp as it went in.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from colorizer import fused_merge, models
from colorizer.color import denormalize_chroma, gray_to_lightness, gray_ab_to_srgb8, normalize_l, space_to_rgb
from colorizer.device import select_device
from colorizer.imageio import DEFAULT_MAX_PIXELS, GrayPhoto, ImageInput, load_photo
from colorizer.provenance import Provenance, SourceMetadata, save_image
from colorizer.weights import WEIGHTS_DIR, WeightsInfo, fingerprint, load_weights, model_name, shipped_weights

log = logging.getLogger(__name__)

DEFAULT_MODEL = "balanced"  # the shipped model used when none is named
MERGE_ROWS = 256  # rows per chunk of the full-resolution merge: bounds memory on 50-megapixel photos
GPU_MERGE_PIXELS = 1 << 24  # pixels per chunk of the merge on a GPU: ~1 GB of float intermediates, few launches


def resolve_model(name: str | os.PathLike | None, weights_dir: str | os.PathLike = WEIGHTS_DIR,
                  device: torch.device | str = "cpu") -> tuple[torch.nn.Module, WeightsInfo | None, str, Path | None]:
    """A weights file path, a shipped model name or a registry architecture -> (model, info, display name, the
    weights file or preset: None for an architecture with random weights)."""
    name = DEFAULT_MODEL if name is None else name
    shipped = shipped_weights(weights_dir)
    if str(name) in shipped:
        model, info = load_weights(shipped[str(name)], device)
        return model, info, str(name), Path(shipped[str(name)])
    if isinstance(name, os.PathLike) or str(name).endswith((".safetensors", ".json")):
        model, info = load_weights(name, device)
        return model, info, model_name(name), Path(name)
    if str(name) in models.list_models():
        log.warning("model %r has no trained weights here: it colorizes with random weights", name)
        return models.create(str(name)).to(device).eval(), None, str(name), None
    raise KeyError(f"unknown model {str(name)!r}; shipped models: {', '.join(shipped) or 'none'}; "
                   f"architectures: {', '.join(models.list_models())}")


def _linear_indices(out_length: int, scale: float, source_length: int, device) -> tuple:
    """Source indices and weights of linear interpolation (pixel centres aligned, like align_corners=False).

    ``scale`` converts an output coordinate to a source-cell coordinate.
    """
    positions = ((torch.arange(out_length, device=device, dtype=torch.float32) + 0.5) * scale - 0.5)
    positions = positions.clamp(0, source_length - 1)
    lower = positions.floor().long()
    upper = (lower + 1).clamp(max=source_length - 1)
    return lower, upper, positions - lower


# the largest short side an RGB head draws at (about 1.4 MP at 4:3): memory and time on CPU, not quality
RGB_MAX_SHORT_SIDE = 1024


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Network input shape: short side ``size``, long side at most 4 * ``size`` (panoramas)."""
    scale = min(size / min(height, width), 4 * size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def merge_full_resolution(gray: np.ndarray, chroma: torch.Tensor, network_shape: tuple[int, int], stride: int,
                          color_space: str, rows: int | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """Full-res gray (H, W), float in [0, 1] or uint8, + normalised chroma (2, hc, wc) of a network that saw
    ``network_shape`` at output stride ``stride`` -> uint8 RGB (H, W, 3). No full-size float copies: one fused pass
    (Numba) for Lab on the CPU, row chunks otherwise; on a CUDA ``device`` the chunks run there (the 8-bit gray goes
    up, the 8-bit RGB comes back)."""
    height, width = gray.shape
    if not torch.isfinite(chroma).all():
        raise ValueError("the model returned non-finite colours (NaN or inf): its weights file is damaged or was "
                         "saved with statistics its precision cannot hold")
    device = torch.device(device)
    on_cpu = device.type == "cpu"
    rows = max(1, rows or (MERGE_ROWS if on_cpu else GPU_MERGE_PIXELS // width))
    chroma = denormalize_chroma(chroma.float().to(device), color_space)
    source_h, source_w = chroma.shape[-2:]
    net_h, net_w = network_shape
    column_weights = _linear_indices(width, net_w / width / stride, source_w, device)
    row_weights = _linear_indices(height, net_h / height / stride, source_h, device)
    if on_cpu and color_space == "lab" and fused_merge.available():
        return fused_merge.lab_merge(gray, chroma, row_weights, column_weights)  # one compiled pass: 3-5x faster
    left, right, weight = column_weights
    widened = chroma[:, :, left] * (1 - weight) + chroma[:, :, right] * weight  # (2, hc, W)
    top, bottom, row_weight = row_weights
    out = np.empty((height, width, 3), dtype=np.uint8)
    gray_tensor = torch.from_numpy(np.ascontiguousarray(gray))

    for start in range(0, height, rows):  # threads over row chunks measured slower: the kernels use both cores
        stop = min(start + rows, height)
        w = row_weight[start:stop].view(1, -1, 1)
        ab = widened[:, top[start:stop]] * (1 - w) + widened[:, bottom[start:stop]] * w  # (2, rows, W)
        gray_rows = gray_tensor[start:stop].to(device)
        if gray_rows.dtype == torch.uint8:
            gray_rows = gray_rows.float() / 255  # per chunk: no full-size float copy of an 8-bit photo
        if color_space == "lab":
            rgb8 = gray_ab_to_srgb8(gray_rows, ab)
        else:
            lightness = gray_to_lightness(gray_rows)  # (rows, W)
            rgb = space_to_rgb(torch.cat((lightness[None], ab), dim=0), color_space)  # clipped into [0, 1]
            rgb8 = (rgb * 255 + 0.5).to(torch.uint8).permute(1, 2, 0)
        out[start:stop] = rgb8.cpu().numpy()
    return out


def upsample_rgb_full_resolution(rgb: torch.Tensor, size: tuple[int, int], network_shape: tuple[int, int], stride: int,
                                 rows: int = MERGE_ROWS) -> np.ndarray:
    """A network's own RGB image (3, h, w) in [0, 1] -> uint8 RGB (H, W, 3) by linear interpolation in row chunks:
    an RGB head's output is shown as predicted, its lightness included (DeepColor as published)."""
    height, width = size
    if not torch.isfinite(rgb).all():
        raise ValueError("the model returned non-finite colours (NaN or inf): its weights file is damaged")
    rgb = rgb.float().cpu().clamp(0, 1)
    net_h, net_w = network_shape
    left, right, weight = _linear_indices(width, net_w / width / stride, rgb.shape[-1], "cpu")
    widened = rgb[:, :, left] * (1 - weight) + rgb[:, :, right] * weight  # (3, h, W)
    top, bottom, row_weight = _linear_indices(height, net_h / height / stride, rgb.shape[-2], "cpu")
    out = np.empty((height, width, 3), dtype=np.uint8)
    for start in range(0, height, rows):
        stop = min(start + rows, height)
        w = row_weight[start:stop].view(1, -1, 1)
        chunk = widened[:, top[start:stop]] * (1 - w) + widened[:, bottom[start:stop]] * w
        out[start:stop] = (chunk * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return out


def parse_decoding(text: str) -> dict[str, float]:
    """``T``, ``T:BETA:GAIN`` or ``T:BETA:GAIN:S`` -> the decoding fields (``AbBins.decode``); left-out values are
    the neutral ones (no rebalancing undone, gain 1, no prior correction)."""
    values = text.split(":")
    message = f"{text!r}: a decoding is T, T:BETA:GAIN or T:BETA:GAIN:S, numbers"
    if len(values) > 4:
        raise ValueError(message)
    try:
        numbers = [float(value) for value in values + ["0", "1", "0"][len(values) - 1:]]
    except ValueError:
        raise ValueError(message) from None
    return dict(zip(("temperature", "undo_rebalancing", "chroma_gain", "prior_correction"), numbers))


class Colorizer:
    """Colorizes PIL images (or paths, bytes, arrays) with one model.

    >>> colorizer = Colorizer()                      # the default shipped model
    >>> colorizer = Colorizer("vivid", size=320)     # a shipped model by name, another working size
    >>> colorizer = Colorizer.from_file("run/best.safetensors")
    >>> color = colorizer.colorize(Image.open("gray.jpg"))
    """

    def __init__(self, model: str | os.PathLike | None = None, *, device: str | torch.device | None = None,
                 size: int | None = None, saturation: float = 1.0, temperature: float | None = None,
                 weights_dir: str | os.PathLike = WEIGHTS_DIR, max_pixels: int = DEFAULT_MAX_PIXELS,
                 flip_average: bool = False, label_outputs: bool = True, backend: str = "torch",
                 precision: str = "fp32"):
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.device = select_device("cpu" if backend == "onnx" else device)
        self.model, self.info, self.name, self.weights_path = resolve_model(model, weights_dir, self.device)
        if self.device.type == "cpu":  # NHWC: every shipped model 8-24% faster on this CPU (bench/RESULTS.md)
            self.model = self.model.to(memory_format=torch.channels_last)
        # hashed on load, not when first asked: a study must record the bytes that colorized, not a later file
        self.weights_sha256 = fingerprint(self.weights_path) if self.weights_path else None
        self.size = size or (self.info.working_size if self.info else 256)
        self.size_given = size is not None  # an RGB head otherwise draws at the photo's own size (rgb_size)
        self.saturation = saturation
        self.temperature = temperature
        self.max_pixels = max_pixels
        self.flip_average = flip_average  # average the prediction with the mirrored photo's (2x the network time)
        self.color_space = getattr(self.model.config, "color_space", "lab")
        self.label = self.name  # how tables and sheets name it (from_spec adds the decoding)
        self.label_outputs = label_outputs  # `save` marks files as machine-coloured (XMP DigitalSourceType)
        self.backend, self.precision = backend, precision
        self.half_on_gpu = True  # fp16 autocast on CUDA until a model overflows it (_run_network)
        if backend == "onnx":
            self._use_onnx(precision)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> "Colorizer":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no weights file at {str(path)!r}")
        return cls(path, **kwargs)

    @classmethod
    def from_spec(cls, spec: str, **kwargs) -> "Colorizer":
        """A model and its decoding in one string: a shipped name, an architecture or a .safetensors path,
        optionally with ``@T`` (annealed-mean temperature), ``@T:BETA:GAIN`` (also undo the class rebalancing by
        BETA and scale chroma by GAIN) or ``@T:BETA:GAIN:S`` (also add S times the model's fitted prior shift):
        ``balanced``, ``balanced@0.5:0.25:1.3``, ``run/last.safetensors@0.3``."""
        name, _, decoding = spec.partition("@")
        colorizer = cls(name, **kwargs)
        if decoding:
            config = colorizer.model.config
            if getattr(config, "head", None) != "classify":
                raise ValueError(f"{spec!r}: {colorizer.name} is a regression model; it has no decoding to set")
            values = parse_decoding(decoding)
            colorizer.temperature = values.pop("temperature")
            for field, value in values.items():
                setattr(config, field, value)
            colorizer.model.prior_shift()  # a correction without a fitted shift fails here, not at the first photo
        colorizer.label = Path(name).parent.name if name.endswith(".safetensors") else name
        colorizer.label += f"@{decoding}" if decoding else ""
        return colorizer

    def _run_network(self, compute):
        """``compute()`` under fp16 autocast on a GPU; again in fp32 if fp16 overflowed. Activations of a network
        without normalisation can pass fp16's 65504 (UCSD's VGG-16 on an H200: every colour NaN), so such a model
        runs in fp32 on the GPU from then on."""
        half = self.device.type == "cuda" and self.half_on_gpu
        with torch.autocast("cuda", dtype=torch.float16) if half else contextlib.nullcontext():
            output = compute()
        if half and not torch.isfinite(output).all():
            log.warning("%s overflowed fp16 on the GPU; it runs in fp32 from now on", self.name)
            self.half_on_gpu = False
            output = compute()
        return output

    def network_input(self, gray: np.ndarray, size: int | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Full-res gray (H, W), float in [0, 1] or uint8 -> (normalised L (1, 1, h, w) at the working size, (h, w))."""
        height, width = gray.shape
        net_h, net_w = working_shape(height, width, size or self.size)
        tensor = torch.from_numpy(np.ascontiguousarray(gray))[None, None].to(self.device)
        if tensor.dtype == torch.uint8:
            tensor = tensor.float().div_(255)  # a temporary float copy, freed before the merge
        small = F.interpolate(tensor, size=(net_h, net_w), mode="bilinear", antialias=True, align_corners=False)
        lightness = normalize_l(gray_to_lightness(small.clamp(0, 1)))  # (1, 1, h, w)
        return lightness.contiguous(memory_format=torch.channels_last), (net_h, net_w)

    @torch.inference_mode()
    def network_output(self, gray: np.ndarray,
                       flip_average: bool | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Full-res gray (H, W) -> (the network's raw output (1, C, h', w') in float32: bin logits, or chroma for
        regression; the network input shape). ``flip_average`` defaults to the colorizer's."""
        lightness, shape = self.network_input(gray)
        flip = self.flip_average if flip_average is None else flip_average
        return self.model.predict_output(lightness, flip).float(), shape

    @torch.inference_mode()
    def predict_chroma(self, gray: np.ndarray, size: int | None = None,
                       temperature: float | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Full-res gray (H, W) -> (normalised chroma (2, hc, wc), network input shape)."""
        lightness, (net_h, net_w) = self.network_input(gray, size)
        if hasattr(self.model, "predict_chroma"):
            chroma = self._run_network(lambda: self.model.predict_chroma(
                lightness, temperature if temperature is not None else self.temperature,
                flip_average=self.flip_average))
        else:
            chroma = self._run_network(lambda: self.model(lightness))
        return chroma[0].float(), (net_h, net_w)

    @torch.inference_mode()
    def predict_rgb(self, gray: np.ndarray, size: int | None = None,
                    saturation: float = 1.0) -> tuple[torch.Tensor, tuple[int, int]]:
        """An RGB head's own image (3, h, w) in [0, 1] at the working size, its chroma scaled by ``saturation``."""
        lightness, network_shape = self.network_input(gray, size)
        rgb = self._run_network(lambda: self.model.predict_output(lightness, self.flip_average))[0].float().clamp(0, 1)
        if saturation != 1.0:
            from colorizer.color import lab_to_rgb, rgb_to_lab

            lab = rgb_to_lab(rgb[None])
            rgb = lab_to_rgb(torch.cat((lab[:, :1], lab[:, 1:] * saturation), dim=1))[0]
        return rgb, network_shape

    @property
    def draws_own_lightness(self) -> bool:
        """An RGB head (DeepColor as published) redraws the lightness; the others keep the photo's own."""
        return getattr(getattr(self.model, "config", None), "head", None) == "rgb"

    def rgb_size(self, shape: tuple[int, int]) -> int:
        """The short side an RGB head draws a photo at: its own, up to RGB_MAX_SHORT_SIDE. An RGB head redraws the
        lightness too, so drawing at the working size and enlarging blurs every edge (DeepColor's RGB U-Net on `val`,
        ~1000 px photos: SSIM 0.61 and -1.85 dB against gray at 256, 0.75 and -1.02 dB at their own size); the ab
        heads keep the photo's own sharp lightness."""
        return self.size if self.size_given else min(min(shape), RGB_MAX_SHORT_SIDE)

    def colorize_photo(self, photo: GrayPhoto, size: int | None = None, saturation: float | None = None,
                       temperature: float | None = None) -> Image.Image:
        factor = self.saturation if saturation is None else saturation
        stride = getattr(self.model, "output_stride", 1)
        if self.draws_own_lightness:
            rgb, network_shape = self.predict_rgb(photo.levels, size or self.rgb_size(photo.levels.shape), factor)
            image = Image.fromarray(upsample_rgb_full_resolution(rgb, photo.levels.shape, network_shape, stride), "RGB")
            if photo.alpha is not None:
                image.putalpha(Image.fromarray(photo.alpha, "L"))
            return image
        chroma, network_shape = self.predict_chroma(photo.levels, size, temperature)
        if factor != 1.0:
            if self.color_space == "lab":
                chroma = chroma * factor
            else:  # LUV chroma is not centred at zero in normalised units: scale the real u, v instead
                from colorizer.color import normalize_chroma
                chroma = normalize_chroma(denormalize_chroma(chroma, "luv") * factor, "luv")
        rgb = merge_full_resolution(photo.levels, chroma, network_shape, stride, self.color_space,
                                    device=self.device if self.device.type == "cuda" else "cpu")
        image = Image.fromarray(rgb, "RGB")
        if photo.alpha is not None:
            image.putalpha(Image.fromarray(photo.alpha, "L"))
        return image

    def colorize(self, image: ImageInput, *, size: int | None = None, saturation: float | None = None,
                 temperature: float | None = None) -> Image.Image:
        """A color version of ``image`` at its full resolution (alpha kept, EXIF rotation applied)."""
        if size is not None and size < 16:
            raise ValueError(f"working size must be at least 16 pixels, got {size}")
        return self.colorize_photo(load_photo(image, self.max_pixels), size, saturation, temperature)

    def colorize_batch(self, images: list[ImageInput], **kwargs) -> list[Image.Image]:
        """``colorize`` for each image (photos differ in size, so each runs on its own)."""
        return [self.colorize(image, **kwargs) for image in images]

    def _use_onnx(self, precision: str) -> None:
        """Runs the network in ONNX Runtime: the graph is exported on first use (seconds) and cached by weights hash;
        an int8 graph must have been made with ``python -m colorizer export --precision int8``."""
        from colorizer.onnx_backend import OnnxRunner, export_onnx, onnx_file

        if getattr(self.model, "runtime", "absent") == "absent":
            raise ValueError(f"{self.name} cannot run on the ONNX backend")
        path = onnx_file(self.weights_sha256, self.name, precision)
        if not path.exists():
            if precision != "fp32":
                raise FileNotFoundError(f"no {precision} graph of {self.name} at {path}; make it with `python -m "
                                        f"colorizer export --model {self.name} --precision {precision} --calibration "
                                        "FOLDER`")
            log.info("exporting %s to ONNX (once): %s", self.name, path)
            export_onnx(self.model, path, metadata={"model": self.name, "weights_sha256": self.weights_sha256 or ""})
        self.model.use_runtime(OnnxRunner(path))

    def provenance(self, source_sha256: str | None = None) -> Provenance:
        """What ``save`` writes into each file: program version, model, weights hash (and the source's hash)."""
        from colorizer import __version__

        model = self.label + (f" via ONNX Runtime ({self.precision})" if self.backend == "onnx" else "")
        return Provenance(model, self.weights_sha256, __version__, source_sha256)

    def save(self, image: Image.Image, path: str | os.PathLike, *, format: str | None = None,
             source: SourceMetadata | None = None, source_sha256: str | None = None, quality: int = 95,
             compress_level: int = 6) -> Path:
        """Writes a colorized ``image`` as PNG, JPEG or TIFF (``format``, else from the name), labelled as
        machine-coloured unless the colorizer was made with ``label_outputs=False``; ``source`` carries the
        original's EXIF, ICC profile and resolution over."""
        provenance = self.provenance(source_sha256) if self.label_outputs else None
        return save_image(image, path, format=format, provenance=provenance, source=source, quality=quality,
                          compress_level=compress_level)

    def describe(self) -> str:
        return self.info.description if self.info and self.info.description else self.name
