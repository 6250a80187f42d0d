"""The password-protected "Results" tab.

Gradio exposes every event handler as an API endpoint, so hiding the tab protects nothing: each handler here
takes the password as an input and checks it on the server before reading any result.
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections import defaultdict, deque
from pathlib import Path
from typing import Callable, Optional

import gradio as gr
from sqlalchemy import Engine

from study.report import acceptance_chart, analyse, write_report

log = logging.getLogger(__name__)
PASSWORD_VARIABLE = "STUDY_RESULTS_PASSWORD"
SUMMARY_COLUMNS = ["condition", "n", "judged_real", "rate", "ci_low", "ci_high", "p_vs_half", "wilson_naive_low",
                   "wilson_naive_high", "relative_to_real", "d_prime", "criterion"]
EXPORT_PREFIX = "colorizer-report-"
EXPORT_MAX_AGE_S = 600  # exported zips (and Gradio's cached copies, see app.py) are deleted after 10 minutes


class ResultsAccess:
    """Checks passwords against ``STUDY_RESULTS_PASSWORD`` (or an explicit one, for tests), with a lockout:
    ``max_failures`` wrong guesses from one client within ``window_s`` lock that client out for ``lockout_s``
    (doubling with each further lockout), and the same number times ten from all clients together locks everyone
    out, so guessing runs at a few attempts a minute, not 35 a second."""

    def __init__(self, password: Optional[str] = None, max_failures: int = 5, window_s: float = 60.0,
                 lockout_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.password = password if password is not None else os.environ.get(PASSWORD_VARIABLE) or None
        self.max_failures, self.window_s, self.lockout_s, self.clock = max_failures, window_s, lockout_s, clock
        self._failures: dict[str, deque] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}
        self._lockouts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.password)

    def _register_failure(self, key: str, limit: int, now: float) -> None:
        failures = self._failures[key]
        failures.append(now)
        while failures and failures[0] < now - self.window_s:
            failures.popleft()
        if len(failures) >= limit:
            self._lockouts[key] += 1
            self._locked_until[key] = now + self.lockout_s * 2 ** (self._lockouts[key] - 1)
            failures.clear()

    def check(self, attempt: Optional[str], client: str = "unknown") -> None:
        if not self.enabled:
            raise gr.Error(f"Results are disabled. Set the {PASSWORD_VARIABLE} environment variable and restart "
                           "the app to enable this tab.", title="Disabled")
        with self._lock:
            now = self.clock()
            waits = [self._locked_until.get(key, 0) - now for key in (client, "*")]
            if max(waits) > 0:
                raise gr.Error(f"Too many wrong passwords. Try again in {int(max(waits)) + 1} s.", title="Locked")
            if not attempt or not hmac.compare_digest(attempt.encode(), self.password.encode()):
                self._register_failure(client, self.max_failures, now)
                self._register_failure("*", self.max_failures * 10, now)
                log.warning("wrong results password from %s", client)
                raise gr.Error("Wrong password.", title="Not allowed")


def client_of(request: Optional[gr.Request]) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def remove_old_exports(max_age_s: float = EXPORT_MAX_AGE_S, now: float | None = None) -> int:
    """Deletes export folders older than ``max_age_s`` (they hold every participant's answers)."""
    now = time.time() if now is None else now
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{EXPORT_PREFIX}*"):
        if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def summary_handler(access: ResultsAccess, engine: Engine, study_name: Optional[str], password: Optional[str],
                    client: str = "unknown"):
    """(summary table, chart figure, exclusions Markdown) of the study, after checking the password."""
    access.check(password, client)
    report = analyse(engine, study_name, bootstrap_repeats=0)
    table = report.acceptance.reindex(columns=[c for c in SUMMARY_COLUMNS if c in report.acceptance.columns])
    e = report.exclusions
    text = (f"**{report.study['name']}** ({report.study['mode']}): {e['participants_before']} participants, "
            f"{e['participants_after']} after exclusions ({e['excluded_incomplete']} incomplete, "
            f"{e['excluded_failed_sentinels']} failed attention checks, {e['excluded_too_fast']} too fast, "
            f"{e['excluded_same_answer']} nearly always the same answer); {e['trials_after']} main trials analysed. "
            "Intervals: 95%, clustered by participant and photo (`wilson_naive_*` ignores that and is too narrow)."
            + (f" {report.simulated_participants} simulated participants are not counted."
               if report.simulated_participants else ""))
    return table.round(3), acceptance_chart(report), text


def export_handler(access: ResultsAccess, engine: Engine, study_name: Optional[str], password: Optional[str],
                   client: str = "unknown") -> Path:
    """A zip of the full report (CSV, JSON, Markdown, HTML, chart, data dictionary), after checking the password.

    Gradio serves the file to whoever holds its (unguessable) link, so the zip is encrypted with the results
    password (AES-256; 7-Zip, WinZip or Python's ``pyzipper`` open it) and short-lived: older exports are deleted
    here and Gradio's cached copy by the app's ``delete_cache``."""
    import pyzipper

    access.check(password, client)
    remove_old_exports()
    folder = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
    files = write_report(engine, folder / "report", study_name)
    archive = folder / "study-report.zip"
    with pyzipper.AESZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as bundle:
        bundle.setpassword(password.encode())
        for file in files:
            bundle.write(file, file.name)
    shutil.rmtree(folder / "report")  # only the encrypted archive stays on disk
    return archive


def build_results_tab(access: ResultsAccess, engine: Engine, study_name: Optional[str]) -> None:
    if not access.enabled:
        gr.Markdown(f"Results are disabled. Set the `{PASSWORD_VARIABLE}` environment variable to a password and "
                    "restart the app to enable this tab.")
    password = gr.Textbox(label="Password", type="password", elem_id="results-password")
    with gr.Row():
        show = gr.Button("Show results", variant="primary")
        export = gr.Button("Export report (zip, encrypted with the password)")
    text = gr.Markdown()
    table = gr.Dataframe(label="Acceptance per condition (95% intervals clustered by participant and photo)",
                         interactive=False)
    chart = gr.Plot(label="Public acceptance")
    download = gr.DownloadButton("Download report", visible=False)

    def on_show(attempt, request: gr.Request):
        frame, figure, summary = summary_handler(access, engine, study_name, attempt, client_of(request))
        return frame, figure, summary

    def on_export(attempt, request: gr.Request):
        path = export_handler(access, engine, study_name, attempt, client_of(request))
        return gr.DownloadButton(value=str(path), visible=True)

    show.click(on_show, [password], [table, chart, text], api_name="results_summary")
    export.click(on_export, [password], [download], api_name="results_export")
