"""The "Turing test" tab: consent -> questions -> practice -> trials -> completion code.

Handlers are plain functions over ``StudyService`` (tests call them directly). Image timing runs in the browser
(``STUDY_JS``): it shows the images, hides them after the study's display time, measures how long they were
actually on screen and the response time, and sends both with the answer. The trial id travels with the answer,
so a double click or a late resubmit can only re-answer the trial it was meant for, which the database ignores.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from typing import Callable, Optional

import gradio as gr

from study.protocol import CONSENT_TEXT, INSTRUCTIONS, Device, StudyError
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
  // Answers count only while the trial's images are on screen, once per trial: until then the answer buttons
  // take no clicks (as jsPsych does), and the second click of a double click (event.detail > 1) is dropped.
  const setReady = ready => {
    study.ready = ready;
    document.body.classList.toggle('study-waiting', !ready);
  };
  async function show(images, ms) {
    images.forEach(img => img.style.visibility = 'visible');
    const onset = await frame();  // the frame in which the images are painted
    if (!study.onset) study.onset = onset;
    if (ms > 0) {
      await wait(ms);
      images.forEach(img => img.style.visibility = 'hidden');
      study.shown.push((await frame()) - onset);
    }
    return onset;
  }
  async function run(trial) {
    setReady(false);
    study.trial = trial.dataset.trial; study.onset = null; study.shown = []; study.answered = null;
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
    if (study.trial === trial.dataset.trial) setReady(true);
  }
  // One deliberate answer per trial: a held key's auto-repeat (event.repeat) never answers, and after an answer
  // the key or pointer must be released before the next one counts.
  if (!study.guard) {
    study.released = true;
    const inAnswers = target => target && target.closest && target.closest('#answer-row');
    study.guard = event => {
      const button = event.target.closest && event.target.closest('#answer-row button');
      if (!button) return;
      if (!study.ready || event.detail > 1 || study.answered === study.trial || !study.released) {
        event.preventDefault(); event.stopImmediatePropagation();
        return;
      }
      study.answered = study.trial;
      study.released = false;
      setReady(false);
    };
    document.addEventListener('click', study.guard, true);  // capture: runs before Gradio's own handler
    document.addEventListener('keydown', event => {
      if (event.repeat && inAnswers(event.target)) { event.preventDefault(); event.stopImmediatePropagation(); }
    }, true);
    const release = () => { study.released = true; };
    document.addEventListener('keyup', release, true);
    document.addEventListener('pointerup', release, true);
  }
  study.collect = () => {
    const elapsed = study.onset ? performance.now() - study.onset : null;
    const shown = study.shown && study.shown.length ? study.shown.reduce((a, b) => a + b, 0) / study.shown.length : elapsed;
    return JSON.stringify({trial: study.trial || null, response_ms: elapsed, display_ms: shown});
  };
  // Gradio may re-create this component's DOM on updates, so watch the whole page once for new trials
  const startNew = () => document.querySelectorAll('#stimulus .trial:not([data-started]):not([data-review])').forEach(trial => {
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
# The participant's token lives in the browser's localStorage, so a refresh or a new tab resumes the session. The
# key includes the study and the external id of the link: on a shared browser, a link with another participant id
# finds no token and starts a new participant.
TOKEN_KEY = "colorizer-study-token"
# the link's external id, read in the browser from the same parameters as ``external_id_from`` reads on the server
_EXTERNAL_ID_JS = " || ".join(f"q.get('{key}')" for key in EXTERNAL_ID_PARAMS)
_KEY_JS = ("(() => { const q = new URLSearchParams(location.search); "
           f"const id = {_EXTERNAL_ID_JS} || ''; "
           f"return '{TOKEN_KEY}:' + (q.get('study') || '') + ':' + id; }})()")
# At Start the browser reports its window (CSS pixels) and whether it has a mouse or trackpad; the server refuses a
# window too small for the stimuli, or a touch-only device, before registering anyone (study.protocol.check_device)
DEVICE_JS = ("(...inputs) => { inputs[inputs.length - 1] = JSON.stringify({width: window.innerWidth, "
             "height: window.innerHeight, touch_only: !matchMedia('(any-pointer: fine)').matches}); return inputs; }")
SAVE_TOKEN_JS = f"(token) => {{ if (token) localStorage.setItem({_KEY_JS}, token); return []; }}"
# A participant's link shows the Turing test alone: the other tabs' headers are hidden in the page too (Gradio keeps
# a hidden tab's header on screen), so nothing on screen tells how the fakes are made.
_HIDE_OTHER_TABS_JS = f"""
  const q = new URLSearchParams(location.search);
  if (q.get('study') || {_EXTERNAL_ID_JS}) {{
    const hide = () => document.querySelectorAll('button[role=tab]').forEach(tab => {{
      if (tab.innerText.trim() !== 'Turing test') tab.style.display = 'none';
    }});
    hide();
    new MutationObserver(hide).observe(document.body, {{childList: true, subtree: true}});
  }}
