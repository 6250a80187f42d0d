"""The participant-facing operations, one transaction each. The Gradio tab and the simulator both call these,
so a simulated study exercises exactly the code real participants go through.

Nothing returned here reveals a trial's condition: a trial view carries opaque image ids only.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from dataclasses import dataclass, field
import base64
import functools
import io
from typing import Optional

from PIL import Image

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from study import protocol
from study.schema import Stimulus, Study


class FairLock:
    """A first-come, first-served lock: ``threading.Lock`` lets a releasing thread win again at once, which starves
    waiting writers (a p99 of seconds with 32 writers); here the lock is handed to the longest waiter."""

    def __init__(self):
        self._guard = threading.Lock()
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._held = False

    def __enter__(self):
        with self._guard:
            if not self._held:
                self._held = True
                return self
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # ownership is handed over by __exit__
        return self

    def __exit__(self, *exc_info):
        with self._guard:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False


@dataclass(frozen=True)
class TrialView:
    trial_id: int
    number: int  # 1-based position among all trials
    total: int
    is_practice: bool
    image_ids: tuple[str, ...]  # one (single) or two (2AFC, left/first then right/second)
    mode: str
    presentation: str
    display_ms: Optional[int]
    practice_total: int = 0  # practice trials come first; the counter shown to the participant leaves them out


_PEEKED = object()  # ``peek``'s stand-in for "a trial is pending" (its view is not built)


@dataclass(frozen=True)
class ParticipantState:
    token: str
    trial: Optional[TrialView]  # None once finished
    completion_code: Optional[str] = None
    feedback: Optional[str] = None  # after a practice answer
    duplicate: bool = False  # the answer was for a trial already answered (double click, resubmit)
    completion_url: Optional[str] = None  # where a finished participant goes back to ({code} filled in)
    reviewed: Optional[TrialView] = None  # with practice feedback: the answered trial, shown again beside it

    @property
    def done(self) -> bool:
        return self.trial is None


@dataclass
class StudyService:
    factory: sessionmaker[Session]
    _image_cache: dict = field(default_factory=dict)
    _studies: dict = field(default_factory=dict)  # id -> Study (detached; mode and timing never change)
    _trial_counts: dict = field(default_factory=dict)  # participant id -> (trials, practice trials), fixed at joining
    _write_lock: FairLock = field(default_factory=FairLock)

    @contextlib.contextmanager
    def _write(self):
        """A write transaction. SQLite allows one writer at a time; queueing writers on a lock in this process
        beats SQLite's sleep-and-retry busy handler by far (p99 latency), and other processes still get the
        busy timeout."""
        sqlite = self.factory.kw["bind"].dialect.name == "sqlite"
        with (self._write_lock if sqlite else contextlib.nullcontext()), self.factory.begin() as session:
            yield session

    def _study(self, session: Session, study_id: int) -> Study:
        if study_id not in self._studies:
            self._studies[study_id] = session.get(Study, study_id)  # expire_on_commit=False keeps its values
        return self._studies[study_id]

    # --- studies ------------------------------------------------------------------------------------------
    def study_by_name(self, session: Session, name: Optional[str]) -> Study:
        return protocol.find_study(session, name)

    def study_info(self, name: Optional[str] = None) -> dict:
        with self.factory() as session:
            study = self.study_by_name(session, name)
            return {"name": study.name, "mode": study.mode, "presentation": study.presentation,
                    "display_ms": study.display_ms, "consent_version": study.consent_version,
                    "minimum_window": protocol.minimum_window(study), "allow_touch": bool(study.allow_touch)}

    # --- participants -------------------------------------------------------------------------------------
    def start(self, study_name: Optional[str], consented: bool, external_id: Optional[str] = None,
              age_band: Optional[str] = None, color_vision: Optional[str] = None, screen: Optional[str] = None,
              simulated: bool = False, device: "protocol.Device | None" = None) -> ParticipantState:
        """Registers a consenting participant. ``device`` (the browser's window and pointer) is checked first:
        a window too small for the stimuli or a touch-only device is refused before anyone is registered."""
        with self._write() as session:
            study = self.study_by_name(session, study_name)
            protocol.check_device(study, device)
            if not consented:
                raise protocol.StudyError("Please tick the consent box to take part.")
            participant = protocol.join_study(session, study, external_id, age_band, color_vision, screen, simulated,
                                              device)
            return self._state(session, protocol.participant_by_token(session, participant.token))

    def resume(self, token: Optional[str], external_id: Optional[str] = None) -> ParticipantState:
        """The participant's current screen. A token saved by someone else on a shared browser (the link now
        carries another external id) is not theirs: StudyError, so the newcomer starts afresh."""
        with self._write() as session:
            participant = protocol.participant_by_token(session, token)
            if external_id:
                study = self._study(session, participant.study_id)
                if participant.external_id_hash != protocol.hash_external_id(study, external_id):
                    raise protocol.StudyError("This browser's saved session belongs to another participant.")
            protocol.touch(session, participant)
            study = self._study(session, participant.study_id)
            if study.display_ms:  # a timed trial already shown before this reload is not shown again
                while (pending := protocol.next_trial(session, participant.id)) is not None and \
                        protocol.was_shown(session, pending.id):
                    protocol.record_interrupted(session, pending.id, study)
            return self._state(session, participant)

    def peek(self, token: Optional[str]) -> ParticipantState:
        """Whether the token's session is finished, without touching it (read only; ``trial`` is not filled in)."""
        with self.factory() as session:
            participant = protocol.participant_by_token(session, token)
            done = participant.status == "completed" or protocol.next_trial(session, participant.id) is None
            return ParticipantState(participant.token, None if done else _PEEKED, participant.completion_code)

    def answer(self, token: Optional[str], trial_id: int, answer: str, response_ms: float | None = None,
               measured_display_ms: float | None = None) -> ParticipantState:
        """Stores the answer (committed before returning) and returns the next trial."""
        with self._write() as session:
            participant = protocol.participant_by_token(session, token)
            study = self._study(session, participant.study_id)
            result = protocol.record_response(session, participant, int(trial_id), answer, response_ms,
                                              measured_display_ms, study)
            feedback = self._practice_feedback(study, result) if result.created and result.kind == "practice" else None
            reviewed = None
            if feedback:  # the feedback is read beside the pair it is about, shown again (a timed one had vanished)
                images = protocol.trial_image_ids(session, int(trial_id))
                reviewed = TrialView(int(trial_id), 0, 0, True, images, study.mode, study.presentation, None)
            # after practice feedback the next trial waits for "Continue" (a resume): it is not on screen yet
            state = self._state(session, participant, feedback=feedback, duplicate=not result.created,
                                showing=feedback is None)
            return dataclasses.replace(state, reviewed=reviewed) if reviewed else state

    def image_png(self, public_id: str) -> bytes:
        """A stimulus as stored (compressed PNG), by its opaque id (cached: stimuli never change)."""
        if public_id not in self._image_cache:
            with self.factory() as session:
                content = session.scalar(select(Stimulus.content).where(Stimulus.public_id == public_id))
            if content is None:
                raise protocol.StudyError("unknown image")
            self._image_cache[public_id] = content
        return self._image_cache[public_id]

    def served_image(self, public_id: str) -> "ServedImage":
        """What a participant's browser receives: the stimulus re-encoded as an uncompressed PNG, as a ``data:`` URI.

        Every stimulus of a given size then has exactly the same length and chunk layout: the file size (and the
        compressed-stream length inside it), which is larger for real photos' noisier chroma, carries nothing.
        Only the pixels differ. Cached: re-encoding and base64 of 300 kB are not free at 20 answers a second."""
        return _served_image(self.image_png(public_id))

    # --- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _practice_feedback(study: Study, result: protocol.Answer) -> str:
        verdict = "Correct!" if result.correct else "Not quite."
        if study.mode == "single":
            truth = "real colours" if result.is_real else "colours made up by a computer"
            return f"{verdict} That photo had {truth}. (Practice: this answer is not counted.)"
        side = ("first", "second") if study.presentation == "sequential" else ("left", "right")
        return f"{verdict} The real photo was the {side[result.real_side]} one. (Practice: not counted.)"

    def _state(self, session: Session, participant: protocol.ParticipantRow, feedback: str | None = None,
               duplicate: bool = False, showing: bool = True) -> ParticipantState:
        trial = protocol.next_trial(session, participant.id)
        study = self._study(session, participant.study_id)
        if trial is None:
            code = protocol.finish(session, participant)
            return ParticipantState(participant.token, None, code, feedback, duplicate, study.completion_url)
        if study.display_ms and showing:
            protocol.mark_shown(session, trial.id)
        if participant.id not in self._trial_counts:
            self._trial_counts[participant.id] = (protocol.trial_count(session, participant.id),
                                                  protocol.trial_count(session, participant.id, kind="practice"))
        total, practice = self._trial_counts[participant.id]
        # trials are answered in order, so the first unanswered one's position is the number answered
        view = TrialView(trial.id, trial.position + 1, total, trial.kind == "practice", trial.image_ids, study.mode,
                         study.presentation, study.display_ms, practice)
        return ParticipantState(participant.token, view, None, feedback, duplicate)


@dataclass(frozen=True)
class ServedImage:
    data_uri: str
    width: int
    height: int


@functools.lru_cache(maxsize=256)
def _served_image(content: bytes) -> ServedImage:
    with Image.open(io.BytesIO(content)) as image:
        rgb = image.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", compress_level=0)  # no metadata chunks; stored (not deflated) blocks
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return ServedImage(uri, rgb.width, rgb.height)
