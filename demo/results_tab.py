"""The password-protected "Results" tab.

Gradio exposes every event handler as an API endpoint, so hiding the tab protects nothing: each handler here
takes the password as an input and checks it on the server before reading any result.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
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


MIN_PASSWORD_LENGTH = 12  # guessing is made hopeless by length, not by lockouts


class ResultsAccess:
    """Checks passwords against ``STUDY_RESULTS_PASSWORD`` (or an explicit one, for tests).

    No lockout: one that strangers can trigger locks the researcher out too (behind a proxy every visitor shares
    its address). Instead the password must have at least ``MIN_PASSWORD_LENGTH`` characters, every attempt costs
    a slow scrypt derivation (~50 ms of CPU), the right password always works, and a client with ``max_failures``
    wrong guesses within ``window_s`` gets its further wrong answers only after ``penalty_s`` (doubling, at most
    ``max_penalty_s``) and one warning in the log per window."""

    def __init__(self, password: Optional[str] = None, max_failures: int = 5, window_s: float = 60.0,
                 penalty_s: float = 1.0, max_penalty_s: float = 8.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, scrypt_n: int = 2 ** 14):
        password = password if password is not None else os.environ.get(PASSWORD_VARIABLE) or None
        self.problem: Optional[str] = None
        if not password:
            self.problem = (f"Results are disabled. Set the {PASSWORD_VARIABLE} environment variable and restart the "
                            "app to enable this tab.")
        elif len(password) < MIN_PASSWORD_LENGTH:
            self.problem = (f"Results are disabled: {PASSWORD_VARIABLE} is shorter than {MIN_PASSWORD_LENGTH} "
                            "characters. Set a longer one and restart the app.")
        self.max_failures, self.window_s, self.clock, self.sleep = max_failures, window_s, clock, sleep
        self.penalty_s, self.max_penalty_s = penalty_s, max_penalty_s
        self._salt = os.urandom(16)
        self._scrypt_n = scrypt_n
        self._digest = self._derive(password) if not self.problem else None
        self._failures: dict[str, deque] = defaultdict(deque)
        self._alerted_at: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.problem is None

    def _derive(self, attempt: str) -> bytes:
        return hashlib.scrypt(attempt.encode(), salt=self._salt, n=self._scrypt_n, r=8, p=1, dklen=32)

    def _recent_failures(self, client: str, now: float) -> int:
        failures = self._failures[client]
        while failures and failures[0] < now - self.window_s:
            failures.popleft()
        return len(failures)

    def check(self, attempt: Optional[str], client: str = "unknown") -> None:
        if not self.enabled:
            raise gr.Error(self.problem, title="Disabled", print_exception=False)
        if attempt and hmac.compare_digest(self._derive(attempt), self._digest):
            return
        with self._lock:
            now = self.clock()
            self._failures[client].append(now)
            recent = self._recent_failures(client, now)
            over = recent - self.max_failures
            if over >= 0 and now - self._alerted_at.get(client, -math.inf) > self.window_s:
                self._alerted_at[client] = now
                log.warning("%d wrong results passwords from %s within %.0f s: someone may be guessing", recent,
                            client, self.window_s)
        if over >= 0:  # this client's wrong guesses slow down; a right password is never delayed
            self.sleep(min(self.penalty_s * 2 ** over, self.max_penalty_s))
        log.info("wrong results password from %s", client)
        raise gr.Error("Wrong password.", title="Not allowed", print_exception=False)


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
            bundle.write(file, str(file.relative_to(folder / "report")))  # keeps psych-ds/data/ as a folder
    shutil.rmtree(folder / "report")  # only the encrypted archive stays on disk, and only for EXPORT_MAX_AGE_S
    timer = threading.Timer(EXPORT_MAX_AGE_S, shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True})
    timer.daemon = True
    timer.start()
    return archive


def build_results_tab(access: ResultsAccess, engine: Engine, study_name: Optional[str]) -> None:
    if not access.enabled:
        gr.Markdown(access.problem)
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

    # callable with the password, but not listed on the API page or as MCP tools
    show.click(on_show, [password], [table, chart, text], api_name="results_summary", api_visibility="undocumented")
    export.click(on_export, [password], [download], api_name="results_export", api_visibility="undocumented")
