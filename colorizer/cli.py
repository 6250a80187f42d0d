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
    # Only flags the user typed reach the config (SUPPRESS), so a --recipe keeps every value its paper sets
    # unless the command line overrides it.
    p = subparsers.add_parser("train", help="train a model on a folder of color photos",
                              argument_default=argparse.SUPPRESS)
    p.add_argument("--recipe", nargs="?", const="", help="a source paper's system and training recipe; "
                   "without a name, list them")
    p.add_argument("--model", help=f"registry name (python -m colorizer models; default {defaults.model})")
    p.add_argument("--model-config", help='JSON overrides of the model config, e.g. \'{"width": 24}\'')
    p.add_argument("--data", help="folder tree of training photos (required to train)")
    p.add_argument("--val", help="folder of validation photos (default: hold out --val-fraction)")
    p.add_argument("--val-fraction", type=float, help=f"default {defaults.val_fraction}")
    p.add_argument("--out", help="run directory (required to train)")
    p.add_argument("--loss", choices=["mse", "huber", "blur", "classify", "gan"], help=f"default {defaults.loss}")
    p.add_argument("--size", type=int, help=f"training crop side (default {defaults.size})")
    p.add_argument("--max-crop", type=int, help="largest crop before resizing to --size")
    p.add_argument("--cache-side", type=int, help=f"photos are decoded at this short side (default {defaults.cache_side})")
    p.add_argument("--batch", type=int, help=f"default {defaults.batch}")
    p.add_argument("--epochs", type=int, help="upper bound on epochs (checkpoint intervals)")
    p.add_argument("--minutes", type=float, help="wall-clock budget of this invocation")
    p.add_argument("--budget-images", type=int, help="stop once this many crops were seen (over all resumes)")
    p.add_argument("--steps-per-epoch", type=int, help="batches between validations and checkpoints")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default {defaults.lr})")
    p.add_argument("--encoder-lr", type=float, help="learning rate of an ImageNet-loaded encoder "
                   f"(default {defaults.encoder_lr}; pass the --lr value for one rate everywhere)")
    p.add_argument("--beta1", type=float, help="Adam beta1 (0.9; the GAN papers use 0.5)")
    p.add_argument("--weight-decay", type=float, help=f"default {defaults.weight_decay}")
    p.add_argument("--schedule", choices=["plateau", "cosine", "none"],
                   help="ReduceLROnPlateau on the validation loss, a cosine decay to zero at --budget-images, or none")
    p.add_argument("--plateau-patience", type=int, help=f"default {defaults.plateau_patience}")
    p.add_argument("--freeze-encoder", action="store_true", help="freeze an ImageNet-loaded encoder (Brown)")
    p.add_argument("--no-hflip", dest="hflip", action="store_false", help="no random horizontal flips")
    p.add_argument("--vflip", action="store_true", help="random vertical flips too")
    p.add_argument("--bn-crops", type=int, help="crops for BatchNorm re-estimation before validation (0: off)")
    p.add_argument("--keep-intervals", action="store_true",
                   help="also keep each checkpoint interval's weights as RUN_DIR/interval-NNN.safetensors")
    p.add_argument("--gan-l1-weight", type=float, help=f"lambda of the L1 term (default {defaults.gan_l1_weight})")
    p.add_argument("--gan-pretrain-epochs", type=int, help="epochs of L1 alone before the adversarial loss")
    p.add_argument("--gan-real-label", type=float, help="discriminator target for real pairs (0.9: label smoothing)")
    p.add_argument("--d-lr", type=float, help=f"discriminator learning rate (default {defaults.d_lr})")
    p.add_argument("--rebalance-mix", type=float,
                   help="classify: lambda of class rebalancing (0.5 as Zhang et al.; smaller favours rare colours)")
    p.add_argument("--init", help="fine-tune: start from this .safetensors file (not a resume)")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--cache-dir", help="where decoded photos are kept (default: RUN_DIR/cache)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars (for log files)")


def _train_overrides(args) -> dict:
    values = {k: v for k, v in vars(args).items() if k not in ("command", "verbose", "recipe", "resume", "beta1")}
    if "model_config" in values:
        values["model_config"] = json.loads(values["model_config"])
    if "beta1" in vars(args):
        values["betas"] = (args.beta1, 0.999)
    return values