"""
LOAD_TOKEN_JS = f"() => {{ {_HIDE_OTHER_TABS_JS} return [localStorage.getItem({_KEY_JS})]; }}"

TRIAL_CSS = """
.trial { display: flex; gap: 16px; justify-content: center; flex-wrap: wrap; }
.trial figure { margin: 0; text-align: center; }
.trial img.stimulus { height: auto; max-width: 44vw; visibility: hidden; border-radius: 4px; }
.trial.single img.stimulus { max-width: 92vw; }
.trial figcaption { font-weight: 600; margin-top: 4px; }
body.study-waiting #answer-row button { opacity: 0.5; pointer-events: none; }
"""


def trial_html(view: TrialView, service: StudyService, review: bool = False) -> str:
    """The trial's images inline, at their native pixel size (never upscaled, so never soft).

    Inline ``data:`` URIs carry no URL, file name, ``Last-Modified``, ``ETag`` or caching of their own, and both
    images of a pair arrive in one message; every stimulus has the same byte length (``served_image``)."""
    labels = ["First", "Second"] if view.presentation == "sequential" else ["Left", "Right"]
    figures = []
    for index, image_id in enumerate(view.image_ids):
        image = service.served_image(image_id)
        caption = f"<figcaption>{labels[index]}</figcaption>" if len(view.image_ids) == 2 else ""
        visible = ' style="visibility: visible"' if review else ""
        figures.append(f'<figure><img class="stimulus" alt="photo" width="{image.width}" height="{image.height}" '
                       f'src="{image.data_uri}"{visible}>{caption}</figure>')
    kind = "single" if view.mode == "single" else "pair"
    if review:  # the practice pair again under its feedback: no timing, no answer (the script leaves it alone)
        return (f'<div class="trial {kind} review" data-review="1" data-trial="{view.trial_id}">'
                f'{"".join(figures)}</div>')
    return (f'<div class="trial {kind}" data-trial="{view.trial_id}" data-display-ms="{view.display_ms or 0}" '
            f'data-presentation="{view.presentation}">{"".join(figures)}</div>')


def progress_text(view: TrialView) -> str:
    """The counter above a trial: practice trials count on their own; the study's photos from 1 after them, with a
    line on the first one that the practice is over."""
    if view.is_practice:
        return f"**Practice {view.number} of {view.practice_total}** - you will be told the right answer"
    number, total = view.number - view.practice_total, view.total - view.practice_total
    start = ("The practice is over: **the study starts now**, and from here on you are not told the answers.\n\n"
             if number == 1 and view.practice_total else "")
    return f"{start}**Photo {number} of {total}**"


KEEP = object()  # a Screen field left as it is on the page


@dataclass
class Screen:
    """What the tab shows for a participant state (one value per output component)."""

    consent_visible: bool
    trial_visible: bool
    done_visible: bool
    progress: object = ""
    stimulus: object = ""
    feedback: str = ""
    done: str = ""
    message: str = ""
    token: Optional[str] = None
    answers_visible: bool = True
    continue_visible: bool = False  # practice feedback waits for "Continue" under its own trial
    returning_visible: bool = False  # a plain link on a browser with an unfinished session: whose is it?

    def updates(self) -> tuple:
        keep = lambda value: gr.skip() if value is KEEP else value  # noqa: E731
        # gr.update (a plain dict), not gr.Column(...): building component objects cost ~10% of the answer path
        return (gr.update(visible=self.consent_visible), gr.update(visible=self.trial_visible),
                gr.update(visible=self.done_visible), keep(self.progress), keep(self.stimulus),
                gr.update(visible=self.answers_visible), self.feedback, gr.update(visible=self.continue_visible),
                self.done, self.message, self.token, gr.update(visible=self.returning_visible))


def screen_for(state: ParticipantState, service: StudyService) -> Screen:
    if state.feedback and not state.duplicate:
        # the practice answer's feedback, under the images it is about (shown again, untimed); the next trial waits
        # for "Continue"
        shown = trial_html(state.reviewed, service, review=True) if state.reviewed else KEEP
        return Screen(False, True, False, progress=KEEP, stimulus=shown, feedback=state.feedback, token=state.token,
                      answers_visible=False, continue_visible=True)
    if state.done:
        code = state.completion_code or ""
        after = "You may close this page."
        if state.completion_url:
            link = html.escape(state.completion_url.replace("{code}", code), quote=True)
            after = f'<a href="{link}" id="completion-link">Return to the study site</a> to record your participation.'
        return Screen(False, False, True, done=f"## Thank you!\nYou have finished the study. Your completion code is "
                      f"**`{code}`**.\n\n{after}", token=state.token)
    return Screen(False, True, False, progress=progress_text(state.trial), stimulus=trial_html(state.trial, service),
                  token=state.token)


def external_id_from(request: Optional[gr.Request]) -> Optional[str]:
    if request is None:
        return None
    params = getattr(request, "query_params", None) or {}
    for key in EXTERNAL_ID_PARAMS:
        if params.get(key):
            return str(params.get(key))  # never cut: the protocol refuses an id over its limit
    return None


def is_study_link(request: Optional[gr.Request]) -> bool:
    """A participant's link: ``?study=NAME`` or an external-id parameter (e.g. Prolific's)."""
    params = getattr(request, "query_params", None) or {}
    return bool(params.get("study")) or external_id_from(request) is not None


def parse_device(payload: Optional[str]) -> Optional[Device]:
    """The browser's window size and pointer (DEVICE_JS), or None when absent or malformed."""
    try:
        return Device.from_payload(json.loads(payload)) if payload else None
    except ValueError:
        return None


