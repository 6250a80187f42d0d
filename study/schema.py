"""ORM tables of the perception study (SQLAlchemy 2.0 typed declarative models).

studies -> study_models (conditions), source_photos -> stimuli; participants -> trials -> responses.
A response is unique per trial; a participant's (study, external id hash) pair is unique; trial positions are
unique per participant. Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores UTC; always returns timezone-aware datetimes (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    mode: Mapped[str] = mapped_column(String(10))  # "single" (real or colorized?) or "2afc" (which one is real?)
    presentation: Mapped[str] = mapped_column(String(12), default="together")  # 2afc: "together" or "sequential"
    display_ms: Mapped[Optional[int]] = mapped_column(Integer)  # None: until answered; else shown this long
    consent_version: Mapped[str] = mapped_column(String(20))
    exclusion_rules: Mapped[dict] = mapped_column(JSON)  # fixed at creation, before any data
    list_count: Mapped[int] = mapped_column(Integer)  # Latin-square lists
    # None: every participant sees every model; k: each sees k of them (subsets balanced across participants)
    models_per_participant: Mapped[Optional[int]] = mapped_column(Integer)
    stimulus_size: Mapped[int] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    id_salt: Mapped[str] = mapped_column(String(64))  # salt of external-id hashes (never exported)
    practice_trials: Mapped[int] = mapped_column(Integer, default=2)
    completion_url: Mapped[Optional[str]] = mapped_column(String(500))  # e.g. Prolific's ...?cc={code}
    # the browser check before consent (None: the window the stimuli need, study.protocol.minimum_window; no touch-only)
    min_window_width: Mapped[Optional[int]] = mapped_column(Integer)
    min_window_height: Mapped[Optional[int]] = mapped_column(Integer)
    allow_touch: Mapped[Optional[bool]] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conditions: Mapped[list["StudyModel"]] = relationship(back_populates="study", order_by="StudyModel.position")
    photos: Mapped[list["SourcePhoto"]] = relationship(back_populates="study", order_by="SourcePhoto.position")


class StudyModel(Base):
    """A condition: "real" or a colorizer's name."""

    __tablename__ = "study_models"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)  # order in the Latin square
    is_real: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    # SHA-256 of the weights file (and preset) that made this condition's images: a name can be reused by new weights
    weights_sha256: Mapped[Optional[str]] = mapped_column(String(64))

    study: Mapped[Study] = relationship(back_populates="conditions")


class SourcePhoto(Base):
    __tablename__ = "source_photos"
    __table_args__ = (UniqueConstraint("study_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))  # original file name: for reports only, never shown
    role: Mapped[str] = mapped_column(String(10))  # "main", "sentinel" or "practice"

    study: Mapped[Study] = relationship(back_populates="photos")
    stimuli: Mapped[list["Stimulus"]] = relationship(back_populates="photo")


class Stimulus(Base):
    """One image, stored in the database so any SQLAlchemy URL serves a complete study.

    ``public_id`` is random: nothing a participant's browser receives reveals the condition.
    """

    __tablename__ = "stimuli"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("source_photos.id"), index=True)
    condition: Mapped[str] = mapped_column(String(100))  # "real", a model name, or "sentinel"
    sentinel_kind: Mapped[Optional[str]] = mapped_column(String(20))  # "hue_rotated" / "channel_swapped"
    is_real: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))  # the PNG file, metadata-free
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    psnr: Mapped[Optional[float]] = mapped_column(Float)  # against the real photo; None for the real one
    ssim: Mapped[Optional[float]] = mapped_column(Float)  # SSIM of the RGB image against the real photo
    mse: Mapped[Optional[float]] = mapped_column(Float)  # mean squared error of RGB in [0, 1] (DeepColor, OrGANic)
    colorfulness: Mapped[float] = mapped_column(Float)

    photo: Mapped[SourcePhoto] = relationship(back_populates="stimuli")


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "external_id_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # the browser's resume key
    external_id_hash: Mapped[Optional[str]] = mapped_column(String(64))  # salted hash (e.g. of a Prolific PID)
    list_index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)  # trial order
    consent_version: Mapped[str] = mapped_column(String(20))
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    age_band: Mapped[Optional[str]] = mapped_column(String(20))
    color_vision: Mapped[Optional[str]] = mapped_column(String(20))  # self-reported: "normal", "deficient", "unsure"
    screen: Mapped[Optional[str]] = mapped_column(String(20))
    window_width: Mapped[Optional[int]] = mapped_column(Integer)  # measured in the browser at Start (CSS pixels)
    window_height: Mapped[Optional[int]] = mapped_column(Integer)
    touch_only: Mapped[Optional[bool]] = mapped_column(Boolean)  # no mouse or trackpad (pointer: coarse only)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active / completed / abandoned
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    completion_code: Mapped[Optional[str]] = mapped_column(String(16))
    is_simulated: Mapped[bool] = mapped_column(Boolean, default=False)

    trials: Mapped[list["Trial"]] = relationship(back_populates="participant", order_by="Trial.position")


class Trial(Base):
    """One screen. Single mode: ``stimulus``; 2AFC: ``stimulus`` left/first and ``other`` right/second."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("participant_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # "practice", "main" or "sentinel"
    condition: Mapped[str] = mapped_column(String(100))  # what is being judged: "real", a model, "sentinel"
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimuli.id"), index=True)
    other_stimulus_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stimuli.id"), index=True)
    real_side: Mapped[Optional[int]] = mapped_column(Integer)  # 2AFC: 0 if ``stimulus`` is the real one, else 1
    shown_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # timed studies: first put on screen

    participant: Mapped[Participant] = relationship(back_populates="trials")
    stimulus: Mapped[Stimulus] = relationship(foreign_keys=[stimulus_id])
    other_stimulus: Mapped[Optional[Stimulus]] = relationship(foreign_keys=[other_stimulus_id])
    response: Mapped[Optional["Response"]] = relationship(back_populates="trial", uselist=False)


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), unique=True)  # once per trial
    answer: Mapped[str] = mapped_column(String(10))  # single: "real"/"fake"; 2afc: "0"/"1" (side chosen as real);
    # "interrupt": a timed trial shown before a reload, never shown again (excluded by a rule fixed in advance)
    judged_real: Mapped[bool] = mapped_column(Boolean)  # single: said "real"; 2afc: picked the fake as real
    correct: Mapped[bool] = mapped_column(Boolean)
    response_ms: Mapped[Optional[float]] = mapped_column(Float)  # measured in the browser
    intended_display_ms: Mapped[Optional[int]] = mapped_column(Integer)
    measured_display_ms: Mapped[Optional[float]] = mapped_column(Float)  # measured in the browser
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="response")


class BuildClaim(Base):
    """One process's claim to build a study that several app processes want (the default study): the others wait
    for it instead of building it too. ``heartbeat_at`` moves on every photo; a claim silent for minutes belonged to
    a process that died, and may be taken over."""

    __tablename__ = "build_claims"

    study_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_photos: Mapped[int] = mapped_column(Integer, default=0)
    total_photos: Mapped[int] = mapped_column(Integer, default=0)
