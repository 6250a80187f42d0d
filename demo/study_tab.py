"""The "Turing test" tab: consent -> questions -> practice -> trials -> completion code.

Handlers are plain functions over ``StudyService`` (tests call them directly). Image timing runs in the browser
(``STUDY_JS``): it shows the images, hides them after the study's display time, measures how long they were
actually on screen and the response time, and sends both with the answer. The trial id travels with the answer,
so a double click or a late resubmit can only re-answer the trial it was meant for, which the database ignores.
"""

from __future__ import annotations

import json
import logging
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import gradio as gr

from study.protocol import CONSENT_TEXT, INSTRUCTIONS, StudyError
from study.service import ParticipantState, StudyService, TrialView

log = logging.getLogger(__name__)

AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
COLOR_VISION = ["normal", "deficient", "unsure"]
SCREENS = ["phone", "tablet", "laptop", "desktop"]
EXTERNAL_ID_PARAMS = ("PROLIFIC_PID", "pid", "participant")

STUDY_JS = """
(() => {
  const study = window.colorizerStudy = window.colorizerStudy || {};
  const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
  const wait = ms => new Promise(resolve => setTimeout(resolve, ms));
  async function show(images, ms) {
    images.forEach(img => img.style.visibility = 'visible');
    const onset = await frame();  // the frame in which the images are painted
    if (!study.onset) study.onset = performance.now();
    if (ms > 0) {
      await wait(ms);
      images.forEach(img => img.style.visibility = 'hidden');
      study.shown.push((await frame()) - onset);
    }
    return onset;
  }
  async function run(trial) {
    study.trial = trial.dataset.trial; study.onset = null; study.shown = []; study.ready = false;
    const images = [...trial.querySelectorAll('img.stimulus')];
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    const ms = parseInt(trial.dataset.displayMs || '0', 10);
    if (trial.dataset.presentation === 'sequential' && images.length === 2) {
      await show([images[0]], ms || 1000);
      await wait(400);
      study.onset = null;  // response time counts from the second image
      await show([images[1]], ms || 1000);
    } else {
      await show(images, ms);
    }
    study.ready = true;
  }
  study.collect = () => {
    const elapsed = study.onset ? performance.now() - study.onset : null;
    const shown = study.shown && study.shown.length ? study.shown.reduce((a, b) => a + b, 0) / study.shown.length : elapsed;
    return JSON.stringify({trial: study.trial || null, response_ms: elapsed, display_ms: shown});
  };
  // Gradio may re-create this component's DOM on updates, so watch the whole page once for new trials
  const startNew = () => document.querySelectorAll('#stimulus .trial:not([data-started])').forEach(trial => {
    trial.dataset.started = '1'; run(trial);
  });
  if (!study.observer) {
    study.observer = new MutationObserver(startNew);
    study.observer.observe(document.body, {childList: true, subtree: true});
  }
  startNew();
})();
"""
COLLECT_JS = "(token, payload) => [token, window.colorizerStudy && window.colorizerStudy.collect ? window.colorizerStudy.collect() : payload]"
# The participant's token lives in the browser's localStorage, so a refresh or a new tab resumes the session.
TOKEN_KEY = "colorizer-study-token"
SAVE_TOKEN_JS = f"(token) => {{ if (token) localStorage.setItem('{TOKEN_KEY}', token); return []; }}"
LOAD_TOKEN_JS = f"() => [localStorage.getItem('{TOKEN_KEY}')]"

TRIAL_CSS = """
.trial { display: flex; gap: 16px; justify-content: center; flex-wrap: wrap; }
.trial figure { margin: 0; text-align: center; }
.trial img.stimulus { width: min(42vw, 384px); height: auto; visibility: hidden; border-radius: 4px; }
.trial.single img.stimulus { width: min(90vw, 448px); }
.trial figcaption { font-weight: 600; margin-top: 4px; }
"""


def stimulus_folder() -> Path:
    """Where stimuli are written for Gradio to serve as static files (``gr.set_static_paths``)."""
    return Path(tempfile.gettempdir()) / "colorizer-stimuli"


def trial_html(view: TrialView, service: StudyService, folder: Path | None = None) -> str:
    """The trial's images as static files named by their random public ids (nothing reveals the condition).

    Sent as URLs rather than inline data: the answer -> next-image round trip then carries a few hundred bytes.
    """
    labels = ["First", "Second"] if view.presentation == "sequential" else ["Left", "Right"]
    figures = []
    for index, image_id in enumerate(view.image_ids):
        path = service.image_file(image_id, folder or stimulus_folder())
        caption = f"<figcaption>{labels[index]}</figcaption>" if len(view.image_ids) == 2 else ""
        source = "gradio_api/file=" + urllib.parse.quote(str(path))
        figures.append(f'<figure><img class="stimulus" alt="photo" src="{source}">{caption}</figure>')
    kind = "single" if view.mode == "single" else "pair"
    return (f'<div class="trial {kind}" data-trial="{view.trial_id}" data-display-ms="{view.display_ms or 0}" '
            f'data-presentation="{view.presentation}">{"".join(figures)}</div>')


def progress_text(view: TrialView) -> str:
    label = "Practice" if view.is_practice else "Photo"
    note = " - you will be told the right answer" if view.is_practice else ""
    return f"**{label} {view.number} of {view.total}**{note}"


@dataclass
class Screen:
    """What the tab shows for a participant state (one value per output component)."""

    consent_visible: bool
    trial_visible: bool
    done_visible: bool
    progress: str = ""
    stimulus: str = ""
    feedback: str = ""
    done: str = ""
    message: str = ""
    token: Optional[str] = None

    def updates(self) -> tuple:
        return (gr.Column(visible=self.consent_visible), gr.Column(visible=self.trial_visible),
                gr.Column(visible=self.done_visible), self.progress, self.stimulus, self.feedback, self.done,
                self.message, self.token)


