"""Simulated participants, driven through ``StudyService`` (the code the app uses): a dry run of a design and a
power analysis.

A simulated participant answers practice and sentinel trials correctly (with ``lapse`` probability of a slip)
and judges a main trial "real" with the probability given for its condition (single mode); in 2AFC mode the
probability is that of picking the model's fake as the real one. People and photos vary (``Variation``): each
participant and each photo shifts the log-odds by a normal draw, and the given probabilities are the population
averages over both, so power estimates are honest about clustering.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
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
    """"unet=0.45,vivid=0.55,real=0.85" -> {"unet": 0.45, ...}; each value a probability. ``*=P`` gives every
    condition not named its rate."""
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


def _truth(factory: sessionmaker[Session], trial_id: int) -> tuple[str, str, bool, int | None, int]:
    """The simulator's oracle (a real participant never gets this): kind, condition, is_real, real_side, photo."""
    with factory() as session:
        trial = session.get(Trial, trial_id)
        return trial.kind, trial.condition, trial.stimulus.is_real, trial.real_side, trial.stimulus.photo_id


def run_participant(service: StudyService, study_name: str | None, accept: dict[str, float], rng: random.Random,
                    lapse: float = 0.0, abandon_after: int | None = None,
                    variation: "Variation | None" = None) -> tuple[ParticipantState, int, int]:
    from scipy.special import expit

    variation = variation or Variation(0.0, 0.0)
    sd = math.hypot(variation.participant_sd, variation.photo_sd)
    mu = defaultdict(lambda: conditional_logit(accept["*"], sd)) if "*" in accept else {}
    mu.update({name: conditional_logit(rate, sd) for name, rate in accept.items()})
    person = rng.gauss(0, variation.participant_sd)
    photo_effects: dict[int, float] = {}  # the same photo effect for every participant (seeded by photo id)
    state = service.start(study_name, consented=True, age_band="25-34", color_vision="normal", screen="laptop",
                          simulated=True)
    info = service.study_info(study_name)
    answers = duplicates = 0
    while not state.done:
        if abandon_after is not None and answers >= abandon_after:
            break
        if state.feedback and not state.duplicate:
            state = service.resume(state.token)  # a person reads the practice feedback, then goes on
            continue
        kind, condition, is_real, real_side, photo_id = _truth(service.factory, state.trial.trial_id)
        if kind in ("practice", "sentinel"):
            right = rng.random() >= lapse
            if info["mode"] == "single":
                answer = ("real" if is_real else "fake") if right else ("fake" if is_real else "real")
            else:
                answer = str(real_side if right else 1 - real_side)
        else:
            if condition not in accept and "*" not in accept:
                raise ValueError(f"no acceptance rate given for condition {condition!r}; got {sorted(accept)} "
                                 "(*=P sets the rest)")
            if photo_id not in photo_effects:
                photo_effects[photo_id] = random.Random(variation.seed * 1_000_003 + photo_id).gauss(0, variation.photo_sd)
            says_real = rng.random() < expit(mu[condition] + person + photo_effects[photo_id])
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
             seed: int = 0, workers: int = 1, lapse: float = 0.0, variation: "Variation | None" = None) -> SimulationResult:
    """Runs ``participants`` simulated participants (``workers`` at a time) through the study. Without ``variation``
    people and photos vary as ``Variation()`` says (sd 0.5 and 0.6 on the log-odds)."""
    service = StudyService(factory)
    seeds = random.Random(seed)
    variation = variation or Variation(seed=seed)
    rngs = [random.Random(seeds.getrandbits(64)) for _ in range(participants)]

    def one(rng):
        return run_participant(service, study_name, accept, rng, lapse, variation=variation)

    if workers <= 1:
        results = [one(rng) for rng in rngs]
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, rngs))
    return SimulationResult(participants, sum(r[1] for r in results), sum(r[2] for r in results))


