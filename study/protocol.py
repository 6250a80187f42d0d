"""Assignment and the participant's path through a study (see PROTOCOL.md).

Every function takes a ``session``; the caller owns the transaction (``with factory.begin() as session``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from study.schema import Participant, Response, SourcePhoto, Stimulus, Study, Trial, utcnow

CONSENT_VERSION = "2026-12-v2"  # v2: the browser window's size and pointer type are stored
CONSENT_TEXT = """\
**Consent.** This is a short study of how people perceive photographs. You will see photos and judge whether their
colours are real. It takes about 5 minutes. Taking part is voluntary and you may stop at any time by closing the page.
We store your answers, response times, your browser window's size and whether it has a mouse, and the optional
answers you give about yourself (age band, colour vision, screen type). We store no name, no e-mail and no IP
address; an external participant id (for example from Prolific) is stored only as a salted hash. Anonymous results
may be published.
"""
INSTRUCTIONS = {
    "single": "Each photo is either a **real colour photo** or a **black-and-white photo colorized by a computer**. "
              "For each one, answer **Real** or **Colorized**. Go with your first impression.",
    "2afc": "Each screen shows **two versions of the same photo**: one has its real colours, the other was "
            "colorized by a computer from black and white. Pick the one you think is **real**.",
}
DEFAULT_RULES = {
    "min_sentinel_accuracy": 1.0,  # share of attention checks a participant must get right
    "min_median_response_ms": 300,  # a participant answering faster than this (median) was not looking
    "fast_response_ms": 150,  # single answers faster than this are dropped
    "max_same_answer_share": 0.9,  # one answer (or side) on 90% of counted trials and never the other where it was
    # right: straight-lining, judged against the participant's own trial mix (analysis.is_straight_lining)
    "require_complete": True,  # incomplete sessions are excluded
}
INTERRUPTED = "interrupt"  # the stored answer of a timed trial a reload cut short (never shown twice)
ABANDON_AFTER = timedelta(minutes=30)  # an active participant silent this long frees their list slot


class StudyError(ValueError):
    """A participant-facing problem (unknown token, finished study, id already used...)."""


def find_study(session: Session, name: Optional[str]) -> Study:
    """The study called ``name``; without a name the default study, else the newest."""
    if name:
        study = session.scalar(select(Study).where(Study.name == name))
    else:
        study = session.scalar(select(Study).order_by(Study.is_default.desc(), Study.id.desc()).limit(1))
    if study is None:
        raise StudyError(f"no study named {name!r}" if name else "no study has been built yet")
    return study


MAX_EXTERNAL_ID = 200  # characters; a longer id is refused, not cut (two ids equal in their first 200 must differ)


def hash_external_id(study: Study, external_id: str) -> str:
    if len(external_id.strip()) > MAX_EXTERNAL_ID:
        raise StudyError(f"That participant id is longer than {MAX_EXTERNAL_ID} characters; please check the link.")
    return hmac.new(study.id_salt.encode(), external_id.strip().encode(), hashlib.sha256).hexdigest()


def mark_abandoned(session: Session, study: Study, now: datetime | None = None) -> int:
    """Active participants not seen for ``ABANDON_AFTER`` become "abandoned"; their list is re-opened."""
    cutoff = (now or utcnow()) - ABANDON_AFTER
    result = session.execute(update(Participant)
                             .where(Participant.study_id == study.id, Participant.status == "active",
                                    Participant.last_seen_at < cutoff)
                             .values(status="abandoned"))
    return result.rowcount or 0


@dataclass(frozen=True)
class Device:
    """What the browser says about itself when the participant presses Start (CSS pixels)."""

    window_width: int
    window_height: int
    touch_only: bool

    @classmethod
    def from_payload(cls, payload: object) -> "Device | None":
        """The browser's JSON object, or None when it sent none or something malformed (an API client)."""
        if not isinstance(payload, dict):
            return None
        width, height, touch = payload.get("width"), payload.get("height"), payload.get("touch_only")
        numbers = [v for v in (width, height) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) != 2 or not all(0 <= v < 100_000 for v in numbers):
            return None
        return cls(int(width), int(height), bool(touch))


