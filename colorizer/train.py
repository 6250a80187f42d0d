"""Training loop: resumable exactly, checkpointing every epoch, logging a CSV and a plot.

An epoch is ``steps_per_epoch`` batches of random crops (by default one pass's worth of photos). After every
epoch the run validates on fixed centre crops, steps ReduceLROnPlateau, writes ``last.pt`` (model, optimiser,
scheduler, sampler and RNG states) and, when the validation loss improved, ``best.safetensors``. ``resume``
continues from ``last.pt`` and draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from colorizer import losses, models
from colorizer.color import normalize_chroma, normalize_l, rgb_to_space
from colorizer.data import (CropSampler, PhotoCache, build_cache, center_crops, is_semantic_holdout, list_images,
                            split_holdout)
from colorizer.weights import WeightsInfo, load_weights, save_weights

log = logging.getLogger(__name__)

SCHEDULES = ("plateau", "cosine", "none")


@dataclass
class TrainConfig:
    model: str = "context_unet"  # registry name
    model_config: dict = field(default_factory=dict)  # overrides of the model's config dataclass
    data: str = ""  # folder tree of training photos
    val: Optional[str] = None  # folder of validation photos; None holds out ``val_fraction`` of ``data``
    val_fraction: float = 0.03  # share of ``data`` held out for validation when ``val`` is None
    out: str = "runs/default"  # run directory (checkpoints, log, plot)
    loss: str = "classify"  # mse | huber | blur | classify | gan
    recipe: Optional[str] = None  # the source-paper recipe this run follows (colorizer.recipes), if any
    size: int = 128  # training crop side
    max_crop: int = 224  # crops of side size..max_crop are resized to ``size`` (scale augmentation)
    cache_side: int = 256  # photos are decoded once at this short side
    batch: int = 32
    epochs: int = 1000  # upper bound on epochs; ``minutes`` usually stops the run first
    minutes: Optional[float] = None  # wall-clock budget of this invocation
    steps_per_epoch: Optional[int] = None  # None: len(train photos) // batch
    budget_images: Optional[int] = None  # stop once this many crops were seen (over all invocations)
    hflip: bool = True  # random horizontal flips
    vflip: bool = False  # random vertical flips (Brown)
    lr: float = 1e-3  # Adam learning rate of new layers
    encoder_lr: float = 3e-6  # Adam learning rate of ImageNet-pretrained encoders (UCSD paper)
    betas: tuple = (0.9, 0.999)  # Adam betas (pix2pix / OrGANic: 0.5, 0.999)
    weight_decay: float = 0.0
    schedule: str = "plateau"  # "plateau" (ReduceLROnPlateau on the validation loss), "cosine" (to zero at the
    # budget, per step) or "none"
    plateau_patience: int = 3  # epochs without improvement before ReduceLROnPlateau lowers the rates
    plateau_factor: float = 0.5  # ... multiplying them by this (UCSD's recipe: 0.1, PyTorch's default)
    freeze_encoder: bool = False  # freeze an encoder whose ImageNet weights were loaded (a random one always trains)
    bn_crops: int = 256  # training crops over which BatchNorm statistics are re-estimated before validation
    keep_intervals: bool = False  # also keep every interval's weights (interval-NNN.safetensors): a GAN's
    # validation L1 does not say which of its checkpoints looks best, so they are chosen afterwards on metrics
    gan_l1_weight: float = 100.0  # lambda of the L1 term (OrGANic / pix2pix)
    gan_pretrain_epochs: int = 0  # epochs of plain L1 before the adversarial loss starts
    gan_real_label: float = 1.0  # target of real pairs for the discriminator (0.9: one-sided label smoothing)
    d_lr: float = 2e-4  # discriminator Adam learning rate (betas 0.5, 0.999 as pix2pix)
    discriminator: str = "patchgan"  # registry name of the GAN's discriminator
    rebalance_mix: float = 0.5  # lambda of Zhang et al.'s class rebalancing (smaller: rarer, bolder colours weigh more)
    init: Optional[str] = None  # fine-tune: start from this .safetensors file's weights (architecture and config too)
    semantic_holdout: bool = True  # never train on the ImageNet-sample photos the semantic test classifies
    seed: int = 0
    threads: int = 2  # torch intra-op threads
    channels_last: bool = True  # faster convolutions on CPU here
    cache_dir: Optional[str] = None  # where decoded photos are kept between runs (None: ``<out>/cache``)
    progress: bool = True  # show tqdm bars

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "cosine" and not self.budget_images:
            raise ValueError("the cosine schedule decays to zero at the budget: give budget_images")


def cosine_factor(images_seen: int, budget_images: int) -> float:
    """Learning-rate multiplier of a cosine decay from 1 at the start to 0 at the budget."""
    progress = min(max(images_seen / budget_images, 0.0), 1.0)
    return 0.5 * (1 + math.cos(math.pi * progress))


def color_space_of(model: nn.Module) -> str:
    return getattr(model.config, "color_space", "lab")


def portable_path(path: str | None) -> str | None:
    """A path as a shipped file may record it: relative paths as given, absolute ones (a machine's home, a run
    folder) cut to their last two parts, so no file carries where it was trained."""
    if not path or not os.path.isabs(path):
        return path
    return "/".join(Path(path).parts[-2:])


def split_batch(rgb: torch.Tensor, space: str) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB batch in [0, 1] -> (normalised L (B, 1, H, W), normalised chroma (B, 2, H, W))."""
    image = rgb_to_space(rgb, space)
    return normalize_l(image[:, :1]), normalize_chroma(image[:, 1:], space)