def start_handler(service: StudyService, study_name: Optional[str], consented: bool, age_band: Optional[str],
                  color_vision: Optional[str], screen: Optional[str], external_id: Optional[str] = None,
                  pending: Callable[[], Optional[str]] | None = None, device: Optional[str] = None) -> Screen:
    waiting = pending() if pending is not None else None
    if waiting:  # the study is still being built: nobody joins a half-made study
        return Screen(True, False, False, message=f"**{waiting}**")
    try:
        state = service.start(study_name, bool(consented), external_id, age_band, color_vision, screen,
                              device=parse_device(device))
    except StudyError as error:
        return Screen(True, False, False, message=f"**{error}**")
    return screen_for(state, service)


RETURNING_MESSAGE = ("**This browser has an unfinished session of this study.** If it is yours, continue it. If "
                     "you are someone else, tick the box above and press Start: you begin as a new participant.")


def resume_handler(service: StudyService, token: Optional[str], external_id: Optional[str] = None,
                   confirmed: bool = False) -> Screen:
    """The returning participant's screen (a practice feedback is not repeated: the next trial shows).

    A link with a participant id names who is here. A plain link on a browser holding an unfinished session may be
    someone else on a shared computer: unless ``confirmed`` ("Continue my session"), the consent page asks."""
    if not token:
        return Screen(True, False, False)
    try:
        if external_id is None and not confirmed:
            peek = service.peek(token)
            if peek.done:
                return Screen(True, False, False)  # a finished session: whoever is here starts afresh
            return Screen(True, False, False, message=RETURNING_MESSAGE, returning_visible=True)
        state = service.resume(token, external_id)
    except StudyError:
        return Screen(True, False, False)  # a token from another database or another participant: start afresh
    return screen_for(ParticipantState(state.token, state.trial, state.completion_code,
                                       completion_url=state.completion_url), service)


MAX_TRIAL_ID = 2 ** 62  # far above any row id, far below what the database's integers hold


def parse_answer_payload(payload) -> tuple[dict, int]:
    """(the browser's JSON object, its trial id), or a one-line ``gr.Error`` for anything else: not JSON, not an
    object, a trial id that is not a whole number in range (a float is not cut to an integer)."""
    intact = "The answer did not reach the server intact; please click again."
    try:
        data = json.loads(payload or "{}")
    except (TypeError, ValueError):
        raise gr.Error(intact, print_exception=False) from None
    trial = data.get("trial") if isinstance(data, dict) else None
    if isinstance(trial, str) and trial.isdigit():
        trial = int(trial)
    if isinstance(trial, bool) or not isinstance(trial, int) or not 0 < trial < MAX_TRIAL_ID:
        raise gr.Error(intact, print_exception=False)
    return data, trial


def answer_handler(service: StudyService, token: Optional[str], payload: Optional[str], answer: str) -> Screen:
    """Stores ``answer`` for the trial named in ``payload`` (JSON from the browser) and shows the next screen."""
    data, trial_id = parse_answer_payload(payload)
    try:
        state = service.answer(token, trial_id, answer, data.get("response_ms"), data.get("display_ms"))
    except StudyError as error:
        if "not found" in str(error):  # e.g. the study database was reset: start again from the consent page
            return Screen(True, False, False, message=f"**{error}**")
        raise gr.Error(str(error), print_exception=False) from None
    return screen_for(state, service)