def screen_for(state: ParticipantState, service: StudyService) -> Screen:
    if state.done:
        code = state.completion_code or ""
        return Screen(False, False, True, done=f"## Thank you!\nYou have finished the study. Your completion code is "
                      f"**`{code}`**.\n\nYou may close this page.", feedback=state.feedback or "", token=state.token)
    return Screen(False, True, False, progress=progress_text(state.trial), stimulus=trial_html(state.trial, service),
                  feedback=state.feedback or "", token=state.token)


def external_id_from(request: Optional[gr.Request]) -> Optional[str]:
    if request is None:
        return None
    params = getattr(request, "query_params", None) or {}
    for key in EXTERNAL_ID_PARAMS:
        if params.get(key):
            return str(params.get(key))[:200]
    return None


def start_handler(service: StudyService, study_name: Optional[str], consented: bool, age_band: Optional[str],
                  color_vision: Optional[str], screen: Optional[str], external_id: Optional[str] = None) -> Screen:
    try:
        state = service.start(study_name, bool(consented), external_id, age_band, color_vision, screen)
    except StudyError as error:
        return Screen(True, False, False, message=f"**{error}**")
    return screen_for(state, service)


def resume_handler(service: StudyService, token: Optional[str]) -> Screen:
    if not token:
        return Screen(True, False, False)
    try:
        return screen_for(service.resume(token), service)
    except StudyError:
        return Screen(True, False, False)  # a token from another database: start afresh


def answer_handler(service: StudyService, token: Optional[str], payload: Optional[str], answer: str) -> Screen:
    """Stores ``answer`` for the trial named in ``payload`` (JSON from the browser) and shows the next screen."""
    try:
        data = json.loads(payload or "{}")
        trial_id = int(data.get("trial"))
    except (TypeError, ValueError):
        raise gr.Error("The answer did not reach the server intact; please click again.") from None
    try:
        state = service.answer(token, trial_id, answer, data.get("response_ms"), data.get("display_ms"))
    except StudyError as error:
        if "not found" in str(error):  # e.g. the study database was reset: start again from the consent page
            return Screen(True, False, False, message=f"**{error}**")
        raise gr.Error(str(error)) from None
    return screen_for(state, service)


@dataclass
class ResumeWiring:
    """What the app's page-load event needs to put a returning participant back where they were."""

    token: gr.Textbox  # hidden; filled from localStorage by LOAD_TOKEN_JS
    outputs: list
    handler: Callable


def build_study_tab(service: StudyService, study_name: Optional[str]) -> Optional[ResumeWiring]:
    """Lays out the tab; returns the wiring of the page-load resume (None when no study exists)."""
    try:
        info = service.study_info(study_name)
    except StudyError:
        gr.Markdown("No study is set up yet: build one with `python -m study build` and restart the app.")
        return None
    mode = info["mode"]
    token = gr.Textbox(visible=False)
    with gr.Column(visible=True) as consent_view:
        gr.Markdown("## Real photo or colorized?\n" + INSTRUCTIONS[mode] + "\n\nPlease take part only if you have "
                    "normal (or corrected-to-normal) colour vision, on a screen at normal brightness.")
        gr.Markdown(CONSENT_TEXT)
        consent = gr.Checkbox(label="I have read the above and agree to take part.", elem_id="consent-box")
        with gr.Accordion("Optional questions (anonymous)", open=False):
            age = gr.Dropdown(AGE_BANDS, label="Age band", value=None)
            vision = gr.Radio(COLOR_VISION, label="Your colour vision (self-reported)", value=None)
            screen = gr.Dropdown(SCREENS, label="Screen", value=None)
        start = gr.Button("Start", variant="primary", elem_id="start-study")
        message = gr.Markdown(elem_id="study-message")
    with gr.Column(visible=False) as trial_view:
        progress = gr.Markdown(elem_id="trial-progress")
        stimulus = gr.HTML(elem_id="stimulus", js_on_load=STUDY_JS, css_template=TRIAL_CSS)
        payload = gr.Textbox(visible=False)
        if mode == "single":
            answers = [("Real photo", "real"), ("Colorized", "fake")]
        elif info["presentation"] == "sequential":
            answers = [("First was real", "0"), ("Second was real", "1")]
        else:
            answers = [("Left is real", "0"), ("Right is real", "1")]
        with gr.Row():
            buttons = [(gr.Button(label, variant="primary", elem_id=f"answer-{value}"), value)
                       for label, value in answers]
        feedback = gr.Markdown(elem_id="trial-feedback")
    with gr.Column(visible=False) as done_view:
        done = gr.Markdown(elem_id="study-done")
    outputs = [consent_view, trial_view, done_view, progress, stimulus, feedback, done, message, token]

    def on_start(consented, age_band, color_vision, screen_type, request: gr.Request):
        return start_handler(service, study_name, consented, age_band, color_vision, screen_type,
                             external_id_from(request)).updates()

    start.click(on_start, [consent, age, vision, screen], outputs, api_name="study_start",
                trigger_mode="once").then(None, [token], None, js=SAVE_TOKEN_JS)
    for button, value in buttons:
        def on_answer(token_value, payload_value, _answer=value):
            return answer_handler(service, token_value, payload_value, _answer).updates()

        button.click(on_answer, [token, payload], outputs, js=COLLECT_JS, api_name=f"study_answer_{value}",
                     trigger_mode="once").then(None, [token], None, js=SAVE_TOKEN_JS)
    return ResumeWiring(token, outputs, lambda value: resume_handler(service, value).updates())
