"""The study the app builds on first launch, so it is usable out of the box."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Optional

from sqlalchemy import select
from tqdm import tqdm
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from study.schema import BuildClaim, Study, utcnow
from study.stimuli import StudyDesign, build_study, default_photos

log = logging.getLogger(__name__)
DEFAULT_STUDY = "default"
STALE_CLAIM_SECONDS = 180.0  # a build claim without a heartbeat this long belongs to a process that died


# The default study's conditions: the default model, its vivid decoding, and DeepColor's two systems whose public
# acceptance the paper published (U-Net 53%, DenseNet 46%), here in the project's ab variant (the photo's own
# lightness; the paper's RGB networks are the -rgb models), so they are a reference point, not a replication. Four
# conditions keep 11 photos per condition per participant; every other shipped model is one `study build` away.
DEFAULT_MODELS = ("balanced", "vivid", "deepcolor-unet", "deepcolor-densenet")


def default_design() -> StudyDesign:
    """Two-alternative forced choice (Zhang et al. 2016's fool rate; 50% = indistinguishable from real): every trial
    shows a real photo beside a colorized one, so no base rate of real photos needs choosing and an accurate
    participant answers both sides equally often."""
    return StudyDesign(name=DEFAULT_STUDY, mode="2afc")


def default_models(available) -> list[str]:
    """The ``DEFAULT_MODELS`` among ``available`` names (in that order); with none of them, the first available."""
    chosen = [name for name in DEFAULT_MODELS if name in available]
    return chosen or list(available)[:1]


def default_study_name(factory: sessionmaker[Session]) -> str | None:
    """The name of the database's default study, or None before one is built."""
    with factory() as session:
        return session.scalar(select(Study.name).where(Study.is_default.is_(True)).limit(1))


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _owner_is_gone(owner: str) -> bool:
    """True when ``owner`` was a process on this machine that no longer runs (it cannot finish its build)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim_build(factory: sessionmaker[Session], name: str, stale_after: float = STALE_CLAIM_SECONDS) -> bool:
    """Claims the build of study ``name`` for this process: True when claimed (build it, then ``release_build``),
    False when a live claim of another process holds it. A claim whose heartbeat is older than ``stale_after``
    seconds is taken over (its process died mid-build; its transaction left nothing behind)."""
    owner = _owner()
    while True:
        try:
            with factory.begin() as session:
                session.add(BuildClaim(study_name=name, owner=owner))
            return True
        except IntegrityError:
            pass
        except OperationalError:  # SQLite: the builder's transaction holds the one write lock; wait for it
            return False
        with factory.begin() as session:
            claim = session.get(BuildClaim, name, with_for_update=True)
            if claim is None:  # released between the two statements; another process may insert first: start over
                continue
            silent = (utcnow() - claim.heartbeat_at).total_seconds()
            if silent < stale_after and not _owner_is_gone(claim.owner):
                return False
            log.warning("taking over the build of %r from %s (silent since %s)", name, claim.owner, claim.heartbeat_at)
            claim.owner, claim.claimed_at, claim.heartbeat_at, claim.done_photos = owner, utcnow(), utcnow(), 0
            return True


def heartbeat(factory: sessionmaker[Session], name: str, done: int, total: int) -> None:
    """Marks the claim alive, with the build's progress. Not on SQLite: its one writer at a time is the build's own
    transaction (and SQLite deployments are one process, whose dead predecessors ``claim_build`` recognises)."""
    if factory.kw["bind"].dialect.name == "sqlite":
        return
    with factory.begin() as session:
        claim = session.get(BuildClaim, name)
        if claim is not None:
            claim.heartbeat_at, claim.done_photos, claim.total_photos = utcnow(), done, total


def release_build(factory: sessionmaker[Session], name: str) -> None:
    with factory.begin() as session:
        claim = session.get(BuildClaim, name)
        if claim is not None:
            session.delete(claim)


def build_progress(factory: sessionmaker[Session], name: str) -> tuple[int, int] | None:
    """(done, total) photos of a build in progress in any process, or None when nobody is building ``name``."""
    with factory() as session:
        claim = session.get(BuildClaim, name)
        return (claim.done_photos, claim.total_photos) if claim else None


def ensure_default_study(factory: sessionmaker[Session], colorizers: dict, descriptions: dict | None = None,
                         progress: bool = False, on_photo=None, poll_seconds: float = 2.0,
                         stale_after: float = STALE_CLAIM_SECONDS) -> str | None:
    """Builds the default study (the shipped photo set of ``study/default_photos``, ``default_design``) unless one
    exists, with the ``DEFAULT_MODELS`` among ``colorizers``.

    Returns the default study's name, or None when there are no models to build it with. ``on_photo(done, total)``
    follows the build. It is one transaction: an interrupted build leaves nothing behind and runs again next time.
    Several processes on one database build it once: one claims the build (``build_claims``), the others wait for
    it, following its progress, and take over if it dies.
    """
    if not colorizers and not default_study_name(factory):
        log.warning("no models: the default study cannot be built")
        return None
    while True:
        existing = default_study_name(factory)
        if existing:
            return existing
        if claim_build(factory, DEFAULT_STUDY, stale_after):
            break
        state = build_progress(factory, DEFAULT_STUDY)
        if state and on_photo is not None:
            on_photo(*state)
        time.sleep(poll_seconds)
    colorizers = {name: colorizers[name] for name in default_models(colorizers)}
    try:
        if default_study_name(factory):  # built by the process whose claim just ended
            return default_study_name(factory)
        photos = default_photos()
        log.warning("building the default study: %d photos x %d models (once per database)", len(photos),
                    len(colorizers))
        with factory.begin() as session, tqdm(total=len(photos), desc="default study", unit="photo",
                                              disable=not progress) as bar:
            def advance(fraction: float, _message: str) -> None:
                bar.update(round(fraction * len(photos)) - bar.n)
                heartbeat(factory, DEFAULT_STUDY, bar.n, len(photos))
                if on_photo is not None:
                    on_photo(bar.n, len(photos))

            build_study(session, default_design(), photos, colorizers, descriptions, progress=advance,
                        is_default=True)
        log.info("built the default study with %s", ", ".join(colorizers))
    except (IntegrityError, ValueError) as error:  # another process built it at the same moment
        log.info("default study not built here: %s", error)
    finally:
        release_build(factory, DEFAULT_STUDY)
    return DEFAULT_STUDY


class DefaultStudyBuild:
    """Builds the default study in a background thread, so the app serves (and colorizes) while it is made.

    ``pending()`` is what a participant who arrives meanwhile reads, or None once the study can be taken.
    """

    def __init__(self, factory: sessionmaker[Session], colorizers: dict, descriptions: dict | None = None,
                 progress: bool = False):
        self.done_photos, self.total_photos = 0, 0
        self.error: Optional[str] = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(factory, colorizers, descriptions, progress),
                                        name="default-study-build", daemon=True)

    def start(self) -> "DefaultStudyBuild":
        self._thread.start()
        return self

    def _run(self, factory, colorizers, descriptions, progress) -> None:
        try:
            if ensure_default_study(factory, colorizers, descriptions, progress, on_photo=self._advance) is None:
                self.error = "there are no models to build it with"
        except Exception as error:  # reported to participants and the log; the app keeps serving
            log.exception("building the default study failed")
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self._finished.set()

    def _advance(self, done: int, total: int) -> None:
        self.done_photos, self.total_photos = done, total

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def pending(self) -> Optional[str]:
        if not self._finished.is_set():
            progress = f" ({self.done_photos} of {self.total_photos} photos)" if self.total_photos else ""
            return (f"The study is still being prepared{progress}. Please come back in a few minutes and press "
                    "Start again.")
        if self.error:
            return f"The study could not be prepared ({self.error}). Please tell the person who runs it."
        return None