@dataclass
class ResumeWiring:
    """What the app's page-load event needs to put a returning participant back where they were."""

    token: gr.Textbox  # hidden; filled from localStorage by LOAD_TOKEN_JS
    outputs: list
    handler: Callable


def build_study_tab(service: StudyService, study_name: Optional[str],
                    pending: Callable[[], Optional[str]] | None = None,
                    planned: Optional[dict] = None) -> Optional[ResumeWiring]:
    """Lays out the tab; returns the wiring of the page-load resume (None when no study exists).

    A study still being built (``pending()`` says why it cannot be taken yet) is laid out from ``planned``, its
    design's ``mode`` and ``presentation``.
    """
    try:
        info = service.study_info(study_name)
    except StudyError:
        if planned is None:
            gr.Markdown("No study is set up yet: build one with `python -m study build` and restart the app.")
            return None
        info = planned
    mode = info["mode"]
    token = gr.Textbox(visible=False)
    with gr.Column(visible=True) as consent_view:
        timing = (f" The photos disappear after {info['display_ms'] / 1000:g} s: look while they are there, then "
                  "answer." if info.get("display_ms") else "")
        width, height = info.get("minimum_window") or (0, 0)
        pointer = "" if info.get("allow_touch") else " on a computer with a mouse or trackpad (not a phone)"
        device = (f" Use a browser window of at least {width} x {height} pixels{pointer}." if width else
                  f" Use a large browser window{pointer}.")
        gr.Markdown("## Real photo or colorized?\n" + INSTRUCTIONS[mode] + timing + "\n\nPlease take part only if you have "
                    "normal (or corrected-to-normal) colour vision, on a screen at normal brightness." + device)
        gr.Markdown(CONSENT_TEXT)
        consent = gr.Checkbox(label="I have read the above and agree to take part.", elem_id="consent-box")
        with gr.Accordion("Optional questions (anonymous)", open=False):
            age = gr.Dropdown(AGE_BANDS, label="Age band", value=None)
            vision = gr.Radio(COLOR_VISION, label="Your colour vision (self-reported)", value=None)
            screen = gr.Dropdown(SCREENS, label="Screen", value=None)
        device_report = gr.Textbox(visible=False)
        start = gr.Button("Start", variant="primary", elem_id="start-study")
        message = gr.Markdown(elem_id="study-message")
        returning = gr.Button("Continue my session", visible=False, elem_id="continue-session")
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
        with gr.Row(elem_id="answer-row") as answer_row:
            buttons = [(gr.Button(label, variant="primary", elem_id=f"answer-{value}"), value)
                       for label, value in answers]
        feedback = gr.Markdown(elem_id="trial-feedback")
        next_button = gr.Button("Continue", visible=False, elem_id="study-continue")
    with gr.Column(visible=False) as done_view:
        done = gr.Markdown(elem_id="study-done")
    outputs = [consent_view, trial_view, done_view, progress, stimulus, answer_row, feedback, next_button, done,
               message, token, returning]

    def on_start(consented, age_band, color_vision, screen_type, device_value, request: gr.Request):
        return start_handler(service, study_name, consented, age_band, color_vision, screen_type,
                             external_id_from(request), pending, device_value).updates()

    # study and results endpoints stay callable (the page, tests) but out of the API page and MCP tools
    start.click(on_start, [consent, age, vision, screen, device_report], outputs, api_name="study_start",
                api_visibility="undocumented", js=DEVICE_JS,
                trigger_mode="once").then(None, [token], None, js=SAVE_TOKEN_JS)
    for button, value in buttons:
        def on_answer(token_value, payload_value, _answer=value):
            return answer_handler(service, token_value, payload_value, _answer).updates()

        # the answer path skips Gradio's queue: it is a short database write, and queueing added most of its latency
        button.click(on_answer, [token, payload], outputs, js=COLLECT_JS, api_name=f"study_answer_{value}",
                     api_visibility="undocumented", trigger_mode="once", queue=False)
    resume = lambda value, request: resume_handler(service, value, external_id_from(request)).updates()  # noqa: E731

    def on_continue(token_value, request: gr.Request):  # after practice feedback: this person, going on
        return resume_handler(service, token_value, external_id_from(request), confirmed=True).updates()

    next_button.click(on_continue, [token], outputs, api_name="study_continue", api_visibility="undocumented",
                      trigger_mode="once", queue=False)

    def on_returning(token_value, request: gr.Request):
        return resume_handler(service, token_value, external_id_from(request), confirmed=True).updates()

    returning.click(on_returning, [token], outputs, api_name="study_resume_confirmed", api_visibility="undocumented",
                    trigger_mode="once",
                    queue=False)
    return ResumeWiring(token, outputs, resume)