def minimum_window(study: Study) -> tuple[int, int]:
    """The smallest browser window (CSS pixels) that shows the study's stimuli at their full size: a pair side by
    side gets at most 44% of the width each, a single photo 92%; below them the counter and the answer buttons."""
    share = 0.44 if study.mode == "2afc" and study.presentation == "together" else 0.92
    width = study.min_window_width or math.ceil(study.stimulus_size / share)
    height = study.min_window_height or study.stimulus_size + 240
    return width, height


def check_device(study: Study, device: Device | None) -> None:
    """Refuses, before anyone is registered, a window too small to show the photos at full size and (unless the
    study allows it) a touch-only device: phones show photos small, and size changes what people see."""
    if device is None:
        return
    width, height = minimum_window(study)
    if device.touch_only and not study.allow_touch:
        raise StudyError("This study needs a computer with a mouse or trackpad; phones and touch-only tablets cannot "
                         "take part. Please open the link on a computer.")
    if device.window_width < width or device.window_height < height:
        raise StudyError(f"This study needs a browser window of at least {width} x {height} pixels to show the "
                         f"photos at full size; yours is {device.window_width} x {device.window_height}. Please "
                         "enlarge the window (or zoom out) and press Start again.")


def next_list_index(session: Session, study: Study) -> int:
    """The list with the fewest completed sessions (what the analysis will hold), ties broken by the fewest active
    ones: abandoned and excluded-for-leaving sessions do not unbalance the design."""
    counts = {(index, status): count for index, status, count in session.execute(
        select(Participant.list_index, Participant.status, func.count())
        .where(Participant.study_id == study.id, Participant.status.in_(("active", "completed")))
        .group_by(Participant.list_index, Participant.status)).all()}
    return min(range(study.list_count),
               key=lambda index: (counts.get((index, "completed"), 0), counts.get((index, "active"), 0), index))


def _stimuli_by_photo(session: Session, study: Study) -> dict[int, dict[str, list[Stimulus]]]:
    rows = session.scalars(select(Stimulus).join(SourcePhoto).where(SourcePhoto.study_id == study.id)).all()
    table: dict[int, dict[str, list[Stimulus]]] = {}
    for stimulus in rows:
        table.setdefault(stimulus.photo_id, {}).setdefault(stimulus.condition, []).append(stimulus)
    return table


def conditions_of(study: Study) -> list[str]:
    """The Latin square's conditions: "real" and each model (single); each model (2AFC: real is the other side)."""
    names = [c.name for c in study.conditions]
    return [n for n in names if n != "real"] if study.mode == "2afc" else names


def participant_conditions(study: Study, list_index: int) -> tuple[list[str], int]:
    """The conditions a participant on list ``list_index`` sees, and the rotation of photos over them.

    With ``models_per_participant`` k of C models, subset s holds models s, s+1, ..., s+k-1 (mod C), so every model
    is in k of the C subsets; within a subset each rotation puts every photo in every condition once. Over all lists
    every photo appears equally often in every model (and, in single mode, as a real photo in 1/(k+1) of trials).
    """
    conditions = conditions_of(study)
    per_participant = study.models_per_participant
    models = [c for c in conditions if c != "real"]
    if per_participant is None or per_participant >= len(models):
        return conditions, list_index
    rotations = per_participant if study.mode == "2afc" else per_participant + 1
    subset_index, rotation = divmod(list_index, rotations)
    subset = [models[(subset_index + i) % len(models)] for i in range(per_participant)]
    return (subset if study.mode == "2afc" else ["real", *subset]), rotation


