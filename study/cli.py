"""Command line: ``python -m study {build,list,report,simulate}``."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("study")


DB_HELP = "SQLAlchemy URL (default: STUDY_DB_URL or a local SQLite file)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m study", description="The real-vs-fake perception study.")
    parser.add_argument("--db", default=None, help=DB_HELP)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    # --db and -v work before or after the subcommand (as `python -m demo --db` does); SUPPRESS keeps a value
    # given before the subcommand when none is given after it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)

    build = sub.add_parser("build", parents=[common], help="make a study's stimuli from color photos and register them")
    build.add_argument("--images", default=None, help="folder of color photos (default: the shipped default set)")
    build.add_argument("--models", default=None,
                       help="comma-separated shipped model names and/or .safetensors files (default: all shipped)")
    build.add_argument("--name", required=True)
    build.add_argument("--size", type=int, default=320, help="stimulus side in pixels (shown at this size)")
    build.add_argument("--mode", choices=["single", "2afc"], default="single")
    build.add_argument("--presentation", choices=["together", "sequential"], default="together")
    build.add_argument("--display-ms", type=int, default=None, help="show each image this long (Zhang et al.: 1000)")
    build.add_argument("--practice-photos", type=int, default=1)
    build.add_argument("--sentinel-fraction", type=float, default=0.1)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--min-window", default=None, metavar="WxH",
                       help="smallest browser window allowed (default: what the stimuli need at full size)")
    build.add_argument("--allow-touch", action="store_true", help="let touch-only phones and tablets take part")
    build.add_argument("--models-per-participant", type=int, default=None,
                       help="each participant sees this many of the models (subsets balanced over participants)")
    build.add_argument("--completion-url", default=None,
                       help="send finished participants here, {code} replaced by their completion code (Prolific: "
                            "'https://app.prolific.com/submissions/complete?cc=YOURCODE')")
    build.add_argument("--real-chroma", choices=["band_limited", "original"], default="band_limited",
                       help="real stimuli's chroma: at the models' resolution (default; no JPEG chroma blocks a "
                            "participant could spot) or as in the photo")

    sub.add_parser("list", parents=[common], help="list the studies in the database")

    report = sub.add_parser("report", parents=[common], help="write CSV, JSON, Markdown, HTML and a chart")
    report.add_argument("--out", required=True)
    report.add_argument("--study", default=None, help="study name (default: the default study)")
    report.add_argument("--bootstrap", type=int, default=1000, help="resamples of the secondary cluster bootstrap")
    report.add_argument("--include-simulated", action="store_true",
                        help="count simulated participants (a dry run); by default they are reported apart")

    simulate = sub.add_parser("simulate", parents=[common],
                              help="simulated participants through the app's code; power analysis")
    simulate.add_argument("--participants", type=int, default=None,
                          help="how many to simulate (not needed with --power)")
    simulate.add_argument("--accept", required=True, help="e.g. balanced=0.45,vivid=0.55,real=0.85")
    simulate.add_argument("--study", default=None)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--workers", type=int, default=1, help="participants answering concurrently")
    simulate.add_argument("--power", default=None,
                          help="comma-separated participant counts: estimate power on copies of a SQLite database")
    simulate.add_argument("--repeats", type=int, default=20, help="simulated studies per count for --power")
    simulate.add_argument("--focus", default=None,
                          help="--power: the model compared with real photos and each other model (default: first)")
    simulate.add_argument("--participant-sd", type=float, default=0.5, help="sd of participants' log-odds shifts")
    simulate.add_argument("--photo-sd", type=float, default=0.6, help="sd of photos' log-odds shifts")
    return parser


def _run_build(args, factory) -> int:
    from colorizer import Colorizer
    from colorizer.weights import shipped_weights
    from study.stimuli import StudyDesign, build_study, condition_names, default_photos, folder_photos

    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else list(shipped_weights())
    if not names:
        raise ValueError("no models: ship weights in weights/ or pass --models")
    # shipped names, or .safetensors paths: two runs' last.safetensors stay two conditions
    colorizers = {condition: Colorizer(name) for condition, name in zip(condition_names(names), names)}
    photos = folder_photos(args.images) if args.images else default_photos()
    design = StudyDesign(name=args.name, mode=args.mode, presentation=args.presentation, display_ms=args.display_ms,
                         size=args.size, practice_photos=args.practice_photos,
                         sentinel_fraction=args.sentinel_fraction, seed=args.seed, real_chroma=args.real_chroma,
                         completion_url=args.completion_url, models_per_participant=args.models_per_participant,
                         min_window=parse_window(args.min_window), allow_touch=args.allow_touch)
    from tqdm import tqdm

    with factory.begin() as session, tqdm(total=len(photos), desc="building stimuli", unit="photo") as bar:
        def progress(fraction: float, _message: str) -> None:
            bar.n = round(fraction * len(photos))
            bar.refresh()

        study = build_study(session, design, photos, colorizers, {n: c.describe() for n, c in colorizers.items()},
                            progress=progress)
        print(f"built study {study.name!r}: {len(photos)} photos, conditions {['real', *colorizers]}, mode {study.mode}")
    return 0


def _run_list(args, factory) -> int:
    from sqlalchemy import func, select

    from study.schema import Participant, Study

    with factory() as session:
        for study in session.scalars(select(Study).order_by(Study.id)):
            count = session.scalar(select(func.count()).select_from(Participant).where(Participant.study_id == study.id))
            print(f"{study.name:30} {study.mode:7} {len(study.photos):3} photos  {count:4} participants"
                  f"{'  (default)' if study.is_default else ''}")
    return 0


def _run_report(args, engine) -> int:
    from study.report import write_report

    files = write_report(engine, args.out, args.study, args.bootstrap, args.include_simulated)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


def _has_a_study(factory) -> bool:
    from study.protocol import StudyError, find_study

    with factory() as session:
        try:
            find_study(session, None)
        except StudyError:
            return False
    return True


def _run_simulate(args, engine, factory) -> int:
    from study.defaults import ensure_default_study
    from study.simulate import Variation, parse_accept, power_analysis, simulate

    accept = parse_accept(args.accept)
    variation = Variation(args.participant_sd, args.photo_sd, args.seed)
    if args.study is None and not _has_a_study(factory):  # a fresh database: build the default study first
        from colorizer import Colorizer
        from colorizer.weights import read_info, shipped_weights

        from study.defaults import default_models

        shipped = {name: path for name, path in shipped_weights().items() if name in default_models(shipped_weights())}
        ensure_default_study(factory, {name: Colorizer(path) for name, path in shipped.items()},
                             {name: read_info(path).description for name, path in shipped.items()}, progress=True)
    if args.power:
        if engine.url.get_backend_name() != "sqlite" or not engine.url.database:
            raise ValueError("--power copies a SQLite database file; pass --db sqlite:///FILE")
        counts = [int(c) for c in args.power.split(",")]
        table = power_analysis(engine.url.database, accept, counts, args.repeats, args.study, args.seed,
                               variation=variation, focus=args.focus)
        wide = table.pivot(index="test", columns="participants", values="power")
        wide.columns = [f"{count} participants" for count in wide.columns]
        print(f"power: share of {args.repeats} simulated studies in which the test is significant (alpha 0.05)")
        print(wide.loc[table["test"].unique()].to_string(float_format=lambda v: f"{v:.2f}"))
        return 0
    if not args.participants:
        raise ValueError("simulate needs --participants N (or --power COUNTS)")
    result = simulate(factory, args.participants, accept, args.study, args.seed, args.workers, variation=variation)
    print(f"simulated {result.participants} participants, {result.answers} answers stored (flagged as simulated: "
          "reports leave them out unless --include-simulated)")
    from study.report import analyse

    report = analyse(engine, args.study, bootstrap_repeats=0, include_simulated=True)
    columns = ["condition", "n", "rate", "ci_low", "ci_high"] + (["p_vs_half"] if report.study["mode"] == "2afc" else [])
    print(report.acceptance[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def parse_window(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--min-window takes WIDTHxHEIGHT in pixels, e.g. 1024x700; got {text!r}") from None
    return width, height


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from study.db import make_engine, make_session_factory

    try:
        engine = make_engine(args.db)
        factory = make_session_factory(engine)
        if args.command == "build":
            return _run_build(args, factory)
        if args.command == "list":
            return _run_list(args, factory)
        if args.command == "report":
            return _run_report(args, engine)
        return _run_simulate(args, engine, factory)
    except (ValueError, KeyError, FileNotFoundError) as error:
        log.debug("failed", exc_info=True)
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
