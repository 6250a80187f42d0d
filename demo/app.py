"""The Gradio app: ``build_app(...)`` makes the Blocks, ``main()`` parses arguments and serves it.

Layout and wiring only; the work lives in ``colorizer`` and ``study``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings
from pathlib import Path

import gradio as gr

from colorizer.imageio import MultiFrameWarning
from colorizer.weights import WEIGHTS_DIR
from demo.cli import parse_args
from demo.colorize_tab import build_colorize_tab
from demo.examples import write_examples
from demo.models import ModelPool
from demo.results_tab import EXPORT_MAX_AGE_S, ResultsAccess, build_results_tab
from demo.study_tab import LOAD_TOKEN_JS, TRIAL_CSS, build_study_tab, is_study_link
from study.db import make_engine, make_session_factory
from study.defaults import (DefaultStudyBuild, default_design, default_models, default_study_name,
                            ensure_default_study)
from study.service import StudyService

log = logging.getLogger(__name__)

TITLE = "Colorizer"
INTRO = ("Automatic colorization of black-and-white photos. The result keeps your photo's full resolution and "
         "sharpness: only the colors are predicted (except by the source papers' RGB models, which redraw the "
         "whole picture).")
# System fonts only: the page must not fetch anything from the internet.
THEME = gr.themes.Soft(primary_hue="amber", secondary_hue="slate",
                       font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
CSS = """
#result-info { min-height: 2.5em; }
""" + TRIAL_CSS


def default_database_url() -> str:
    """``STUDY_DB_URL`` if set; on a Hugging Face Space with persistent storage, a file under /data;
    else a SQLite file in the working directory."""
    if os.environ.get("STUDY_DB_URL"):
        return os.environ["STUDY_DB_URL"]
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return "sqlite:////data/colorizer-study.sqlite"
    return "sqlite:///colorizer-study.sqlite"


def build_app(pool: ModelPool | None = None, examples_dir: str | os.PathLike | None = None,
              database_url: str | None = None, results_password: str | None = None,
              study_name: str | None = None, study_progress: bool = False,
              build_in_background: bool = False) -> gr.Blocks:
    """The whole app. Nothing is served until ``launch()``; tests build it with their own pool and database.

    On first use of a database the default study is built from ``study/default_photos`` with every shipped model:
    minutes on a CPU. ``build_in_background`` serves meanwhile (the Turing test asks early participants to come
    back; ``app.default_study_build`` follows it); ``study_progress`` shows a progress bar on the console.
    """
    pool = pool or ModelPool(WEIGHTS_DIR)
    examples = write_examples(examples_dir or Path(tempfile.gettempdir()) / "colorizer-examples")
    engine = make_engine(database_url or default_database_url())
    factory = make_session_factory(engine)
    build, planned = None, None
    if study_name is None:
        needed = default_models(pool.names())  # only the default study's models load now; others on first use
        colorizers = {name: pool.get(name) for name in needed}
        descriptions = {name: pool.describe(name) for name in needed}
        if build_in_background and colorizers and default_study_name(factory) is None:
            build = DefaultStudyBuild(factory, colorizers, descriptions, progress=study_progress).start()
            design = default_design()
            study_name, planned = design.name, {"mode": design.mode, "presentation": design.presentation}
        else:
            study_name = ensure_default_study(factory, colorizers, descriptions, progress=study_progress)
    service = StudyService(factory)
    access = ResultsAccess(results_password)
    # delete_cache: Gradio's copies of served files (colorized photos, exported reports) go after 10 minutes
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(300, EXPORT_MAX_AGE_S)) as app:
        gr.Markdown(f"# {TITLE}")
        with gr.Tabs(selected="colorize") as tabs:
            with gr.Tab("Colorize", id="colorize") as colorize_tab:
                # how the fakes are made stays on this tab: a participant must not read it before judging
                gr.Markdown(INTRO)
                build_colorize_tab(pool, examples)
            with gr.Tab("Turing test", id="study"):
                resume = build_study_tab(service, study_name, build.pending if build else None, planned)
            with gr.Tab("Results", id="results") as results_tab:
                build_results_tab(access, engine, study_name)

        def on_load(token_value=None, request: gr.Request = None):
            """A study link opens the Turing test with the other tabs hidden; a returning participant continues
            where they were (token from localStorage)."""
            link = is_study_link(request)
            layout = (gr.Tabs(selected="study" if link else "colorize"), gr.Tab(visible=not link),
                      gr.Tab(visible=not link))
            if resume is None:
                return layout
            return layout + tuple(resume.handler(token_value, request))

        outputs = [tabs, colorize_tab, results_tab] + (resume.outputs if resume is not None else [])
        app.load(on_load, [resume.token] if resume is not None else None, outputs,
                 js=LOAD_TOKEN_JS if resume is not None else None, api_visibility="private")
    app.study_service = service  # for tests and benchmarks that drive the same service
    app.default_study_build = build
    app.study_engine = engine
    return app


def require_mcp() -> None:
    """``--mcp`` needs Gradio's MCP extra; say so in one line rather than in Gradio's traceback."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise SystemExit('--mcp needs the MCP extra: pip install "gradio[mcp]"') from None


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    args = args or parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=MultiFrameWarning)  # the user reads it as the result's Note
    pool = ModelPool(args.weights_dir, device=args.device, backend=args.backend)
    if not pool.names():
        log.warning("no weights in %s: the colorize tab will say so", args.weights_dir)
    app = build_app(pool, database_url=args.db or default_database_url(), study_name=args.study, study_progress=True,
                    build_in_background=True)
    # CPU: one colorization at a time (set per event); study answers are light and may run side by side
    app.queue(max_size=64, default_concurrency_limit=8)
    if args.mcp:
        require_mcp()
    app.launch(server_name=args.host, server_port=args.port, max_file_size="200mb", show_error=False,
               theme=THEME, css=CSS, footer_links=[], mcp_server=args.mcp)
    return 0