def make_trials(session: Session, study: Study, participant: Participant) -> list[Trial]:
    """Practice trials first, then main and sentinel trials in a per-participant shuffled order.

    Main photo j gets condition (j + rotation) mod C of the participant's conditions, so across the lists every photo
    appears in every condition and each participant sees each photo once.
    """
    rng = random.Random(participant.seed)
    stimuli = _stimuli_by_photo(session, study)
    conditions, rotation = participant_conditions(study, participant.list_index)
    photos = sorted(study.photos, key=lambda p: p.position)
    main = [p for p in photos if p.role == "main"]
    trials: list[Trial] = []

    def trial(kind: str, condition: str, shown: Stimulus, real: Stimulus | None) -> Trial:
        if study.mode == "single":
            return Trial(kind=kind, condition=condition, stimulus=shown)
        real_side = rng.randrange(2)  # which side the real photo is on
        first, second = (real, shown) if real_side == 0 else (shown, real)
        return Trial(kind=kind, condition=condition, stimulus=first, other_stimulus=second, real_side=real_side)

    practice = []
    for photo in (p for p in photos if p.role == "practice"):
        real = stimuli[photo.id]["real"][0]
        sentinels = stimuli[photo.id].get("sentinel", [])
        models = [c for c in conditions if c != "real" and c in stimuli[photo.id]]
        # an obvious fake, a real photo, a real model's colorization (what the main trials will look like)
        shown = [("sentinel", sentinels[0])] if sentinels else []
        if study.mode == "single":
            shown.append(("real", real))
        if models:
            shown.append((models[0], stimuli[photo.id][models[0]][0]))
        shown += [("sentinel", other) for other in sentinels[1:]]
        for condition, stimulus in shown:
            practice.append(trial("practice", condition, stimulus, real if study.mode == "2afc" else None))
    trials += practice[: study.practice_trials]
    body = []
    for index, photo in enumerate(main):
        condition = conditions[(index + rotation) % len(conditions)]
        shown = stimuli[photo.id][condition][0]
        body.append(trial("main", condition, shown, stimuli[photo.id]["real"][0]))
    for photo in (p for p in photos if p.role == "sentinel"):
        sentinel = stimuli[photo.id]["sentinel"][0]
        body.append(trial("sentinel", "sentinel", sentinel, stimuli[photo.id]["real"][0]))
    rng.shuffle(body)
    trials += body
    for position, item in enumerate(trials):
        item.position = position
        participant.trials.append(item)  # only the kept trials join the session (one-to-many side cascades)
    return trials


def join_study(session: Session, study: Study, external_id: Optional[str] = None, age_band: Optional[str] = None,
               color_vision: Optional[str] = None, screen: Optional[str] = None,
               simulated: bool = False, device: Device | None = None) -> Participant:
    """Registers a consenting participant and assigns their trials. An external id that already completed the
    study is refused; one that is still active gets its existing session back (a reconnect)."""
    external_hash = hash_external_id(study, external_id) if external_id else None
    if external_hash:
        existing = session.scalar(select(Participant).where(Participant.study_id == study.id,
                                                            Participant.external_id_hash == external_hash))
        if existing is not None:
            if existing.status == "completed":
                raise StudyError("This participant id has already completed the study. Thank you!")
            existing.status, existing.last_seen_at = "active", utcnow()
            return existing
    mark_abandoned(session, study)
    participant = Participant(study_id=study.id, token=secrets.token_urlsafe(24), external_id_hash=external_hash,
                              list_index=next_list_index(session, study), seed=secrets.randbelow(2 ** 31),
                              consent_version=study.consent_version, age_band=age_band or None,
                              color_vision=color_vision or None, screen=screen or None, is_simulated=simulated,
                              window_width=device.window_width if device else None,
                              window_height=device.window_height if device else None,
                              touch_only=device.touch_only if device else None)
    session.add(participant)
    try:
        session.flush()
    except IntegrityError:
        raise StudyError("This participant id is already taking the study in another window.") from None
    make_trials(session, study, participant)
    session.flush()
    return participant


@dataclass(frozen=True)
class ParticipantRow:
    """The columns the answer path needs (read with one Core query, no ORM object)."""

    id: int
    study_id: int
    token: str
    status: str
    completion_code: Optional[str]
    external_id_hash: Optional[str] = None


@dataclass(frozen=True)
class PendingTrial:
    id: int
    position: int
    kind: str
    image_ids: tuple[str, ...]


# The answer path's statements, built once over the tables with bound parameters. Building a statement and the
# ORM's execution layer cost several times what SQLite itself does per answer (bench/RESULTS.md).
_participants, _trials, _stimuli, _responses = (m.__table__ for m in (Participant, Trial, Stimulus, Response))
_other = _stimuli.alias("other_stimulus")
_PARTICIPANT_BY_TOKEN = (select(_participants.c.id, _participants.c.study_id, _participants.c.token,
                                _participants.c.status, _participants.c.completion_code,
                                _participants.c.external_id_hash)
                         .where(_participants.c.token == bindparam("token")))
