"""The study the app builds on first launch, so it is usable out of the box."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from study.schema import Study
from study.stimuli import StudyDesign, build_study, skimage_photos

log = logging.getLogger(__name__)
DEFAULT_STUDY = "default"


def ensure_default_study(factory: sessionmaker[Session], colorizers: dict, descriptions: dict | None = None) -> str | None:
    """Builds the default study (scikit-image's colour photos, every given model) unless one exists.

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
        with factory.begin() as session:
            build_study(session, StudyDesign(name=DEFAULT_STUDY), skimage_photos(), colorizers, descriptions,
                        is_default=True)
        log.info("built the default study from scikit-image's photos with %s", ", ".join(colorizers))
    except (IntegrityError, ValueError) as error:  # another process built it at the same moment
        log.info("default study not built here: %s", error)
    return DEFAULT_STUDY
