"""The password-protected "Results" tab.

Gradio exposes every event handler as an API endpoint, so hiding the tab protects nothing: each handler here
takes the password as an input and checks it on the server before reading any result.
"""

from __future__ import annotations

import hmac
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

import gradio as gr
from sqlalchemy import Engine

from study.report import acceptance_chart, analyse, write_report

log = logging.getLogger(__name__)
PASSWORD_VARIABLE = "STUDY_RESULTS_PASSWORD"
SUMMARY_COLUMNS = ["condition", "n", "judged_real", "rate", "wilson_low", "wilson_high", "bootstrap_low",
                   "bootstrap_high", "relative_to_real", "d_prime", "criterion"]


class ResultsAccess:
    """Checks passwords against ``STUDY_RESULTS_PASSWORD`` (or an explicit one, for tests)."""

    def __init__(self, password: Optional[str] = None):
        self.password = password if password is not None else os.environ.get(PASSWORD_VARIABLE) or None

    @property
    def enabled(self) -> bool:
        return bool(self.password)

    def check(self, attempt: Optional[str]) -> None:
        if not self.enabled:
            raise gr.Error(f"Results are disabled. Set the {PASSWORD_VARIABLE} environment variable and restart "
                           "the app to enable this tab.", title="Disabled")
        if not attempt or not hmac.compare_digest(attempt.encode(), self.password.encode()):
            raise gr.Error("Wrong password.", title="Not allowed")


def summary_handler(access: ResultsAccess, engine: Engine, study_name: Optional[str], password: Optional[str]):
    """(summary table, chart figure, exclusions Markdown) of the study, after checking the password."""
    access.check(password)
    report = analyse(engine, study_name, bootstrap_repeats=500)
    table = report.acceptance.reindex(columns=[c for c in SUMMARY_COLUMNS if c in report.acceptance.columns])
    e = report.exclusions
    text = (f"**{report.study['name']}** ({report.study['mode']}): {e['participants_before']} participants, "
            f"{e['participants_after']} after exclusions ({e['excluded_incomplete']} incomplete, "
            f"{e['excluded_failed_sentinels']} failed attention checks, {e['excluded_too_fast']} too fast); "
            f"{e['trials_after']} main trials analysed.")
    return table.round(3), acceptance_chart(report), text


def export_handler(access: ResultsAccess, engine: Engine, study_name: Optional[str], password: Optional[str]) -> Path:
    """A zip of the full report (CSV, JSON, Markdown, HTML, chart, data dictionary), after checking the password."""
    access.check(password)
    folder = Path(tempfile.mkdtemp(prefix="colorizer-report-"))
    files = write_report(engine, folder / "report", study_name)
    archive = folder / "study-report.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in files:
            bundle.write(file, file.name)
    return archive


def build_results_tab(access: ResultsAccess, engine: Engine, study_name: Optional[str]) -> None:
    if not access.enabled:
        gr.Markdown(f"Results are disabled. Set the `{PASSWORD_VARIABLE}` environment variable to a password and "
                    "restart the app to enable this tab.")
    password = gr.Textbox(label="Password", type="password", elem_id="results-password")
    with gr.Row():
        show = gr.Button("Show results", variant="primary")
        export = gr.Button("Export report (zip)")
    text = gr.Markdown()
    table = gr.Dataframe(label="Acceptance per condition (95% intervals)", interactive=False)
    chart = gr.Plot(label="Public acceptance")
    download = gr.DownloadButton("Download report", visible=False)

    def on_show(attempt):
        frame, figure, summary = summary_handler(access, engine, study_name, attempt)
        return frame, figure, summary

    def on_export(attempt):
        return gr.DownloadButton(value=str(export_handler(access, engine, study_name, attempt)), visible=True)

    show.click(on_show, [password], [table, chart, text], api_name="results_summary")
    export.click(on_export, [password], [download], api_name="results_export")