_TOUCH = (update(_participants).where(_participants.c.id == bindparam("participant_id"))
          .values(last_seen_at=bindparam("now")))
_TOUCH_AND_REACTIVATE = _TOUCH.values(status="active")
_NEXT_TRIAL = (select(_trials.c.id, _trials.c.position, _trials.c.kind, _stimuli.c.public_id, _other.c.public_id)
               .select_from(_trials.join(_stimuli, _stimuli.c.id == _trials.c.stimulus_id)
                            .outerjoin(_other, _other.c.id == _trials.c.other_stimulus_id)
                            .outerjoin(_responses, _responses.c.trial_id == _trials.c.id))
               .where(_trials.c.participant_id == bindparam("participant_id"), _responses.c.id.is_(None))
               .order_by(_trials.c.position).limit(1))
_TRIAL_TO_SCORE = (select(_trials.c.participant_id, _trials.c.kind, _trials.c.real_side, _stimuli.c.is_real)
                   .select_from(_trials.join(_stimuli, _stimuli.c.id == _trials.c.stimulus_id))
                   .where(_trials.c.id == bindparam("trial_id")))
# INSERT .. ON CONFLICT DO NOTHING: a concurrent duplicate is a no-op, not an error that spoils the session
_INSERT_ONCE = {"sqlite": sqlite_insert(_responses).on_conflict_do_nothing(index_elements=["trial_id"]),
                "postgresql": postgresql_insert(_responses).on_conflict_do_nothing(index_elements=["trial_id"])}
_STORED_CORRECT = select(_responses.c.correct).where(_responses.c.trial_id == bindparam("trial_id"))


def participant_by_token(session: Session, token: str | None) -> ParticipantRow:
    row = session.execute(_PARTICIPANT_BY_TOKEN, {"token": token}).first() if token else None
    if row is None:
        raise StudyError("Your session was not found. Please start the study again.")
    return ParticipantRow(*row)


def touch(session: Session, participant: ParticipantRow) -> None:
    """Marks the participant as seen now (and active again if they had been marked abandoned)."""
    statement = _TOUCH_AND_REACTIVATE if participant.status == "abandoned" else _TOUCH
    session.execute(statement, {"participant_id": participant.id, "now": utcnow()})


def next_trial(session: Session, participant_id: int) -> PendingTrial | None:
    """The first trial without a response (None when all are answered) and its images' public ids."""
    row = session.execute(_NEXT_TRIAL, {"participant_id": participant_id}).first()
    if row is None:
        return None
    return PendingTrial(row[0], row[1], row[2], tuple(i for i in row[3:] if i is not None))


_TRIAL_IMAGES = (select(_stimuli.c.public_id, _other.c.public_id)
                 .select_from(_trials.join(_stimuli, _stimuli.c.id == _trials.c.stimulus_id)
                              .outerjoin(_other, _other.c.id == _trials.c.other_stimulus_id))
                 .where(_trials.c.id == bindparam("trial_id")))


def trial_image_ids(session: Session, trial_id: int) -> tuple[str, ...]:
    """The public ids of a trial's image(s), left/first first."""
    row = session.execute(_TRIAL_IMAGES, {"trial_id": trial_id}).first()
    return tuple(i for i in row if i is not None) if row else ()


def trial_count(session: Session, participant_id: int, kind: Optional[str] = None) -> int:
    """The participant's number of trials (of ``kind`` only, when given)."""
    query = select(func.count()).select_from(Trial).where(Trial.participant_id == participant_id)
    if kind is not None:
        query = query.where(Trial.kind == kind)
    return session.scalar(query) or 0


_MARK_SHOWN = (update(_trials).where(_trials.c.id == bindparam("trial_id"), _trials.c.shown_at.is_(None))
               .values(shown_at=bindparam("now")))
_SHOWN_AT = select(_trials.c.shown_at).where(_trials.c.id == bindparam("trial_id"))


def mark_shown(session: Session, trial_id: int) -> None:
    """Records that a timed trial is on screen now (the first time only)."""
    session.execute(_MARK_SHOWN, {"trial_id": trial_id, "now": utcnow()})


def was_shown(session: Session, trial_id: int) -> bool:
    return session.scalar(_SHOWN_AT, {"trial_id": trial_id}) is not None