def power_analysis(database_file: str | Path, accept: dict[str, float], participant_counts: list[int],
                   repeats: int = 20, study_name: str | None = None, seed: int = 0, alpha: float = 0.05,
                   variation: "Variation | None" = None, progress: bool = True, focus: str | None = None):
    """For each participant count, the share of simulated studies in which each test is significant, each study a
    fresh copy of the SQLite file ``database_file`` with people and photos varying as ``variation`` says.

    Rows: ``focus`` (default: the study's first model) against real photos (2AFC: its fool rate against 50%;
    single: a photo-level label-flip test of its acceptance against real photos'), ``focus`` against each other
    model (Holm-corrected over all pairs, as in the report), and "every pair" (all pairs significant at once)."""
    import pandas as pd
    from tqdm import tqdm

    from study import analysis, clustered
    from study.db import make_engine, make_session_factory
    from study.report import analyse

    rows = []
    bar = tqdm(total=len(participant_counts) * repeats, desc="simulated studies", unit="study", disable=not progress)
    for count in participant_counts:
        hits: dict[str, int] = {}
        for repeat in range(repeats):
            with tempfile.TemporaryDirectory() as folder:
                copy = Path(folder) / "study.sqlite"
                shutil.copy(database_file, copy)
                engine = make_engine(f"sqlite:///{copy}")
                run_seed = seed * 100_003 + repeat
                simulate(make_session_factory(engine), count, accept, study_name, seed=run_seed,
                         variation=Variation(*(variation.participant_sd, variation.photo_sd) if variation else (0.5, 0.6),
                                             seed=run_seed))
                report = analyse(engine, study_name, bootstrap_repeats=0, include_simulated=True)  # p-values only
                engine.dispose()
            models = [c for c in report.study["conditions"] if c != "real"]
            target = focus or models[0]
            if report.study["mode"] == "2afc":
                row = report.acceptance.set_index("condition").loc[target]
                tests = {f"{target}: fool rate differs from 50%": row["p_vs_half"] < alpha}
            else:
                frame = analysis.analysable(report.trials, report.study["exclusion_rules"])
                tests = {f"{target}: acceptance differs from real photos'":
                         clustered.label_flip_test(frame, target, "real") < alpha}
            pairs = report.pairwise
            for other in models:
                if other != target:
                    pair = pairs[((pairs["model_a"] == target) & (pairs["model_b"] == other))
                                 | ((pairs["model_a"] == other) & (pairs["model_b"] == target))]
                    tests[f"{target} vs {other} (Holm)"] = bool(len(pair)) and bool(pair["p_holm"].iloc[0] < alpha)
            if len(models) > 2:
                tests["every pair of models (Holm)"] = bool(len(pairs)) and bool((pairs["p_holm"] < alpha).all())
            for name, significant in tests.items():
                hits[name] = hits.get(name, 0) + bool(significant)
            bar.update()
        rows += [{"participants": count, "test": name, "repeats": repeats, "power": hit / repeats}
                 for name, hit in hits.items()]
    bar.close()
    return pd.DataFrame(rows)


def study_names(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(Study.name).order_by(Study.id)))


# --- participant and photo variation ----------------------------------------------------------------------------

def conditional_logit(rate: float, sd: float) -> float:
    """The log-odds ``mu`` for which E[expit(mu + e)] = ``rate`` with e ~ N(0, sd^2) (Gauss-Hermite quadrature):
    simulated rates are population averages over participants and photos, the quantity the report estimates."""
    import numpy as np
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    if rate in (0.0, 1.0) or sd == 0:
        return float(logit(rate)) if 0 < rate < 1 else (-math.inf if rate == 0 else math.inf)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    return float(brentq(lambda mu: float(weights @ expit(mu + sd * nodes)) - rate, -30, 30))


@dataclass
class Variation:
    """Random effects on the log-odds of answering "real" (2AFC: of being fooled)."""

    participant_sd: float = 0.5  # some people say "real" more often than others
    photo_sd: float = 0.6  # some photos are easier to colour convincingly than others
    seed: int = 0

    def draw(self, keys, sd: float, salt: int) -> dict:
        rng = random.Random(self.seed * 1_000_003 + salt)
        return {key: rng.gauss(0, sd) for key in keys}


def synthetic_trials(participants: int, photos: int, accept: dict[str, float], variation: Variation,
                     mode: str = "single", seed: int = 0):
    """A tidy per-trial frame of one simulated study without a database (fast enough for thousands of studies):
    a Latin square over ``accept``'s conditions (photo j in condition (j + list) mod C), answers drawn with
    participant and photo effects. Columns as ``analysis.analysable`` returns them."""
    import numpy as np
    import pandas as pd
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    conditions = list(accept)
    sd = math.hypot(variation.participant_sd, variation.photo_sd)
    mu = {c: conditional_logit(accept[c], sd) for c in conditions}
    person = rng.normal(0, variation.participant_sd, participants)
    photo = rng.normal(0, variation.photo_sd, photos)
    p_index, q_index = np.meshgrid(np.arange(participants), np.arange(photos), indexing="ij")
    p_index, q_index = p_index.ravel(), q_index.ravel()
    condition_index = (q_index + p_index) % len(conditions)
    logits = np.array([mu[c] for c in conditions])[condition_index] + person[p_index] + photo[q_index]
    judged = rng.random(len(logits)) < expit(logits)
    return pd.DataFrame({"participant_id": p_index, "photo_id": q_index, "photo": q_index.astype(str),
                         "condition": np.array(conditions)[condition_index], "judged_real": judged, "mode": mode,
                         "kind": "main", "answered": True})
