"""Several app processes on one database build the default study once: one claims the build, the others wait and
follow its progress, and a claim whose process died is taken over."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from study import defaults
from study.db import make_engine, make_session_factory
from study.schema import BuildClaim, Study
from study.stimuli import skimage_photos


@pytest.fixture
def few_photos(monkeypatch):
    photos = [(label, np.asarray(Image.fromarray(rgb).resize((96, 96)))) for label, rgb in skimage_photos()]
    monkeypatch.setattr(defaults, "default_photos", lambda: photos)  # the shipped 50, smaller: the same code path
    monkeypatch.setattr(defaults, "default_design", lambda: defaults.StudyDesign(name=defaults.DEFAULT_STUDY,
                                                                                  mode="2afc", size=64))
    return photos


def builds_logged(caplog) -> int:
    return sum("building the default study" in record.getMessage() for record in caplog.records)


def test_concurrent_processes_build_the_default_study_once(database_url, few_photos, tiny_colorizer, caplog):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    caplog.set_level(logging.INFO, logger="study.defaults")
    seen_progress = []
    names = []

    def app_process(index):  # each thread is one owner, as each app process is
        names.append(defaults.ensure_default_study(
            factory, {"balanced": tiny_colorizer, "vivid": tiny_colorizer}, poll_seconds=0.1,
            on_photo=lambda done, total: seen_progress.append((index, done, total))))

    threads = [threading.Thread(target=app_process, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert names == ["default"] * 3
    assert builds_logged(caplog) == 1
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 1
        assert session.scalar(select(func.count()).select_from(BuildClaim)) == 0  # released
    engine.dispose()


def test_claim_of_a_dead_process_is_taken_over_at_once(database_url, few_photos, tiny_colorizer, caplog):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:  # a process on this machine that died mid-build (pid beyond any real one)
        session.add(BuildClaim(study_name="default", owner=f"{defaults.socket.gethostname()}:99999999:1"))
    caplog.set_level(logging.INFO, logger="study.defaults")
    assert defaults.ensure_default_study(factory, {"balanced": tiny_colorizer}, poll_seconds=0.1) == "default"
    assert builds_logged(caplog) == 1 and "taking over" in caplog.text
    engine.dispose()


def test_live_claim_is_waited_for_then_stale_one_taken_over(database_url, few_photos, tiny_colorizer):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:  # a live builder on another machine, silent from now on
        session.add(BuildClaim(study_name="default", owner="other-host:1:1", done_photos=3, total_photos=50))
    assert not defaults.claim_build(factory, "default", stale_after=60)
    assert defaults.build_progress(factory, "default") == (3, 50)
    seen = []
    name = defaults.ensure_default_study(factory, {"balanced": tiny_colorizer}, poll_seconds=0.2, stale_after=1.0,
                                         on_photo=lambda done, total: seen.append((done, total)))
    assert name == "default" and (3, 50) in seen  # it waited, showing the other's progress, then took over
    engine.dispose()