def record_interrupted(session: Session, trial_id: int, study: Study) -> None:
    """A timed trial already shown, then cut short by a reload: stored as interrupted (it is not shown again, so its
    exposure stays what the design says); analysis leaves it out."""
    values = dict(trial_id=trial_id, answer=INTERRUPTED, judged_real=False, correct=False, response_ms=None,
                  intended_display_ms=study.display_ms, measured_display_ms=None, created_at=utcnow())
    dialect = session.get_bind().dialect.name
    if dialect in _INSERT_ONCE:
        session.execute(_INSERT_ONCE[dialect], values)
    elif session.scalar(select(Response.id).where(Response.trial_id == trial_id)) is None:
        session.execute(Response.__table__.insert().values(**values))


def score(mode: str, answer: str, shown_is_real: bool, real_side: int | None) -> tuple[bool, bool]:
    """(judged_real, correct) of ``answer``. Single: "real"/"fake". 2AFC: "0"/"1", the side chosen as real;
    judged_real then means the fake was picked as the real one (the participant was fooled)."""
    if mode == "single":
        if answer not in ("real", "fake"):
            raise StudyError(f"answer must be 'real' or 'fake', got {answer!r}")
        said_real = answer == "real"
        return said_real, said_real == shown_is_real
    if answer not in ("0", "1"):
        raise StudyError(f"answer must be '0' or '1', got {answer!r}")
    correct = int(answer) == real_side
    return not correct, correct


@dataclass(frozen=True)
class Answer:
    created: bool  # False: the trial already had a response (double click, resubmit), which is kept
    correct: bool
    kind: str  # the trial's kind: "practice", "main" or "sentinel"
    is_real: bool  # the (first) image shown was the real photo
    real_side: Optional[int]


def record_response(session: Session, participant: ParticipantRow, trial_id: int, answer: str,
                    response_ms: float | None, measured_display_ms: float | None, study: Study) -> Answer:
    """Stores the answer to ``trial_id`` once; a second answer to the same trial leaves the first in place."""
    trial = session.execute(_TRIAL_TO_SCORE, {"trial_id": trial_id}).first()
    if trial is None or trial[0] != participant.id:
        raise StudyError("That trial does not belong to this session.")
    _, kind, real_side, is_real = trial
    judged_real, correct = score(study.mode, answer, is_real, real_side)
    pending = next_trial(session, participant.id)
    if pending is None or pending.id != trial_id:
        # only the trial on screen takes an answer; an answered one keeps its first answer (double click, resubmit)
        stored = session.scalar(_STORED_CORRECT, {"trial_id": trial_id})
        if stored is None:
            raise StudyError("That answer was for a photo that is not on screen; it was not stored.")
        return Answer(False, bool(stored), kind, is_real, real_side)
    values = dict(trial_id=trial_id, answer=answer, judged_real=judged_real, correct=correct,
                  response_ms=_clean_ms(response_ms), intended_display_ms=study.display_ms,
                  measured_display_ms=_clean_ms(measured_display_ms), created_at=utcnow())
    dialect = session.get_bind().dialect.name
    if dialect in _INSERT_ONCE:
        created = session.execute(_INSERT_ONCE[dialect], values).rowcount == 1
    else:
        exists = session.scalar(select(Response.id).where(Response.trial_id == trial_id))
        if exists is None:
            session.execute(Response.__table__.insert().values(**values))  # the unique key still guards a race
        created = exists is None
    if not created:
        stored = session.scalar(_STORED_CORRECT, {"trial_id": trial_id})
        return Answer(False, bool(stored), kind, is_real, real_side)
    touch(session, participant)
    return Answer(True, correct, kind, is_real, real_side)


def _clean_ms(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value < 3_600_000 else None


def finish(session: Session, participant: ParticipantRow) -> str:
    """Marks the participant completed with a completion code (once) and returns the code."""
    if participant.status == "completed" and participant.completion_code:
        return participant.completion_code
    code = secrets.token_hex(4).upper()
    session.execute(update(Participant).where(Participant.id == participant.id, Participant.status != "completed")
                    .values(status="completed", completed_at=datetime.now(timezone.utc), completion_code=code))
    return session.scalar(select(Participant.completion_code).where(Participant.id == participant.id))
