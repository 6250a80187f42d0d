"""Simulated participants, driven through ``StudyService`` (the code the app uses): a dry run of a design and a
power analysis.

A simulated participant answers practice and sentinel trials correctly (with ``lapse`` probability of a slip)
and judges a main trial "real" with the probability given for its condition (single mode); in 2AFC mode the
probability is that of picking the model's fake as the real one.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from study.schema import Study, Trial
from study.service import ParticipantState, StudyService


def parse_accept(text: str) -> dict[str, float]:
    """"unet=0.45,vivid=0.55,real=0.85" -> {"unet": 0.45, ...}; each value a probability."""
    rates = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"expected NAME=PROBABILITY, got {item!r}") from None
        if not 0 <= rate <= 1:
            raise ValueError(f"probability for {name!r} must be in [0, 1], got {rate}")
        rates[name.strip()] = rate
    if not rates:
        raise ValueError("no acceptance rates given")
    return rates


@dataclass
class SimulationResult:
    participants: int
    answers: int
    duplicates: int


def _truth(factory: sessionmaker[Session], trial_id: int) -> tuple[str, str, bool, int | None]:
    """The simulator's oracle (a real participant never gets this): kind, condition, is_real, real_side."""
    with factory() as session:
        trial = session.get(Trial, trial_id)
        return trial.kind, trial.condition, trial.stimulus.is_real, trial.real_side


def run_participant(service: StudyService, study_name: str | None, accept: dict[str, float], rng: random.Random,
                    lapse: float = 0.0, abandon_after: int | None = None) -> tuple[ParticipantState, int, int]:
    state = service.start(study_name, consented=True, age_band="25-34", color_vision="normal", screen="laptop",
                          simulated=True)
    info = service.study_info(study_name)
    answers = duplicates = 0
    while not state.done:
        if abandon_after is not None and answers >= abandon_after:
            break
        kind, condition, is_real, real_side = _truth(service.factory, state.trial.trial_id)
        if kind in ("practice", "sentinel"):
            right = rng.random() >= lapse
            if info["mode"] == "single":
                answer = ("real" if is_real else "fake") if right else ("fake" if is_real else "real")
            else:
                answer = str(real_side if right else 1 - real_side)
        else:
            if condition not in accept:
                raise ValueError(f"no acceptance rate given for condition {condition!r}; got {sorted(accept)}")
            says_real = rng.random() < accept[condition]
            if info["mode"] == "single":
                answer = "real" if says_real else "fake"
            else:  # says_real here means: fooled, the fake is picked as real
                answer = str(1 - real_side if says_real else real_side)
        response_ms = rng.lognormvariate(math.log(1400), 0.4)
        state = service.answer(state.token, state.trial.trial_id, answer, response_ms, info["display_ms"])
        answers += 1
        duplicates += state.duplicate
    return state, answers, duplicates


def simulate(factory: sessionmaker[Session], participants: int, accept: dict[str, float], study_name: str | None = None,
             seed: int = 0, workers: int = 1, lapse: float = 0.0) -> SimulationResult:
    """Runs ``participants`` simulated participants (``workers`` at a time) through the study."""
    service = StudyService(factory)
    seeds = random.Random(seed)
    rngs = [random.Random(seeds.getrandbits(64)) for _ in range(participants)]
    if workers <= 1:
        results = [run_participant(service, study_name, accept, rng, lapse) for rng in rngs]
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda rng: run_participant(service, study_name, accept, rng, lapse), rngs))
    return SimulationResult(participants, sum(r[1] for r in results), sum(r[2] for r in results))


def power_analysis(database_file: str | Path, accept: dict[str, float], participant_counts: list[int],
                   repeats: int = 20, study_name: str | None = None, seed: int = 0, alpha: float = 0.05):
    """For each participant count: share of simulated studies in which every pair of models differs significantly
    (Holm-corrected), each study a fresh copy of the SQLite file ``database_file``."""
    import pandas as pd

    from study.db import make_engine, make_session_factory
    from study.report import analyse

    rows = []
    for count in participant_counts:
        significant = 0
        for repeat in range(repeats):
            with tempfile.TemporaryDirectory() as folder:
                copy = Path(folder) / "study.sqlite"
                shutil.copy(database_file, copy)
                engine = make_engine(f"sqlite:///{copy}")
                simulate(make_session_factory(engine), count, accept, study_name, seed=seed * 100_003 + repeat)
                report = analyse(engine, study_name, bootstrap_repeats=1)  # power needs p-values only
                engine.dispose()
            pairs = report.pairwise
            significant += bool(len(pairs)) and bool((pairs["p_holm"] < alpha).all())
        rows.append({"participants": count, "repeats": repeats, "power": significant / repeats})
    return pd.DataFrame(rows)


def study_names(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(Study.name).order_by(Study.id)))
