"""Network speed: parameters, GFLOPs, latency and throughput of peers and registry models; training throughput
and the share of the machine's measured peak the default model reaches."""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.peers import PEERS
from colorizer import models

SMALL_CONFIG = {"fusion_vgg16": {}}


def build_registry_model(name: str, head: str | None = None) -> torch.nn.Module:
    config = {}
    fields = models.get_entry(name).config_class.__dataclass_fields__
    if "pretrained" in fields:
        config["pretrained"] = False
    if head:
        config["head"] = head
    return models.create(name, **config)


def gflops(model: torch.nn.Module, size: int) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 1, size, size))
    return counter.get_total_flops() / 1e9


def median_ms(model: torch.nn.Module, size: int, batch: int = 1, repeats: int = 5) -> float:
    x = torch.randn(batch, 1, size, size)
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def inference_table(repeats: int = 5) -> list[dict]:
    """One row per network: params, GFLOPs at 256, ms at 256 and 512 (batch 1), images/s at batch 8 (256)."""
    entries = [(name, cls(), "peer") for name, cls in PEERS.items()]
    entries += [(name, build_registry_model(name), "registry") for name in models.list_models()]
    rows = []
    for name, model, group in entries:
        model.eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        row = {"model": name, "group": group, "params_m": params, "gflops_256": gflops(model, 256),
               "ms_256": median_ms(model, 256, repeats=repeats), "ms_512": median_ms(model, 512, repeats=max(3, repeats // 2))}
        row["img_s_batch8"] = 8000 / median_ms(model, 256, batch=8, repeats=max(2, repeats // 2))
        rows.append(row)
    reference = next(r for r in rows if r["model"].startswith("eccv16"))
    for row in rows:
        row["speedup_vs_eccv16_256"] = reference["ms_256"] / row["ms_256"]
    return rows


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Peak-ish fp32 GFLOP/s of this machine: a large matrix product."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def training_images_per_second(model: torch.nn.Module, size: int = 128, batch: int = 16, steps: int = 4,
                               classify: bool = False) -> float:
    model.train()
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-4)
    x = torch.randn(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        out = model(x)
        loss = out.float().logsumexp(1).mean() if classify else out.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def training_table(default_model: str = "context_unet") -> tuple[list[dict], dict]:
    rows = []
    for name in models.list_models():
        head = "classify" if name == default_model else None
        model = build_registry_model(name, head)
        steps = 2 if name in ("fusion_vgg16", "vgg19_unet", "densenet121_unet") else 4
        rows.append({"model": name, "train_img_s_128": training_images_per_second(model, steps=steps,
                                                                                  classify=head == "classify")})
    model = build_registry_model(default_model, "classify")
    # training costs about 3x the forward FLOPs (forward + two backward products)
    forward = gflops(model.eval(), 128)
    achieved = 3 * forward * next(r["train_img_s_128"] for r in rows if r["model"] == default_model)
    peak = matmul_gflops()
    return rows, {"model": default_model, "forward_gflops_128": forward, "achieved_gflops_s": achieved,
                  "matmul_peak_gflops_s": peak, "share_of_peak": achieved / peak}


def gpu_table() -> list[dict] | None:
    """fp32, fp16 autocast and fp16 + channels_last on CUDA at batch 8; None without a CUDA device."""
    if not torch.cuda.is_available():
        return None
    rows = []
    for name in ("context_unet", "unet"):
        model = build_registry_model(name).cuda().eval()
        x = torch.randn(8, 1, 256, 256, device="cuda")
        for variant in ("fp32", "fp16 autocast", "fp16 autocast + channels_last"):
            m, inp = model, x
            if "channels_last" in variant:
                m, inp = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            context = torch.autocast("cuda", dtype=torch.float16) if "fp16" in variant else torch.no_grad()
            with torch.inference_mode(), context:
                for _ in range(3):
                    m(inp)
                torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(10):
                    m(inp)
                torch.cuda.synchronize()
            rows.append({"model": name, "variant": variant, "ms_256_batch8": (time.perf_counter() - start) * 100})
    return rows