def _parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """New layers at ``lr``; an encoder whose ImageNet weights were actually loaded at ``encoder_lr`` (or frozen).

    A randomly initialised encoder (no local ImageNet file) learns at ``lr``: at 3e-6 it would barely move, and
    frozen it would be a fixed random projection."""
    encoder = getattr(model, "encoder", None)
    loaded = getattr(encoder, "imagenet_loaded", False)
    if config.freeze_encoder:
        if loaded:
            encoder.requires_grad_(False)
        else:
            log.warning("--freeze-encoder: no ImageNet weights were loaded, so the random encoder trains instead")
    if not loaded or config.freeze_encoder:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr}]
    encoder_ids = {id(p) for p in encoder.parameters()}
    return [
        {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": config.encoder_lr},
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids], "lr": config.lr},
    ]


def bin_histogram(cache: PhotoCache, model: nn.Module, pixels_per_photo: int = 4096, seed: int = 0) -> torch.Tensor:
    """Counts of the nearest ab bin over a random sample of the training photos' pixels."""
    generator = np.random.default_rng(seed)
    counts = torch.zeros(model.bins.count, dtype=torch.float64)
    for photo in cache.photos:
        flat = photo.reshape(-1, 3)
        chosen = flat[generator.integers(0, len(flat), size=min(pixels_per_photo, len(flat)))]
        rgb = torch.from_numpy(chosen).float().div(255).T.reshape(1, 3, 1, -1)
        _, chroma = split_batch(rgb, "lab")
        counts += torch.bincount(model.bins.nearest(chroma).flatten(), minlength=model.bins.count).double()
    return counts


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Re-estimates the running statistics of every BatchNorm that trains, over ``batches`` of normalised L.

    After few optimiser steps the running averages lag far behind the weights; evaluating with them is what sent
    two rows of the 6-minute comparison 10 dB below gray. A BatchNorm the model keeps in eval mode while training
    (a frozen ImageNet classifier) is left alone: ``torch.optim.swa_utils.update_bn`` resets every BatchNorm and then
    runs in train mode, which left such a classifier's statistics at mean 0, variance 1 (its class probabilities
    near uniform) in the Manipal file of the seventeenth session."""
    was_training = model.training
    model.train()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    momenta = {m: m.momentum for m in norms}
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over all batches
    for batch in batches:
        model(batch[0] if isinstance(batch, (list, tuple)) else batch)
    for norm, momentum in momenta.items():
        norm.momentum = momentum
    model.train(was_training)


def _initial_model(config: TrainConfig) -> tuple[nn.Module, dict]:
    """The model stored in ``config.init`` (fp32, trainable) and its training record; the architecture must match."""
    model, info = load_weights(config.init)
    if info.architecture != config.model:
        raise ValueError(f"{config.init} holds a {info.architecture!r}, not a {config.model!r}; pass --model "
                         f"{info.architecture}")
    if config.model_config:
        raise ValueError("--model-config cannot change a model loaded with --init")
    return model.float().train().requires_grad_(True), info.training


class Trainer:
    """Holds a run's state; ``fit()`` trains until the epoch or time budget is spent."""

    def __init__(self, config: TrainConfig, train_cache: PhotoCache | None = None,
                 val_cache: PhotoCache | None = None):
        if config.loss not in losses.LOSSES:
            raise KeyError(f"unknown loss {config.loss!r}; expected one of {losses.LOSSES}")
        self.config = config
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(config.seed)
        torch.set_num_threads(config.threads)
        self.init_training: dict = {}  # the starting file's training record, when fine-tuning
        if config.init:
            self.model, self.init_training = _initial_model(config)
        else:
            model_config = dict(config.model_config)
            model_config.setdefault("head", "classify" if config.loss == "classify" else "regress")
            self.model = models.create(config.model, **model_config)
        if (config.loss == "classify") != (self.model.config.head == "classify"):
            raise ValueError(f"loss {config.loss!r} does not fit a {self.model.config.head!r} head")
        if self.model.config.head == "rgb" and config.loss not in ("mse", "huber", "blur"):
            raise ValueError(f"an rgb head trains with a regression loss (mse, huber, blur), not {config.loss!r}")
        self.space = color_space_of(self.model)
        self.train_cache, self.val_cache = train_cache, val_cache
        if self.train_cache is None:
            self._load_data()
        self.sampler = CropSampler(self.train_cache, config.size, config.max_crop, seed=config.seed,
                                   hflip=config.hflip, vflip=config.vflip)
        self.val_rgb = center_crops(self.val_cache, config.size)
        self.steps_per_epoch = config.steps_per_epoch or max(1, len(self.train_cache) // config.batch)
        if config.loss == "classify":
            self.model.bins.set_rebalancing(bin_histogram(self.train_cache, self.model, seed=config.seed),
                                            mix=config.rebalance_mix)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(_parameter_groups(self.model, config), betas=config.betas,
                                          weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=config.plateau_factor,
                                                                    patience=config.plateau_patience)
        self.discriminator = self.d_optimizer = None
        if config.loss == "gan":
            if models.get_entry(config.discriminator).kind != "discriminator":
                raise ValueError(f"{config.discriminator!r} is not a discriminator")
            self.discriminator = models.create(config.discriminator)
            self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.d_lr, betas=(0.5, 0.999))
        # models with a per-photo global branch (Manipal's fusion) see the vector of the whole photo, computed once
        self.photo_context = self._photo_context() if hasattr(self.model, "global_features") else None
        self._bn_batches: list[torch.Tensor] | None = None
        self.epoch = 0
        self.best_val = math.inf
        self.elapsed = 0.0  # training seconds over all invocations
        self.history: list[dict] = []

    def _load_data(self) -> None:
        config = self.config
        cache_dir = config.cache_dir or str(self.out / "cache")
        paths = list_images(config.data)
        if config.val:
            train_paths, val_paths = paths, list_images(config.val)
        else:
            # the split every tool holds out (seed 0), whatever the training seed: another seed must not train on
            # the photos `evaluate`, `tune` and `compare --holdout` validate on
            train_paths, val_paths = split_holdout(paths, config.val_fraction)
        if config.semantic_holdout:
            train_paths = [p for p in train_paths if not is_semantic_holdout(p)]
        self.train_cache = build_cache(train_paths, config.cache_side, cache_dir, progress=config.progress)
        self.val_cache = build_cache(val_paths, config.size, cache_dir, skip_grayscale=True, progress=config.progress)
        (self.out / "split.json").write_text(json.dumps({"train": self.train_cache.paths,
                                                         "val": self.val_cache.paths}, indent=0))

    @torch.no_grad()
    def _photo_context(self, batch_size: int = 32) -> torch.Tensor:
        """(N, D) global vectors of every training photo (whole photo, not a crop)."""
        self.model.eval()
        side = getattr(self.model.config, "classifier_size", 224)
        vectors = []
        for start in tqdm(range(0, len(self.train_cache), batch_size), desc="global features per photo",
                          disable=not self.config.progress, unit="batch"):
            rgb = torch.cat([torch.nn.functional.interpolate(
                torch.from_numpy(photo).permute(2, 0, 1)[None].float().div(255), size=(side, side), mode="area")
                for photo in self.train_cache.photos[start: start + batch_size]])
            vectors.append(self.model.global_features(split_batch(rgb, self.space)[0]))
        return torch.cat(vectors)

    def bn_batches(self, batch_size: int = 32) -> list[torch.Tensor]:
        """Fixed training crops (normalised L) for BatchNorm re-estimation, from their own seeded sampler so the
        training stream (and an exact resume) is untouched."""
        if self._bn_batches is None:
            sampler = CropSampler(self.train_cache, self.config.size, self.config.max_crop, seed=self.config.seed + 1,
                                  hflip=self.config.hflip, vflip=self.config.vflip)
            count = max(1, self.config.bn_crops // batch_size)
            self._bn_batches = [self._prepare(sampler.sample(batch_size))[0] for _ in range(count)]
        return self._bn_batches

    @property
    def images_seen(self) -> int:
        return self.epoch * self.steps_per_epoch * self.config.batch

    @property
    def budget_spent(self) -> bool:
        return self.config.budget_images is not None and self.images_seen >= self.config.budget_images

    # --- one step -------------------------------------------------------------------------------------------
    def _prepare(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lightness, chroma = split_batch(rgb, self.space)
        if self.config.channels_last:
            lightness = lightness.contiguous(memory_format=torch.channels_last)
        return lightness, chroma

    def compute_loss(self, output: torch.Tensor, chroma: torch.Tensor, rgb: torch.Tensor | None = None) -> torch.Tensor:
        if self.model.config.head == "rgb":  # DeepColor as published: the loss is on the RGB image itself
            target = losses.chroma_target(rgb, output.shape[-2:])  # (an average pool, for any channel count)
            return losses.regression_loss(self.config.loss)(output, target)
        target = losses.chroma_target(chroma, output.shape[-2:])
        if self.config.loss == "classify":
            return losses.classify(output, target, self.model.bins)
        if self.config.loss == "gan":
            return torch.nn.functional.l1_loss(output, target)
        return losses.regression_loss(self.config.loss)(output, target)

    def train_step(self, rgb: torch.Tensor, photo_indices: torch.Tensor | None = None) -> float:
        self.model.train()
        lightness, chroma = self._prepare(rgb)
        if self.photo_context is not None and photo_indices is not None:
            output = self.model(lightness, global_vector=self.photo_context[photo_indices])
        else:
            output = self.model(lightness)
        if self.config.loss == "gan" and self.epoch >= self.config.gan_pretrain_epochs:
            return self._gan_step(lightness, chroma, output)
        loss = self.compute_loss(output, chroma, rgb)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def _gan_step(self, lightness: torch.Tensor, chroma: torch.Tensor, fake: torch.Tensor) -> float:
        target = losses.chroma_target(chroma, fake.shape[-2:])
        # the discriminator judges chroma at the resolution of L, as the inference merge will show it
        fake_full = fake if fake.shape[-2:] == chroma.shape[-2:] else torch.nn.functional.interpolate(
            fake, size=chroma.shape[-2:], mode="bilinear", align_corners=False)
        self.discriminator.train()
        d_loss = losses.gan_discriminator(self.discriminator(lightness, chroma),
                                          self.discriminator(lightness, fake_full.detach()),
                                          real_label=self.config.gan_real_label)
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        g_loss = losses.gan_generator(self.discriminator(lightness, fake_full), fake, target, self.config.gan_l1_weight)
        self.optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizer.step()
        return g_loss.item()

    @torch.no_grad()
    def validate(self, batch_size: int = 64) -> dict:
        """Loss (the training objective; L1 for gan) and chroma RMSE on the fixed validation crops, after
        re-estimating BatchNorm statistics on training crops."""
        if self.config.bn_crops:
            recalibrate_batchnorm(self.model, self.bn_batches())
        self.model.eval()
        total_loss, total_sq, count = 0.0, 0.0, 0
        for start in range(0, len(self.val_rgb), batch_size):
            rgb = self.val_rgb[start: start + batch_size]
            lightness, chroma = self._prepare(rgb)
            output = self.model(lightness)
            total_loss += self.compute_loss(output, chroma, rgb).item() * len(rgb)
            predicted = self.model.predict_chroma(lightness) if hasattr(self.model, "predict_chroma") else output
            target = losses.chroma_target(chroma, predicted.shape[-2:])
            total_sq += torch.mean((predicted.float() - target) ** 2).item() * len(rgb)
            count += len(rgb)
        return {"val_loss": total_loss / count, "val_chroma_rmse": math.sqrt(total_sq / count)}

    # --- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "epoch": self.epoch,
            "best_val": self.best_val,
            "elapsed": self.elapsed,
            "history": self.history,
        }
        if self.discriminator is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["d_optimizer"] = self.d_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        self.epoch, self.best_val, self.elapsed = state["epoch"], state["best_val"], state["elapsed"]
        self.history = list(state["history"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.d_optimizer.load_state_dict(state["d_optimizer"])

    def save_checkpoint(self) -> None:
        temporary = self.out / "last.pt.tmp"
        torch.save(self.state_dict(), temporary)
        temporary.replace(self.out / "last.pt")  # atomic: a kill mid-write never corrupts last.pt

    def resume(self) -> bool:
        path = self.out / "last.pt"
        if not path.exists():
            log.info("no checkpoint in %s; starting fresh", self.out)
            return False
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        log.info("resumed %s at epoch %d (%.1f min trained)", path, self.epoch, self.elapsed / 60)
        return True

    def effective_encoder_lr(self) -> float | None:
        """The rate the ImageNet encoder actually trained at: 0 frozen, None when no ImageNet weights loaded (then
        the encoder was random and trained at ``lr`` with the rest)."""
        loaded = getattr(getattr(self.model, "encoder", None), "imagenet_loaded", False)
        if not loaded:
            return None
        return 0.0 if self.config.freeze_encoder else self.config.encoder_lr

    def export(self, path: Path, metrics: dict, training: dict | None = None) -> None:
        """The model in the shipped format; ``training`` adds to its training record."""
        model_config = self.model.config.to_dict()
        info = WeightsInfo(
            architecture=self.config.model, config=model_config, working_size=256,
            training={"loss": self.config.loss, "recipe": self.config.recipe, "epochs": self.epoch,
                      "minutes": round(self.elapsed / 60, 1), "images_seen": self.images_seen,
                      "optimizer": {"betas": list(self.config.betas), "weight_decay": self.config.weight_decay,
                                    "schedule": self.config.schedule,
                                    **({"plateau_factor": self.config.plateau_factor,
                                        "plateau_patience": self.config.plateau_patience}
                                       if self.config.schedule == "plateau" else {}),
                                    "encoder_lr": self.effective_encoder_lr()},
                      "augment": {"hflip": self.config.hflip, "vflip": self.config.vflip,
                                  "max_crop": self.config.max_crop},
                      "bn_recalibrated_on": self.config.bn_crops,
                      **({"gan_l1_weight": self.config.gan_l1_weight, "gan_real_label": self.config.gan_real_label,
                          "discriminator": self.config.discriminator,
                          "gan_pretrain_epochs": self.config.gan_pretrain_epochs}
                         if self.config.loss == "gan" else {}),
                      "crop": self.config.size, "batch": self.config.batch, "data": portable_path(self.config.data),
                      "train_photos": len(self.train_cache), "lr": self.config.lr,
                      "semantic_holdout_excluded": self.config.semantic_holdout,
                      **({"imagenet_encoder_loaded": bool(self.model.encoder.imagenet_loaded)}
                         if hasattr(getattr(self.model, "encoder", None), "imagenet_loaded") else {}),
                      # a model whose ImageNet part is a classifier beside the network (Manipal's class vector)
                      **({"imagenet_classifier_loaded": bool(self.model.imagenet_loaded)}
                         if isinstance(getattr(self.model, "imagenet_loaded", None), bool) else {}),
                      **({"rebalance_mix": self.config.rebalance_mix} if self.config.loss == "classify" else {}),
                      **({"init": portable_path(self.config.init), "init_training": self.init_training}
                         if self.config.init else {}), **(training or {})},
            metrics=metrics,
        )
        save_weights(self.model, path, info)

    def _set_cosine_rate(self, images_seen: int) -> None:
        factor = cosine_factor(images_seen, self.config.budget_images)
        for group in self.optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])  # kept in the optimizer state, so a resume decays the same way
            group["lr"] = group["base_lr"] * factor

    # --- the loop -------------------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        config = self.config
        started = time.monotonic()
        budget = None if config.minutes is None else config.minutes * 60
        while self.epoch < config.epochs and not self.budget_spent:
            epoch_start = time.monotonic()
            running = 0.0
            bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}", disable=not config.progress,
                       unit="batch", leave=False)
            for step in bar:
                if config.schedule == "cosine":
                    self._set_cosine_rate(self.images_seen + step * config.batch)
                rgb, indices = self.sampler.sample(config.batch, with_indices=True)
                running += self.train_step(rgb, indices)
                images_per_second = (step + 1) * config.batch / (time.monotonic() - epoch_start)
                bar.set_postfix(loss=f"{running / (step + 1):.4f}", img_s=f"{images_per_second:.1f}")
            seconds = time.monotonic() - epoch_start
            self.elapsed += seconds
            self.epoch += 1
            metrics = self.validate()
            if config.schedule == "plateau":
                self.scheduler.step(metrics["val_loss"])
            row = {"epoch": self.epoch, "train_loss": running / self.steps_per_epoch, **metrics,
                   "lr": self.optimizer.param_groups[-1]["lr"], "images_per_s": self.steps_per_epoch * config.batch / seconds,
                   "minutes": self.elapsed / 60, "images_seen": self.images_seen}
            self.history.append(row)
            improved = metrics["val_loss"] < self.best_val
            rounded = {k: round(v, 5) for k, v in metrics.items()}
            if improved:
                self.best_val = metrics["val_loss"]
                self.export(self.out / "best.safetensors", rounded)
            self.save_checkpoint()
            # the latest weights too: the validation loss that picks "best" is noisy, so runs are compared on metrics
            self.export(self.out / "last.safetensors", rounded)
            if config.keep_intervals:
                self.export(self.out / f"interval-{self.epoch:03d}.safetensors", rounded)
            self._write_log()
            log.info("epoch %d  train %.4f  val %.4f%s  %.1f img/s  %.1f min", self.epoch, row["train_loss"],
                     metrics["val_loss"], " (best)" if improved else "", row["images_per_s"], self.elapsed / 60)
            if budget is not None and time.monotonic() - started + seconds > budget:
                break  # the next epoch would overrun the budget
        if self.budget_spent:
            (self.out / "done.json").write_text(json.dumps(
                {"images_seen": self.images_seen, "epochs": self.epoch, "minutes": round(self.elapsed / 60, 1)}))
        return self.history

    def _write_log(self) -> None:
        with open(self.out / "log.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)
        plot_history(self.history, self.out / "curves.png")


def plot_history(history: list[dict], path: Path) -> None:
    """Training and validation loss per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(epochs, [r["train_loss"] for r in history], label="train")
    axes[0].plot(epochs, [r["val_loss"] for r in history], label="validation")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    axes[1].plot(epochs, [r["val_chroma_rmse"] for r in history], color="tab:green")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation chroma RMSE")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def train(config: TrainConfig, resume: bool = False) -> Trainer:
    trainer = Trainer(config)
    if resume:
        trainer.resume()
    trainer.fit()
    return trainer
