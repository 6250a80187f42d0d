"""Command line: ``python -m colorizer {colorize,models,train,evaluate}``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("colorizer")


def _add_train(subparsers) -> None:
    from colorizer.train import TrainConfig

    defaults = TrainConfig()
    p = subparsers.add_parser("train", help="train a model on a folder of color photos")
    p.add_argument("--model", default=defaults.model, help="registry name (python -m colorizer models)")
    p.add_argument("--model-config", default="{}", help='JSON overrides of the model config, e.g. \'{"width": 24}\'')
    p.add_argument("--data", required=True, help="folder tree of training photos")
    p.add_argument("--val", default=None, help="folder of validation photos (default: hold out --val-fraction)")
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--loss", default=defaults.loss, choices=["mse", "huber", "blur", "classify", "gan"])
    p.add_argument("--size", type=int, default=defaults.size, help="training crop side")
    p.add_argument("--max-crop", type=int, default=defaults.max_crop, help="largest crop before resizing to --size")
    p.add_argument("--batch", type=int, default=defaults.batch)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget of this invocation")
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--encoder-lr", type=float, default=defaults.encoder_lr)
    p.add_argument("--gan-pretrain-epochs", type=int, default=defaults.gan_pretrain_epochs)
    p.add_argument("--rebalance-mix", type=float, default=defaults.rebalance_mix,
                   help="classify: lambda of class rebalancing (0.5 as Zhang et al.; smaller favours rare colours)")
    p.add_argument("--init", default=None, help="fine-tune: start from this .safetensors file (not a resume)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, default=defaults.threads)
    p.add_argument("--cache-dir", default=None, help="where decoded photos are kept (default: RUN_DIR/cache)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for log files)")


def _run_train(args) -> int:
    from colorizer.train import TrainConfig, train

    config = TrainConfig(
        model=args.model, model_config=json.loads(args.model_config), data=args.data, val=args.val,
        val_fraction=args.val_fraction, out=args.out, loss=args.loss, size=args.size, max_crop=args.max_crop,
        batch=args.batch, epochs=args.epochs, minutes=args.minutes, steps_per_epoch=args.steps_per_epoch,
        lr=args.lr, encoder_lr=args.encoder_lr, gan_pretrain_epochs=args.gan_pretrain_epochs,
        rebalance_mix=args.rebalance_mix, init=args.init, seed=args.seed,
        threads=args.threads, cache_dir=args.cache_dir, progress=not args.no_progress,
    )
    trainer = train(config, resume=args.resume)
    print(f"trained {trainer.epoch} epochs ({trainer.elapsed / 60:.1f} min); best validation loss "
          f"{trainer.best_val:.4f}; weights in {Path(args.out) / 'best.safetensors'}")
    return 0


def _add_colorize(subparsers) -> None:
    p = subparsers.add_parser("colorize", help="colorize photos (files and/or folders)")
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--out", required=True, help="output folder; writes OUT/<stem>.png at the input's size")
    _add_model_arguments(p)
    p.add_argument("--saturation", type=float, default=1.0, help="chroma scale (1 = as predicted)")
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (classification models)")


def _add_model_arguments(p) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", default=None, help="shipped model or architecture (default: the default model)")
    group.add_argument("--weights", default=None, help="a .safetensors weights file")
    p.add_argument("--size", type=int, default=None, help="working size: short side the network sees (default 256)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")


def _make_colorizer(args, **kwargs):
    from colorizer import Colorizer

    if args.weights:
        return Colorizer.from_file(args.weights, device=args.device, size=args.size, **kwargs)
    return Colorizer(args.model, device=args.device, size=args.size, **kwargs)


def _expand_inputs(inputs: list[str]) -> list[Path]:
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(p for p in sorted(path.rglob("*")) if p.is_file())
        else:
            paths.append(path)
    return paths


def _run_colorize(args) -> int:
    from tqdm import tqdm

    from colorizer import InvalidImageError

    colorizer = _make_colorizer(args, saturation=args.saturation, temperature=args.temperature)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = _expand_inputs(args.inputs)
    failed = 0
    for path in tqdm(paths, desc="colorizing", unit="photo", disable=len(paths) < 2):
        try:
            result = colorizer.colorize(path)
        except (InvalidImageError, FileNotFoundError, OSError) as error:
            failed += 1
            log.debug("failed on %s", path, exc_info=True)
            tqdm.write(f"error: {path}: {error}", file=sys.stderr)
            continue
        result.save(out / f"{path.stem}.png")
    written = len(paths) - failed
    print(f"wrote {written} of {len(paths)} photos to {out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _add_models(subparsers) -> None:
    subparsers.add_parser("models", help="list architectures and shipped weights")


def _run_models(args) -> int:
    from colorizer import models
    from colorizer.inference import DEFAULT_MODEL
    from colorizer.weights import read_info, shipped_weights

    shipped = shipped_weights()
    print("shipped models (weights/):")
    for name, path in shipped.items():
        info = read_info(path)
        marker = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name:18} {info.architecture:18} {path.stat().st_size / 1e6:5.1f} MB  {info.description}{marker}")
    if not shipped:
        print("  none")
    trained = {read_info(p).architecture for p in shipped.values()}
    print("architectures:")
    for name in models.list_models(None):
        entry = models.get_entry(name)
        print(f"  {name:18} {'weights' if name in trained else 'no weights':10} {entry.kind:13} {entry.source}")
    return 0


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="metrics on a folder of color photos against the gray baseline")
    p.add_argument("folder", help="folder of color photos")
    _add_model_arguments(p)
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (classification models)")
    p.add_argument("--saturation", type=float, default=1.0)
    p.add_argument("--out", default=None, help="per-photo CSV")
    p.add_argument("--sheet", default=None, help="comparison sheet PNG (gray | prediction | truth | error)")
    p.add_argument("--sheet-photos", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")


def _run_evaluate(args) -> int:
    import torch

    from colorizer.evaluate import comparison_sheet, evaluate_folder, format_summary

    torch.use_deterministic_algorithms(True)
    colorizer = _make_colorizer(args, saturation=args.saturation, temperature=args.temperature)
    evaluation, kept = evaluate_folder(colorizer, args.folder, limit=args.limit,
                                       keep_outputs=args.sheet_photos if args.sheet else 0)
    print(f"model: {colorizer.name}  working size: {colorizer.size}  device: {colorizer.device}")
    print(format_summary(evaluation.summary, len(evaluation.per_photo)))
    if args.out:
        evaluation.per_photo.to_csv(args.out, index=False, float_format="%.4f")
        print(f"per-photo metrics: {args.out}")
    if args.sheet:
        print(f"comparison sheet: {comparison_sheet(kept, args.sheet)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m colorizer", description="Automatic colorization of gray photos.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_colorize(subparsers)
    _add_models(subparsers)
    _add_train(subparsers)
    _add_evaluate(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = logging.INFO if args.command == "train" else logging.WARNING  # training narrates its epochs
    logging.basicConfig(level=logging.DEBUG if args.verbose else quiet,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"colorize": _run_colorize, "models": _run_models, "train": _run_train,
                "evaluate": _run_evaluate}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, KeyError, FileNotFoundError, TypeError) as error:
        log.debug("failed", exc_info=True)
        message = error.args[0] if isinstance(error, KeyError) and error.args else error  # no repr quotes
        print(f"error: {message}", file=sys.stderr)
        return 2
