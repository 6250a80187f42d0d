"""The participant-facing operations, one transaction each. The Gradio tab and the simulator both call these,
so a simulated study exercises exactly the code real participants go through.

Nothing returned here reveals a trial's condition: a trial view carries opaque image ids only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from study import protocol
from study.schema import Participant, Stimulus, Study, Trial


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


@dataclass(frozen=True)
class ParticipantState:
    token: str
    trial: Optional[TrialView]  # None once finished
    completion_code: Optional[str] = None
    feedback: Optional[str] = None  # after a practice answer
    duplicate: bool = False  # the answer was for a trial already answered (double click, resubmit)

    @property
    def done(self) -> bool:
        return self.trial is None


@dataclass
class StudyService:
    factory: sessionmaker[Session]
    _image_cache: dict = field(default_factory=dict)

    # --- studies ------------------------------------------------------------------------------------------
    def study_by_name(self, session: Session, name: Optional[str]) -> Study:
        if name:
            study = session.scalar(select(Study).where(Study.name == name))
        else:  # the default study, else the newest
            study = session.scalar(select(Study).order_by(Study.is_default.desc(), Study.id.desc()).limit(1))
        if study is None:
            raise protocol.StudyError(f"no study named {name!r}" if name else "no study has been built yet")
        return study

    def study_info(self, name: Optional[str] = None) -> dict:
        with self.factory() as session:
            study = self.study_by_name(session, name)
            return {"name": study.name, "mode": study.mode, "presentation": study.presentation,
                    "display_ms": study.display_ms, "consent_version": study.consent_version}

    # --- participants -------------------------------------------------------------------------------------
    def start(self, study_name: Optional[str], consented: bool, external_id: Optional[str] = None,
              age_band: Optional[str] = None, color_vision: Optional[str] = None, screen: Optional[str] = None,
              simulated: bool = False) -> ParticipantState:
        if not consented:
            raise protocol.StudyError("Please tick the consent box to take part.")
        with self.factory.begin() as session:
            study = self.study_by_name(session, study_name)
            participant = protocol.join_study(session, study, external_id, age_band, color_vision, screen, simulated)
            return self._state(session, participant)

    def resume(self, token: Optional[str]) -> ParticipantState:
        with self.factory.begin() as session:
            participant = protocol.participant_by_token(session, token)
            if participant.status == "abandoned":
                participant.status = "active"
            participant.last_seen_at = protocol.utcnow()
            return self._state(session, participant)

    def answer(self, token: Optional[str], trial_id: int, answer: str, response_ms: float | None = None,
               measured_display_ms: float | None = None) -> ParticipantState:
        """Stores the answer (committed before returning) and returns the next trial."""
        with self.factory.begin() as session:
            participant = protocol.participant_by_token(session, token)
            response, created = protocol.record_response(session, participant, int(trial_id), answer, response_ms,
                                                         measured_display_ms)
            trial = session.get(Trial, int(trial_id))
            feedback = None
            if created and trial.kind == "practice":
                feedback = self._practice_feedback(session, trial, response.correct)
            protocol.finish_if_done(session, participant)
            return self._state(session, participant, feedback=feedback, duplicate=not created)

    def image_png(self, public_id: str) -> bytes:
        """A stimulus file by its opaque id (cached: stimuli never change)."""
        if public_id not in self._image_cache:
            with self.factory() as session:
                content = session.scalar(select(Stimulus.content).where(Stimulus.public_id == public_id))
            if content is None:
                raise protocol.StudyError("unknown image")
            self._image_cache[public_id] = content
        return self._image_cache[public_id]

    # --- helpers ------------------------------------------------------------------------------------------
    def _practice_feedback(self, session: Session, trial: Trial, correct: bool) -> str:
        study = session.get(Study, trial.participant.study_id)
        verdict = "Correct!" if correct else "Not quite."
        if study.mode == "single":
            truth = "real colours" if trial.stimulus.is_real else "colours made up by a computer"
            return f"{verdict} That photo had {truth}. (Practice: this answer is not counted.)"
        side = ("first", "second") if study.presentation == "sequential" else ("left", "right")
        return f"{verdict} The real photo was the {side[trial.real_side]} one. (Practice: not counted.)"

    def _state(self, session: Session, participant: Participant, feedback: str | None = None,
               duplicate: bool = False) -> ParticipantState:
        trial = protocol.next_trial(session, participant)
        if trial is None:
            protocol.finish_if_done(session, participant)
            return ParticipantState(participant.token, None, participant.completion_code, feedback, duplicate)
        study = session.get(Study, participant.study_id)
        answered, total = protocol.progress_of(session, participant)
        images = (trial.stimulus.public_id,) + ((trial.other_stimulus.public_id,) if trial.other_stimulus else ())
        view = TrialView(trial.id, answered + 1, total, trial.kind == "practice", images, study.mode,
                         study.presentation, study.display_ms)
        return ParticipantState(participant.token, view, None, feedback, duplicate)