def _run_train(args) -> int:
    from colorizer import recipes
    from colorizer.train import TrainConfig, train

    recipe = getattr(args, "recipe", None)
    if recipe == "":
        for name in recipes.list_recipes():
            print(recipes.describe(recipes.get_recipe(name)) + "\n")
        return 0
    missing = [flag for flag in ("data", "out") if flag not in vars(args)]
    if missing:
        raise ValueError(f"train needs {' and '.join('--' + m for m in missing)}")
    overrides = _train_overrides(args)
    if recipe:
        config = recipes.train_config(recipe, **overrides)
    else:
        config = TrainConfig(**overrides)
    trainer = train(config, resume=getattr(args, "resume", False))
    print(f"trained {trainer.epoch} epochs ({trainer.images_seen:,} crops, {trainer.elapsed / 60:.1f} min); "
          f"weights in {Path(config.out) / 'last.safetensors'}")
    return 0


def _add_colorize(subparsers) -> None:
    p = subparsers.add_parser(
        "colorize", help="colorize photos (files and/or folders), resumably",
        description="Colorizes files and folders into --out, keeping the folder structure. A manifest in --out "
                    "records every photo, so a rerun after a crash or Ctrl-C finishes the job without redoing "
                    "anything. Every output is labelled as machine-coloured (XMP DigitalSourceType).")
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--out", required=True, help="output folder: OUT/<relative path>.png at the input's size")
    _add_model_arguments(p)
    p.add_argument("--saturation", type=float, default=1.0, help="chroma scale (1 = as predicted)")
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (classification models)")
    p.add_argument("--format", choices=["png", "jpeg", "tiff"], default="png",
                   help="output format (default png); the source's EXIF, ICC profile and DPI are kept")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.add_argument("--retry-failed", action="store_true", help="try again the photos an earlier run could not read")
    p.add_argument("--shard", default="0/1", metavar="I/N",
                   help="do only shard I of N (0-based), e.g. one per machine or process; all may share --out")
    p.add_argument("--no-provenance", action="store_true",
                   help="do not label outputs as machine-coloured (the label is on by default)")
    p.add_argument("--io-threads", type=int, default=None, metavar="N",
                   help="local engine: threads that read and write photos beside the network (default: half the "
                        "CPUs, 1 to 4; 0: one photo at a time)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: Ray Data workers (pip install colorizer[ray])")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, default=None, help="Ray: model replicas (default: one per 2 CPUs or 1 GPU)")


