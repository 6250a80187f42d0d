"""The study the app builds on first launch, so it is usable out of the box."""

from __future__ import annotations

import logging

from sqlalchemy import select
from tqdm import tqdm
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from study.schema import Study
from study.stimuli import StudyDesign, build_study, default_photos

log = logging.getLogger(__name__)
DEFAULT_STUDY = "default"


def ensure_default_study(factory: sessionmaker[Session], colorizers: dict, descriptions: dict | None = None,
                         progress: bool = False) -> str | None:
    """Builds the default study (the shipped photo set of ``study/default_photos``, every given model) unless one
    exists. Conditions: the real photos and every given model (the app passes every shipped model).

    Returns the default study's name, or None when there are no models to build it with.
    """
    with factory() as session:
        existing = session.scalar(select(Study.name).where(Study.is_default.is_(True)).limit(1))
    if existing:
        return existing
    if not colorizers:
        log.warning("no models: the default study cannot be built")
        return None
    try:
        photos = default_photos()
        log.warning("building the default study: %d photos x %d models (once per database)", len(photos),
                    len(colorizers))
        with factory.begin() as session, tqdm(total=len(photos), desc="default study", unit="photo",
                                              disable=not progress) as bar:
            build_study(session, StudyDesign(name=DEFAULT_STUDY), photos, colorizers, descriptions,
                        progress=lambda fraction, _: bar.update(round(fraction * len(photos)) - bar.n),
                        is_default=True)
        log.info("built the default study with %s", ", ".join(colorizers))
    except (IntegrityError, ValueError) as error:  # another process built it at the same moment
        log.info("default study not built here: %s", error)
    return DEFAULT_STUDY