def _add_export(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model's network to ONNX (fp32, or int8 calibrated on photos)")
    _add_model_arguments(p)
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", default=None, help="the .onnx file (default: the cache `--backend onnx` reads)")
    p.add_argument("--calibration", default=None, help="int8: a folder of photos like the ones to colorize")
    p.add_argument("--calibration-photos", type=int, default=64, help="int8: photos to calibrate on (default 64)")


def _run_export(args) -> int:
    from colorizer.data import training_photos
    from colorizer.onnx_backend import calibration_inputs, export_onnx, onnx_file, quantize_int8

    colorizer = _make_colorizer(args)
    metadata = {"model": colorizer.name, "weights_sha256": colorizer.weights_sha256 or ""}
    fp32 = onnx_file(colorizer.weights_sha256, colorizer.name, "fp32")
    if args.precision == "fp32":
        path = export_onnx(colorizer.model, args.out or fp32, metadata=metadata)
    else:
        if not args.calibration:
            print("error: --precision int8 needs --calibration FOLDER (photos to calibrate on)", file=sys.stderr)
            return 2
        if not fp32.exists():
            export_onnx(colorizer.model, fp32, metadata=metadata)
        photos = training_photos(args.calibration)
        inputs = calibration_inputs(colorizer, photos, args.calibration_photos)
        path = quantize_int8(fp32, args.out or onnx_file(colorizer.weights_sha256, colorizer.name, "int8"), inputs)
        print(f"calibrated on {len(inputs)} photos from {args.calibration}")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _add_model_arguments(p) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", default=None, help="shipped model or architecture (default: the default model)")
    group.add_argument("--weights", default=None, help="a .safetensors weights file")
    p.add_argument("--size", type=int, default=None, help="working size: short side the network sees (default 256)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="run the network in PyTorch or ONNX Runtime (pip install colorizer[onnx]; CPU)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                   help="ONNX backend: int8 needs `python -m colorizer export --precision int8` first")


def _make_colorizer(args, **kwargs):
    from colorizer import Colorizer

    if getattr(args, "backend", "torch") != "torch":
        kwargs.update(backend=args.backend, precision=args.precision)
    if args.weights:
        return Colorizer.from_file(args.weights, device=args.device, size=args.size, **kwargs)
    return Colorizer(args.model, device=args.device, size=args.size, **kwargs)


def _run_colorize(args) -> int:
    import warnings

    from colorizer.archive import Manifest, discover, job_settings, parse_shard, plan, run_local
    from colorizer.imageio import MultiFrameWarning

    warnings.filterwarnings("ignore", category=MultiFrameWarning)  # the summary lists them, once each
    shard = parse_shard(args.shard)
    if args.io_threads is not None and args.io_threads < 0:
        print("error: --io-threads takes 0 or more", file=sys.stderr)
        return 2
    missing = [item for item in args.inputs if not Path(item).exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    items, ignored = discover(args.inputs, args.format)
    colorizer = _make_colorizer(args, saturation=args.saturation, temperature=args.temperature,
                                label_outputs=not args.no_provenance)
    out = Path(args.out)
    manifest = Manifest(out)
    try:
        manifest.check_job(job_settings(colorizer, args.format))
        job = plan(items, manifest, out, retry_failed=args.retry_failed, shard=shard, ignored=ignored)
        if args.engine == "ray":
            from colorizer.distributed import run_ray

            summary = run_ray(colorizer, items, out, manifest, job, format=args.format, quality=args.quality,
                              address=args.address, workers=args.workers)
        else:
            summary = run_local(colorizer, items, out, manifest, job, format=args.format, quality=args.quality,
                                io_threads=args.io_threads)
    except KeyboardInterrupt:
        done = manifest.counts().get("done", 0)
        print(f"\nstopped: {done} photos are done and kept; run the same command again to finish the rest",
              file=sys.stderr)
        _print_remarks(*manifest.remarks(), manifest.path)  # what was recorded before the stop
        return 130
    finally:
        manifest.close()
    for line in summary.lines():
        print(line)
    _print_remarks(summary.failed + summary.failed_before, summary.notes, manifest.path)
    return 0 if summary.complete else 1


def _print_remarks(failures: list[tuple[str, str]], notes: list[tuple[str, str]], manifest_path: Path,
                   most: int = 20) -> None:
    for relpath, reason in failures[:most]:
        print(f"  failed: {relpath}: {reason}", file=sys.stderr)
    if len(failures) > most:
        print(f"  ... and {len(failures) - most} more (see {manifest_path})", file=sys.stderr)
    for relpath, note in notes[:most]:
        print(f"  note: {relpath}: {note}", file=sys.stderr)
    if len(notes) > most:
        print(f"  ... and {len(notes) - most} more notes", file=sys.stderr)


def _add_models(subparsers) -> None:
    subparsers.add_parser("models", help="list architectures and shipped weights")


def _run_models(args) -> int:
    from colorizer import models
    from colorizer.inference import DEFAULT_MODEL
    from colorizer.recipes import RECIPES
    from colorizer.weights import (PAPERS_GROUP, PRESET_SUFFIX, PROJECT_GROUP, WEIGHTS_DIR, model_group, read_info,
                                   shipped_weights)

    shipped = shipped_weights()
    infos = {name: read_info(path) for name, path in shipped.items()}
    for group in (PROJECT_GROUP, PAPERS_GROUP):
        print(f"{group} (shipped in weights/):")
        names = [name for name in shipped if model_group(infos[name]) == group]
        for name in names:
            info, path = infos[name], shipped[name]
            marker = " (default)" if name == DEFAULT_MODEL else ""
            size = f"{path.stat().st_size / 1e6:5.1f} MB"
            if path.name.endswith(PRESET_SUFFIX):  # a decoding over another file's weights: no bytes of its own
                size = f"{'preset':>8}"
            print(f"  {name:20} {info.architecture:18} {size}  {info.description}{marker}")
        if group == PAPERS_GROUP:
            missing = [r for r in RECIPES if r not in shipped]
            cards = WEIGHTS_DIR  # a recipe trained and measured outside the bounds keeps only its card there
            measured = [r for r in missing if (cards / f"{r}.md").exists()]
            untrained = [r for r in missing if r not in measured]
            if measured:
                print(f"  trained, not shipped (its card says why: weights/NAME.md): {', '.join(measured)}")
            if untrained:
                print(f"  not trained yet (`python -m colorizer train --recipe NAME`): {', '.join(untrained)}")
        elif not names:
            print("  none")
    trained = {info.architecture for info in infos.values()}
    print("architectures:")
    width = max(map(len, models.list_models(None)))
    for name in models.list_models(None):
        entry = models.get_entry(name)
        print(f"  {name:{width}} {'weights' if name in trained else 'no weights':10} {entry.kind:13} {entry.source}")
    return 0


def _add_samples(subparsers) -> None:
    p = subparsers.add_parser("samples", help="write sample photos to a folder (historical ones, and scikit-image's), to try the commands on")
    p.add_argument("--out", required=True, help="writes OUT/color/*.png and OUT/gray/*.png")


def _run_samples(args) -> int:
    import numpy as np
    from PIL import Image
    from skimage import data

    out = Path(args.out)
    color = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(),
             "rocket": data.rocket(), "motorcycle": data.stereo_motorcycle()[0], "hubble": data.hubble_deep_field()}
    gray = {"camera": data.camera(), "moon": data.moon(), "text": data.text(), "coins": data.coins()}
    for folder, images in (("color", color), ("gray", gray)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for name, array in images.items():
            Image.fromarray(np.asarray(array)[..., :3] if np.ndim(array) == 3 else np.asarray(array)).save(
                out / folder / f"{name}.png")
    import shutil

    from demo.examples import HISTORICAL_DIR, historical_examples

    (out / "historical").mkdir(parents=True, exist_ok=True)
    for path in historical_examples():
        shutil.copy(path, out / "historical" / path.name)
    # beside the folder, not in it: `colorize samples/historical/` should find photos only
    shutil.copy(HISTORICAL_DIR / "SOURCES.md", out / "historical-SOURCES.md")
    print(f"wrote {len(color)} colour photos to {out / 'color'}, {len(gray)} black-and-white ones to {out / 'gray'} "
          f"and {len(historical_examples())} historical photos to {out / 'historical'} (sources: "
          f"{out / 'historical-SOURCES.md'})")
    return 0


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="metrics on a folder of color photos against the gray baseline")
    p.add_argument("folders", nargs="+", metavar="folder", help="folder(s) of color photos")
    _add_holdout_argument(p)
    _add_model_arguments(p)
    p.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (classification models)")
    p.add_argument("--saturation", type=float, default=1.0)
    p.add_argument("--out", default=None, help="per-photo CSV")
    p.add_argument("--sheet", default=None, help="comparison sheet PNG (gray | prediction | truth | error)")
    p.add_argument("--sheet-photos", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--judge", nargs="?", const="auto", default=None, choices=["auto", "lite0", "lite1", "lite2"],
                   help="also the Fréchet distance to the real photos in an ImageNet classifier's features (auto: "
                        "Lite2, or Lite1 for a model on a Lite2 encoder: never the model's own encoder)")
    p.add_argument("--semantic", default=None, metavar="TRAIN",
                   help="also Zhang et al.'s semantic test: the judge's top-1 on gray, colorized and real versions of "
                        "the ImageNet-sample photos this training folder keeps out of training")


def _add_holdout_argument(p) -> None:
    p.add_argument("--holdout", default=None, metavar="TRAIN",
                   help="also the photos training holds out of this training folder (3%%, seed 0): with val, a "
                        "validation set spanning every training source")
    p.add_argument("--flip-average", action="store_true",
                   help="average each prediction with the mirrored photo's (twice the network time)")


def _validation_photos(args) -> list:
    from colorizer.data import named_held_out, named_photos

    photos = named_photos(*args.folders)
    return (named_held_out(args.holdout) if args.holdout else []) + photos


def _add_tune(subparsers) -> None:
    p = subparsers.add_parser("tune", help="choose a classification model's decoding on validation photos: the "
                                           "highest PSNR with colourfulness >= --min-cf of ground truth")
    p.add_argument("folders", nargs="+", metavar="folder", help="folder(s) of color photos")
    _add_holdout_argument(p)
    _add_model_arguments(p)
    p.add_argument("--min-cf", type=float, default=0.9, help="least colourfulness / ground truth (default 0.9)")
    p.add_argument("--temperatures", default=None, help="comma-separated (default: 0.2 ... 1.0)")
    p.add_argument("--undo-rebalancing", default="0", metavar="BETAS",
                   help="comma-separated: subtract beta * log(class weight) from the logits first (default 0)")
    p.add_argument("--gains", default="1", help="comma-separated chroma gains (default 1)")
    p.add_argument("--prior-corrections", default="0", metavar="SHARES",
                   help="comma-separated shares of the model's fitted prior shift to add to the logits (default 0; "
                        "others need a preset written by `calibrate`)")
    p.add_argument("--plot", default=None, help="PNG of PSNR against colourfulness per source and decoding")
    p.add_argument("--out", default=None, help="per-photo, per-decoding CSV")
    p.add_argument("--pooled", dest="balanced", action="store_false",
                   help="weigh every photo the same (default: every source the same, its first folder)")


def _add_calibrate(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="fit a classification model's per-bin prior shift on training photos "
                                                "(its mean predicted colours match theirs) and write a preset")
    p.add_argument("train", help="training folder: photos are drawn from it, never from the 3%% it holds out")
    _add_model_arguments(p)
    p.add_argument("--photos", type=int, default=400, help="photos to fit on (default 400)")
    p.add_argument("--pixels", type=int, default=1500, help="random pixels per photo (default 1500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decoding", default=None, metavar="T:BETA:GAIN:S",
                   help="the preset's decoding (default: the model's, with the full correction, S = 1)")
    p.add_argument("--description", default=None, help="the preset's one-line description")
    p.add_argument("--out", required=True, help="the preset to write (NAME.preset.json)")


def _run_calibrate(args) -> int:
    from colorizer.calibration import fit_prior_shift, write_preset
    from colorizer.data import training_photos
    from colorizer.inference import DEFAULT_MODEL, parse_decoding
    from colorizer.weights import PRESET_SUFFIX, shipped_weights, weights_file

    if not args.out.endswith(PRESET_SUFFIX):
        raise ValueError(f"--out must end with {PRESET_SUFFIX}, got {args.out!r}")
    colorizer = _make_colorizer(args)
    source = Path(args.weights) if args.weights else shipped_weights().get(args.model or DEFAULT_MODEL)
    if source is None:
        raise ValueError(f"{colorizer.name} has no trained weights to calibrate")
    shift, fitted = fit_prior_shift(colorizer, training_photos(args.train), args.photos, args.pixels, args.seed)
    config = colorizer.model.config
    decoding = (parse_decoding(args.decoding) if args.decoding else
                {"temperature": colorizer.temperature or config.temperature, "undo_rebalancing":
                 config.undo_rebalancing, "chroma_gain": config.chroma_gain, "prior_correction": 1.0})
    description = args.description or f"{colorizer.info.description} (prior-corrected)"
    path = write_preset(args.out, weights_file(source), shift, decoding, description, {**fitted, "folder": args.train})
    print(f"fitted on {fitted['photos']} photos ({fitted['pixels']} pixels): mean a*, b* predicted "
          f"{fitted['mean_ab_predicted']}, corrected {fitted['mean_ab_corrected']}, truth {fitted['mean_ab_truth']}")
    print(f"preset: {path} (decoding {decoding})")
    return 0


def _add_compare(subparsers) -> None:
    p = subparsers.add_parser("compare", help="does one model (and decoding) beat another on the same photos? "
                                              "Paired differences with intervals over photos")
    p.add_argument("folders", nargs="+", metavar="folder", help="folder(s) of color photos")
    _add_holdout_argument(p)
    p.add_argument("--baseline", default="balanced", help="model spec to beat (default: balanced)")
    p.add_argument("--challenger", required=True,
                   help="model spec: a shipped name, an architecture or a .safetensors path, optionally @T, "
                        "@T:BETA:GAIN or @T:BETA:GAIN:S for its decoding (e.g. balanced@0.45:0:1.8:0.6)")
    p.add_argument("--size", type=int, default=None, help="working size for both (default: each model's)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--out", default=None, help="per-photo, per-model CSV")


def _run_compare(args) -> int:
    import pandas as pd

    from colorizer import Colorizer
    from colorizer.compare import balanced_pair, compare_pair, format_comparison, per_photo_metrics, verdict

    kwargs = {"device": args.device, "size": args.size, "flip_average": args.flip_average}
    baseline, challenger = (Colorizer.from_spec(spec, **kwargs) for spec in (args.baseline, args.challenger))
    if baseline.label == challenger.label:
        if args.baseline == args.challenger:
            raise ValueError(f"baseline and challenger are the same: {baseline.label}")
        # two files in one folder are both named after it: say which is which
        baseline.label, challenger.label = f"{baseline.label} (baseline)", f"{challenger.label} (challenger)"
    metrics = per_photo_metrics([baseline, challenger], _validation_photos(args))
    if metrics.empty:
        raise ValueError("none of the photos has colour to compare against")
    pooled = compare_pair(metrics, baseline.label, challenger.label, args.confidence)
    sources = compare_pair(metrics, baseline.label, challenger.label, args.confidence, by_source=True)
    several = sources.index.get_level_values("source").nunique() > 1
    # several sources: the verdict reads the source-balanced table (each source weighs the same)
    overall = balanced_pair(metrics, baseline.label, challenger.label, args.confidence) if several else pooled
    print(f"baseline: {baseline.label}  challenger: {challenger.label}  "
          f"photos: {int(pooled['photos'].iloc[0])}  {args.confidence:.0%} intervals over photos")
    print(format_comparison(pd.concat([overall, pooled]) if several else pooled, baseline.label, challenger.label))
    if several:
        print("per source:")
        print(format_comparison(sources, baseline.label, challenger.label))
    print(verdict(overall, baseline.label, challenger.label, args.confidence))
    if args.out:
        metrics.to_csv(args.out, index=False, float_format="%.4f")
        print(f"per-photo metrics: {args.out}")
    return 0


def _floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def _run_tune(args) -> int:
    from colorizer.tuning import (DECODING, DEFAULT_TEMPERATURES, choose_decoding, decoding_sweep, frontier,
                                  plot_frontier, psnr_at_colourfulness)

    temperatures = _floats(args.temperatures) if args.temperatures else list(DEFAULT_TEMPERATURES)
    colorizer = _make_colorizer(args, flip_average=args.flip_average)
    sweep = decoding_sweep(colorizer, _validation_photos(args), temperatures, _floats(args.undo_rebalancing),
                           _floats(args.gains), _floats(args.prior_corrections))
    if sweep.empty:
        raise ValueError("none of the photos has colour to compare against")
    overall = frontier(sweep, balanced=args.balanced)
    choice = choose_decoding(overall, args.min_cf)
    reading = (f"source-balanced over {sweep['source'].nunique()} sources" if args.balanced else "pooled over photos")
    print(f"model: {colorizer.name}  working size: {colorizer.size}  photos: {sweep['photo'].nunique()}  ({reading})")
    formats = {"psnr_vs_gray": "{:+.3f}".format, "cf_ratio": "{:.4f}".format}  # 0.8998 must not read 0.900
    print(overall.reset_index().to_string(index=False, formatters=formats))
    print(f"per source at {choice.label()}:")
    by_source = frontier(sweep, by_source=True).xs(tuple(choice.decoding.values()), level=list(DECODING))
    print(by_source.to_string(formatters=formats))
    rule = f"highest PSNR with colourfulness >= {args.min_cf:g} of ground truth"
    if choice.meets_rule:
        print(f"chosen ({rule}): {choice.label()}: PSNR {choice.psnr_vs_gray:+.3f} dB against gray, "
              f"colourfulness {choice.cf_ratio:.4f}")
    else:
        print(f"no decoding reaches colourfulness {args.min_cf:g}; the most colourful: {choice.label()} "
              f"({choice.cf_ratio:.4f}, PSNR {choice.psnr_vs_gray:+.3f} dB against gray)")
    reachable = ", ".join(f"{level:g}: " + (f"{psnr:+.3f} dB" if psnr is not None else "not swept")
                          for level, psnr in psnr_at_colourfulness(overall).items())
    print(f"PSNR against gray at equal colourfulness (the decodings' Pareto frontier, interpolated): {reachable}")
    if args.out:
        sweep.to_csv(args.out, index=False, float_format="%.4f")
        print(f"per-photo metrics: {args.out}")
    if args.plot:
        plotted = plot_frontier(sweep, args.plot, choice, args.min_cf, title=colorizer.name, balanced=args.balanced)
        print(f"frontier plot: {plotted}")
    return 0


def _run_evaluate(args) -> int:
    import torch

    from colorizer.evaluate import comparison_sheet, evaluate_folder, format_summary, per_source

    torch.use_deterministic_algorithms(True)
    colorizer = _make_colorizer(args, saturation=args.saturation, temperature=args.temperature,
                                flip_average=args.flip_average)
    judge = None
    if args.judge or args.semantic:
        from colorizer.semantic import Judge, judge_for, model_encoder_variant

        own = model_encoder_variant(colorizer.model)
        variant = judge_for(own) if args.judge in (None, "auto") else args.judge
        if variant == own:
            raise ValueError(f"--judge {variant} is the model's own encoder: pick another variant")
        judge = Judge(variant, colorizer.device)
    evaluation, kept = evaluate_folder(colorizer, _validation_photos(args), limit=args.limit,
                                       keep_outputs=args.sheet_photos if args.sheet else 0,
                                       judge=judge if args.judge else None)
    print(f"model: {colorizer.name}  working size: {colorizer.size}  device: {colorizer.device}")
    print(format_summary(evaluation.summary, len(evaluation.per_photo)))
    if evaluation.frechet:
        fd = evaluation.frechet
        print(f"Fréchet distance to the real photos in EfficientNet-{fd['judge'].capitalize()} features (not the "
              f"model's own encoder; lower is closer): model {fd['model']:.2f}, gray {fd['gray']:.2f}")
    if args.semantic:
        from colorizer.data import semantic_holdout
        from colorizer.semantic import semantic_test

        result = semantic_test(colorizer.colorize_photo, semantic_holdout(args.semantic), judge)
        top1 = result.top1()
        print(f"semantic test, EfficientNet-{judge.variant.capitalize()} top-1 on {len(result.per_photo)} held-out "
              f"ImageNet photos: gray {top1['gray']:.1%}, colorized {top1['colorized']:.1%}, real {top1['real']:.1%}")
    sources = per_source(evaluation.per_photo)
    if len(sources) > 1:
        print("per source (first folder of the path):")
        print(sources.to_string(float_format=lambda v: f"{v:+.3f}" if abs(v) < 5 else f"{v:.2f}"))
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
    _add_export(subparsers)
    _add_models(subparsers)
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_tune(subparsers)
    _add_calibrate(subparsers)
    _add_compare(subparsers)
    _add_samples(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from colorizer import MissingExtraError

    args = build_parser().parse_args(argv)
    quiet = logging.INFO if args.command == "train" else logging.WARNING  # training narrates its epochs
    logging.basicConfig(level=logging.DEBUG if args.verbose else quiet,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"colorize": _run_colorize, "export": _run_export, "models": _run_models, "train": _run_train,
                "evaluate": _run_evaluate, "tune": _run_tune, "calibrate": _run_calibrate,
                "compare": _run_compare, "samples": _run_samples}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, KeyError, FileNotFoundError, TypeError, MissingExtraError) as error:
        log.debug("failed", exc_info=True)
        message = error.args[0] if isinstance(error, KeyError) and error.args else error  # no repr quotes
        print(f"error: {message}", file=sys.stderr)
        return 2
