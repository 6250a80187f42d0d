"""The perception study: assignment, stimulus parity, storage (SQLite and PostgreSQL), analysis, reports."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select, text

from study import analysis
from study.db import make_engine, make_session_factory
from study.protocol import StudyError
from study.report import analyse, write_report
from study.schema import Participant, Response, SourcePhoto, Stimulus, Study, Trial
from study.service import StudyService
from study.simulate import parse_accept, simulate
from study.stimuli import StudyDesign, build_study, skimage_photos



@pytest.fixture(scope="session")
def photos():
    # eight photos, small: enough for practice, sentinel and main roles
    base = skimage_photos()
    extra = [(f"{label}_flipped", np.ascontiguousarray(rgb[:, ::-1])) for label, rgb in base[:2]]
    return [(label, np.asarray(Image.fromarray(rgb).resize((96, 96)))) for label, rgb in base + extra]


def build(factory, photos, colorizer, **design):
    with factory.begin() as session:
        study = build_study(session, StudyDesign(name=design.pop("name", "s"), size=64, **design), photos,
                            {"balanced": colorizer, "vivid": colorizer})
        return study.name


@pytest.fixture
def single_study(database_url, photos, tiny_colorizer):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    name = build(factory, photos, tiny_colorizer)
    yield engine, factory, name
    engine.dispose()


def test_latin_square_balance_and_one_photo_once(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    states = [service.start(name, True) for _ in range(6)]
    with factory() as session:
        participants = session.scalars(select(Participant)).all()
        assert Counter(p.list_index for p in participants) == Counter({0: 2, 1: 2, 2: 2})  # round robin over 3 lists
        counts = Counter()
        for participant in participants:
            trials = [t for t in participant.trials if t.kind != "practice"]
            photo_ids = [t.stimulus.photo_id for t in trials]
            assert len(photo_ids) == len(set(photo_ids)), "a photo shown twice to one participant"
            counts.update((t.stimulus.photo_id, t.condition) for t in trials if t.kind == "main")
        main_photos = session.scalars(select(SourcePhoto).where(SourcePhoto.role == "main")).all()
        # after one round of 3 lists every main photo was shown once in each condition, per round
        for photo in main_photos:
            assert {c: counts[(photo.id, c)] for c in ("real", "balanced", "vivid")} == {"real": 2, "balanced": 2,
                                                                                        "vivid": 2}
        orders = {tuple(t.stimulus.photo_id for t in p.trials) for p in participants}
        assert len(orders) > 1  # per-participant shuffles
        sentinel_share = np.mean([t.kind == "sentinel" for p in participants for t in p.trials if t.kind != "practice"])
        assert 0.05 <= sentinel_share <= 0.3
    assert all(s.trial.is_practice for s in states)


def test_abandoned_session_reopens_its_list(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    first = service.start(name, True)
    with factory.begin() as session:
        participant = session.scalar(select(Participant).where(Participant.token == first.token))
        participant.last_seen_at = participant.last_seen_at.replace(year=2000)
        abandoned_list = participant.list_index
    service.start(name, True)
    service.start(name, True)
    fourth = service.start(name, True)
    with factory() as session:
        assert session.scalar(select(Participant.status).where(Participant.token == first.token)) == "abandoned"
        lists = [p.list_index for p in session.scalars(select(Participant).order_by(Participant.id))]
    assert lists[1:].count(abandoned_list) == 1 and len(set(lists[1:])) == 3
    assert fourth.trial is not None
    # the abandoned participant comes back: active again, seen now, and their answer is stored
    back = service.resume(first.token)
    with factory() as session:
        row = session.execute(select(Participant.status, Participant.last_seen_at)
                              .where(Participant.token == first.token)).one()
    assert row.status == "active" and row.last_seen_at.year > 2000
    service.answer(first.token, back.trial.trial_id, "real", 900.0)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Response).join(Trial)
                              .join(Participant).where(Participant.token == first.token)) == 1


def build_subsets(factory, photos, colorizer, mode, per_participant):
    with factory.begin() as session:
        study = build_study(session, StudyDesign(name="subsets", size=64, mode=mode,
                                                 models_per_participant=per_participant), photos,
                            {name: colorizer for name in ("m0", "m1", "m2", "m3")})
        return study.name, study.list_count


@pytest.mark.parametrize("mode, per_participant, lists, shown", [("single", 1, 8, 2), ("2afc", 2, 8, 2)])
def test_model_subsets_balance_photos_and_conditions(tmp_path, photos, tiny_colorizer, mode, per_participant, lists,
                                                    shown):
    engine = make_engine(f"sqlite:///{tmp_path / 'subsets.sqlite'}")
    factory = make_session_factory(engine)
    name, list_count = build_subsets(factory, photos, tiny_colorizer, mode, per_participant)
    assert list_count == lists
    service = StudyService(factory)
    for _ in range(lists):
        service.start(name, True)
    counts = Counter()
    with factory() as session:
        participants = session.scalars(select(Participant)).all()
        assert sorted(p.list_index for p in participants) == list(range(lists))
        for participant in participants:
            main = [t for t in participant.trials if t.kind == "main"]
            conditions = Counter(t.condition for t in main)
            assert len(conditions) == shown  # single: real and one model; 2afc: two models
            assert max(conditions.values()) - min(conditions.values()) <= 1
            counts.update((t.stimulus.photo_id, t.condition) for t in main)
    # over all lists every main photo is in every model equally often (and real in half of single-mode trials)
    per_photo = {}
    for (photo, condition), count in counts.items():
        per_photo.setdefault(photo, {})[condition] = count
    for table in per_photo.values():
        model_counts = {table.get(m, 0) for m in ("m0", "m1", "m2", "m3")}
        assert len(model_counts) == 1 and model_counts != {0}
        if mode == "single":
            assert table["real"] == sum(table[m] for m in ("m0", "m1", "m2", "m3"))
    simulate(factory, lists * 2, {"real": 0.8, "*": 0.4}, name, seed=3)
    report = analyse(engine, name, bootstrap_repeats=0, include_simulated=True)
    assert set(report.acceptance["condition"]) >= {"m0", "m1", "m2", "m3"}
    assert report.study["models_per_participant"] == per_participant
    engine.dispose()


def test_lists_balance_completed_sessions_not_started_ones(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    states = [service.start(name, True) for _ in range(4)]  # lists 0, 1, 2, then 0 again
    with factory.begin() as session:
        for participant in session.scalars(select(Participant)):
            if participant.list_index != 0:
                participant.status = "completed"
    # list 0 has two people still answering and none finished; lists 1 and 2 have one finished each
    nxt = service.start(name, True)
    with factory() as session:
        assert session.scalar(select(Participant.list_index).where(Participant.token == nxt.token)) == 0
    assert len(states) == 4


def test_device_check_refuses_before_registering(tmp_path, photos, tiny_colorizer):
    from study.protocol import Device

    engine = make_engine(f"sqlite:///{tmp_path / 'device.sqlite'}")
    factory = make_session_factory(engine)
    build(factory, photos, tiny_colorizer, name="pairs", mode="2afc")  # 64-px stimuli side by side: 146 x 304
    build(factory, photos, tiny_colorizer, name="touch-ok", mode="2afc", allow_touch=True, min_window=(200, 200))
    service = StudyService(factory)
    with pytest.raises(StudyError, match="mouse or trackpad"):
        service.start("pairs", True, device=Device(390, 800, True))
    with pytest.raises(StudyError, match="at least 146 x 304 pixels.*yours is 140 x 900"):
        service.start("pairs", True, device=Device(140, 900, False))
    with pytest.raises(StudyError, match="at least 200 x 200"):
        service.start("touch-ok", True, device=Device(390, 180, True))
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Participant)) == 0
    service.start("pairs", True, device=Device(146, 304, False))
    service.start("touch-ok", True, device=Device(390, 800, True))
    service.start("pairs", True)  # an API client that reports no window is not checked
    from demo.study_tab import parse_device

    assert parse_device("{") is None and parse_device('{"width": "800", "height": 600}') is None
    assert parse_device('{"width": 800, "height": 600.5, "touch_only": false}') == Device(800, 600, False)
    report = analyse(engine, "pairs", bootstrap_repeats=0)
    windows = report.trials.groupby("participant_id")[["window_width", "touch_only"]].first()
    assert sorted(windows["window_width"].fillna(0)) == [0, 146]
    engine.dispose()


def test_stimulus_parity(single_study):
    engine, factory, name = single_study
    with factory() as session:
        stimuli = session.scalars(select(Stimulus)).all()
        by_photo = {}
        for stimulus in stimuli:
            by_photo.setdefault(stimulus.photo_id, []).append(stimulus)
        public_ids = [s.public_id for s in stimuli]
        assert len(set(public_ids)) == len(public_ids)
        for group in by_photo.values():
            assert len(group) >= 2
            images = [Image.open(io.BytesIO(s.content)) for s in group]
            assert {im.size for im in images} == {(64, 64)}
            assert {im.format for im in images} == {"PNG"}
            assert {im.mode for im in images} == {"RGB"}
            assert all(not im.info.get("exif") and not im.text for im in images)  # no metadata chunks
            assert {tuple(sorted(k for k in im.info if k not in ("dpi",))) for im in images} == {()}
            for stimulus in group:  # content hash registered
                assert hashlib.sha256(stimulus.content).hexdigest() == stimulus.sha256
            # same crop: every version has the real photo's lightness (sentinels rotate hue only)
            from colorizer.imageio import split_photo

            grays = [split_photo(im).gray for im in images if im]
            real_gray = grays[[s.is_real for s in group].index(True)]
            for stimulus, gray in zip(group, grays):
                if stimulus.condition != "sentinel":
                    assert np.abs(gray - real_gray).mean() < 0.02
        assert all(condition_word not in pid for pid in public_ids for condition_word in ("real", "vivid", "fake"))


def test_double_click_and_resubmit_store_one_response(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    state = service.start(name, True)
    trial_id = state.trial.trial_id
    after_first = service.answer(state.token, trial_id, "real", 900)
    again = service.answer(state.token, trial_id, "fake", 950)  # a double click arriving late
    assert again.duplicate and again.trial.trial_id == after_first.trial.trial_id
    with factory() as session:
        responses = session.scalars(select(Response).where(Response.trial_id == trial_id)).all()
        assert len(responses) == 1 and responses[0].answer == "real"


def test_an_answer_for_a_trial_not_on_screen_is_refused(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    state = service.start(name, True)
    with factory() as session:
        ahead = session.scalars(select(Trial.id).join(Participant).where(Participant.token == state.token)
                                .order_by(Trial.position.desc()).limit(1)).one()  # the last, trials ahead
    with pytest.raises(StudyError, match="not on screen"):
        service.answer(state.token, ahead, "real", 900)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 0
    after = service.answer(state.token, state.trial.trial_id, "real", 900)  # the shown trial still takes its answer
    assert not after.duplicate and after.trial.trial_id != state.trial.trial_id


@pytest.mark.parametrize("payload", ['{"trial": 1e20}', '{"trial": Infinity}', '[1, 2]', '{"trial": 3.7}',
                                     '{"trial": true}', '{"trial": -4}', 'not json', '{"trial": [1]}', '"7"'])
def test_malformed_answer_payloads_get_a_one_line_error(payload):
    import gradio as gr

    from demo.study_tab import parse_answer_payload

    with pytest.raises(gr.Error, match="did not reach the server intact"):
        parse_answer_payload(payload)
    assert parse_answer_payload('{"trial": 12, "response_ms": 800}') == ({"trial": 12, "response_ms": 800}, 12)
    assert parse_answer_payload('{"trial": "12"}')[1] == 12


def test_the_counter_starts_after_practice_and_says_so(single_study):
    from demo.study_tab import progress_text

    engine, factory, name = single_study
    service = StudyService(factory)
    state = service.start(name, True)
    practice = state.trial.practice_total
    assert practice >= 1 and "Practice 1 of" in progress_text(state.trial)
    while state.trial.is_practice:
        state = service.answer(state.token, state.trial.trial_id, "real", 900)
    first = progress_text(state.trial)
    assert "study starts now" in first and f"Photo 1 of {state.trial.total - practice}" in first
    state = service.answer(state.token, state.trial.trial_id, "real", 900)
    assert "starts now" not in progress_text(state.trial) and "Photo 2 of" in progress_text(state.trial)


def test_an_external_id_over_the_limit_is_refused_not_cut(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    base = "p" * 200
    service.start(name, True, external_id=base)  # at the limit: fine
    with pytest.raises(StudyError, match="longer than 200"):
        service.start(name, True, external_id=base + "x")


def test_a_timed_trial_cut_short_by_a_reload_is_not_shown_again(database_url, photos, tiny_colorizer):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    name = build(factory, photos, tiny_colorizer, name="timed", mode="2afc", display_ms=1000)
    service = StudyService(factory)
    state = service.start(name, True)
    while state.trial.is_practice:  # practice feedback, then "Continue" (a resume): nothing is interrupted there
        state = service.answer(state.token, state.trial.trial_id, "0", 900)
        state = service.resume(state.token)
    shown = state.trial.trial_id
    after_reload = service.resume(state.token)  # the page reloads while the timed pair is (or was) on screen
    assert after_reload.trial.trial_id != shown
    with factory() as session:
        answers = dict(session.execute(select(Response.trial_id, Response.answer)).all())
    assert answers[shown] == "interrupt" and list(answers.values()).count("interrupt") == 1
    while not after_reload.done:
        after_reload = service.answer(after_reload.token, after_reload.trial.trial_id, "0", 900)
    trials = analysis.load_trials(engine, name)
    people = analysis.participant_table(trials, {"require_complete": True})
    assert people["complete"].all()  # the interrupted trial does not make the session incomplete
    assert shown not in set(analysis.analysable(trials, {})["trial_id"])
    engine.dispose()


def test_finished_participants_are_sent_to_the_completion_url(tmp_path, photos, tiny_colorizer):
    from demo.study_tab import screen_for

    factory = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}"))
    name = build(factory, photos, tiny_colorizer, name="prolific",
                 completion_url="https://app.prolific.com/submissions/complete?cc=C1234&code={code}")
    with pytest.raises(ValueError, match="http"):
        StudyDesign(name="x", completion_url="javascript:alert(1)").validate()
    service = StudyService(factory)
    state = service.start(name, True)
    while not state.done:
        state = service.answer(state.token, state.trial.trial_id, "real", 900)
    page = screen_for(state, service).done
    assert f"cc=C1234&amp;code={state.completion_code}" in page and 'id="completion-link"' in page


def test_practice_feedback_shows_the_answered_pair_again(tmp_path, photos, tiny_colorizer):
    from demo.study_tab import screen_for

    factory = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'f.sqlite'}"))
    name = build(factory, photos, tiny_colorizer, name="timed-pairs", mode="2afc", display_ms=800)
    service = StudyService(factory)
    state = service.start(name, True)
    answered = state.trial
    assert answered.is_practice
    after = service.answer(state.token, answered.trial_id, "0", 900)
    screen = screen_for(after, service)
    assert screen.continue_visible and after.feedback
    assert f'data-trial="{answered.trial_id}"' in screen.stimulus and 'data-review="1"' in screen.stimulus
    assert screen.stimulus.count('style="visibility: visible"') == 2  # both photos, untimed, under the feedback
    assert screen.stimulus.count("data:image/png;base64,") == 2


def test_a_plain_link_on_a_shared_browser_asks_whose_session_it_is(single_study):
    from demo.study_tab import RETURNING_MESSAGE, resume_handler

    engine, factory, name = single_study
    service = StudyService(factory)
    state = service.start(name, True)
    state = service.answer(state.token, state.trial.trial_id, "real", 900)
    asked = resume_handler(service, state.token, None)
    assert asked.consent_visible and asked.returning_visible and asked.message == RETURNING_MESSAGE
    assert not asked.trial_visible
    mine = resume_handler(service, state.token, None, confirmed=True)
    assert mine.trial_visible and not mine.returning_visible
    while not state.done:
        state = service.answer(state.token, state.trial.trial_id, "real", 900)
    finished = resume_handler(service, state.token, None)
    assert finished.consent_visible and not finished.returning_visible and not finished.done_visible


def test_resume_after_dropped_connection(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    state = service.start(name, True)
    for _ in range(3):
        state = service.answer(state.token, state.trial.trial_id, "fake", 700)
    expected = state.trial
    # the browser drops; a new page load resumes with the token kept in the browser
    resumed = StudyService(make_session_factory(make_engine(str(engine.url.render_as_string(hide_password=False)))))
    again = resumed.resume(state.token)
    assert again.trial == expected
    with pytest.raises(StudyError):
        resumed.resume("not-a-token")


def test_external_id_once_and_hashed(single_study):
    engine, factory, name = single_study
    service = StudyService(factory)
    state = service.start(name, True, external_id="PROLIFIC123")
    reconnect = service.start(name, True, external_id="PROLIFIC123")
    assert reconnect.token == state.token  # same person, same session
    while not state.done:
        state = service.answer(state.token, state.trial.trial_id, "real", 800)
    with pytest.raises(StudyError, match="already completed"):
        service.start(name, True, external_id="PROLIFIC123")
    with factory() as session:
        stored = session.scalar(select(Participant.external_id_hash).where(Participant.token == state.token))
    assert stored and "PROLIFIC123" not in stored and len(stored) == 64
    with pytest.raises(StudyError, match="consent"):
        service.start(name, False)


def test_fifty_concurrent_participants_store_every_answer_once(single_study):
    engine, factory, name = single_study
    from demo.study_tab import answer_handler, resume_handler, start_handler

    service = StudyService(factory)

    def participant(seed):
        rng = np.random.default_rng(seed)
        screen = start_handler(service, name, True, None, None, None)
        answers = 0
        while screen.trial_visible:
            if screen.continue_visible:  # practice feedback under its own trial; the next one follows "Continue"
                screen = resume_handler(service, screen.token, confirmed=True)  # the "Continue" button
                continue
            trial_id = int(screen.stimulus.split('data-trial="')[1].split('"')[0])
            payload = f'{{"trial": {trial_id}, "response_ms": {rng.uniform(400, 2000)}, "display_ms": null}}'
            answer = "real" if rng.random() < 0.5 else "fake"
            screen = answer_handler(service, screen.token, payload, answer)
            if rng.random() < 0.2:  # a double click: the same trial answered again
                answer_handler(service, screen.token, payload, answer)
            answers += 1
        return answers

    with ThreadPoolExecutor(16) as pool:
        answered = list(pool.map(participant, range(50)))
    with factory() as session:
        trials = session.scalar(select(func.count()).select_from(Trial))
        responses = session.scalar(select(func.count()).select_from(Response))
        distinct = session.scalar(select(func.count(func.distinct(Response.trial_id))))
        completed = session.scalar(select(func.count()).where(Participant.status == "completed"))
    assert responses == distinct == trials == sum(answered)
    assert completed == 50


def test_simulated_2afc_study_and_report_files(tmp_path, photos, tiny_colorizer):
    engine = make_engine(f"sqlite:///{tmp_path / 'two.sqlite'}")
    factory = make_session_factory(engine)
    name = build(factory, photos, tiny_colorizer, name="pairs", mode="2afc", presentation="sequential",
                 display_ms=1000)
    result = simulate(factory, 12, {"balanced": 0.3, "vivid": 0.45}, name, seed=1)
    assert result.answers > 0 and result.duplicates == 0
    # simulated participants never count as people: by default they are reported apart
    write_report(engine, tmp_path / "real-only", name, bootstrap_repeats=0)
    assert "Simulated participants: 12, not counted" in (tmp_path / "real-only" / "report.md").read_text()
    assert pd.read_csv(tmp_path / "real-only" / "participants.csv").empty
    files = write_report(engine, tmp_path / "report", name, bootstrap_repeats=50, include_simulated=True)
    assert "dry run" in (tmp_path / "report" / "report.md").read_text()
    page = (tmp_path / "report" / "report.html").read_text()
    assert "dry run" in page and "relative_to_real" not in page  # 2AFC has no relative-to-real column to explain
    assert "<code>ci_low, ci_high</code>" in page and "crossed clusters" in page
    assert "Simulated participants: 12, not counted" in (tmp_path / "real-only" / "report.html").read_text()
    names = {f.name for f in files}
    assert names == {"trials.csv", "participants.csv", "acceptance.csv", "pairwise.csv", "per_photo.csv",
                     "correlations.csv", "data_dictionary.csv", "acceptance.png", "summary.json", "report.md",
                     "report.html", "data_dictionary.md", "dataset_description.json", f"study-{name}_data.csv"}
    description = json.loads((tmp_path / "report" / "psych-ds" / "dataset_description.json").read_text())
    assert description["@type"] == "Dataset" and description["@context"] == "https://schema.org/"
    psych_data = pd.read_csv(tmp_path / "report" / "psych-ds" / "data" / f"study-{name}_data.csv")
    assert [v["name"] for v in description["variableMeasured"]] == list(psych_data.columns)
    assert all(f.stat().st_size > 0 for f in files)
    trials = pd.read_csv(tmp_path / "report" / "trials.csv")
    dictionary = pd.read_csv(tmp_path / "report" / "data_dictionary.csv")
    assert set(trials.columns) <= set(dictionary["column"])
    acceptance = pd.read_csv(tmp_path / "report" / "acceptance.csv")
    assert set(acceptance["condition"]) == {"balanced", "vivid"}  # 2AFC: fool rate per model
    assert (trials.loc[trials["answered"], "intended_display_ms"] == 1000).all()


@pytest.mark.parametrize("mode", ["single", "2afc"])
def test_power_analysis_per_comparison(tmp_path, photos, tiny_colorizer, mode):
    from study.simulate import power_analysis

    database = tmp_path / "power.sqlite"
    engine = make_engine(f"sqlite:///{database}")
    # 16 photos, 13 main ones: the photo-level pair test can reach p < 0.05 even with a photo or two going the other way
    more = photos + [(f"{label}_upside_down", np.ascontiguousarray(rgb[::-1])) for label, rgb in photos]
    build(make_session_factory(engine), more, tiny_colorizer, mode=mode)
    engine.dispose()
    # balanced is rarely taken for real; vivid as often as real photos (single) or at chance (2AFC)
    accept = {"balanced": 0.1, "vivid": 0.9 if mode == "single" else 0.5, "real": 0.9}
    table = power_analysis(database, accept, [24], repeats=2, focus="balanced", progress=False)
    power = dict(zip(table["test"], table["power"]))
    against_real = ("balanced: acceptance differs from real photos'" if mode == "single"
                    else "balanced: fool rate differs from 50%")
    assert set(power) == {against_real, "balanced vs vivid (Holm)"}  # two models: no "every pair" row
    assert power[against_real] == 1.0 and power["balanced vs vivid (Holm)"] == 1.0
    assert set(table["participants"]) == {24} and set(table["repeats"]) == {2}


def test_study_cli_build_simulate_report(tmp_path, tiny_weights):
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    images = tmp_path / "images"
    images.mkdir()
    for label, rgb in skimage_photos():
        Image.fromarray(rgb).resize((80, 80)).save(images / f"{label}.png")
    # two runs' last.safetensors: the same file stem, two conditions
    runs = [tmp_path / "run-a", tmp_path / "run-b"]
    for run_dir in runs:
        run_dir.mkdir()
        shutil.copy(tiny_weights, run_dir / "last.safetensors")
    # the --db after the subcommand, as people type it (and as `python -m demo --db` takes it)
    run = lambda command, *a: subprocess.run([sys.executable, "-m", "study", command, "--db", db, *map(str, a)],  # noqa: E731
                                             capture_output=True, text=True, timeout=300)
    models = ",".join(str(r / "last.safetensors") for r in runs)
    built = run("build", "--images", images, "--models", models, "--name", "cli", "--size", "64")
    assert built.returncode == 0, built.stderr
    assert "run-a/last" in built.stdout and "run-b/last" in built.stdout
    # no --study: the database's one study, not a default study built beside it (minutes, every shipped model)
    simulated = run("simulate", "--participants", "6", "--accept", "run-a/last=0.4,run-b/last=0.5,real=0.9")
    assert simulated.returncode == 0, simulated.stderr
    assert "simulated 6 participants" in simulated.stdout
    with make_session_factory(make_engine(db))() as session:
        assert session.scalars(select(Study.name)).all() == ["cli"]
        assert session.scalar(select(func.count()).select_from(Participant).join(Study)
                              .where(Study.name == "cli")) == 6
    reported = run("report", "--out", tmp_path / "out", "--study", "cli", "--bootstrap", "10")
    assert reported.returncode == 0 and (tmp_path / "out" / "report.html").exists()
    # the report names the weights behind each condition by hash: a shipped name can later hold other weights
    sha = hashlib.sha256(tiny_weights.read_bytes()).hexdigest()
    details = json.loads((tmp_path / "out" / "summary.json").read_text())["study"]["condition_details"]
    assert {d["condition"]: d["weights_sha256"] for d in details} == {"real": "", "run-a/last": sha,
                                                                       "run-b/last": sha}
    assert (tmp_path / "out" / "report.md").read_text().count(sha) == 2
    assert (tmp_path / "out" / "report.html").read_text().count(sha) == 2
    # ... and the --db before it still works
    listed = subprocess.run([sys.executable, "-m", "study", "--db", db, "list"], capture_output=True, text=True)
    assert listed.returncode == 0 and "cli" in listed.stdout
    bad = run("simulate", "--participants", "1", "--accept", "nonsense")
    assert bad.returncode == 2 and "NAME=PROBABILITY" in bad.stderr


def test_a_database_from_before_the_weights_hash_gains_its_column(tmp_path, photos, tiny_colorizer):
    from sqlalchemy import inspect

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    factory = make_session_factory(make_engine(url))
    build(factory, photos, tiny_colorizer, name="before")
    with create_engine(url).begin() as connection:  # the schema as it was before the column existed
        connection.execute(text("ALTER TABLE study_models DROP COLUMN weights_sha256"))
    engine = make_engine(url)  # opening it again adds the column; the old study's rows stay
    assert "weights_sha256" in {c["name"] for c in inspect(engine).get_columns("study_models")}
    factory = make_session_factory(engine)
    build(factory, photos, tiny_colorizer, name="after")
    with factory() as session:
        rows = session.execute(text("SELECT s.name, m.name, m.weights_sha256 FROM study_models m JOIN studies s "
                                    "ON s.id = m.study_id WHERE NOT m.is_real")).all()
    sha = tiny_colorizer.weights_sha256
    assert sorted(map(tuple, rows)) == [("after", "balanced", sha), ("after", "vivid", sha),
                                        ("before", "balanced", None), ("before", "vivid", None)]


def test_condition_names_keep_every_weights_file_distinct():
    from study.stimuli import condition_names

    assert condition_names(["balanced", "vivid"]) == ["balanced", "vivid"]
    assert condition_names(["runs/a/last.safetensors", "runs/b/last.safetensors"]) == ["a/last", "b/last"]
    assert condition_names(["x/last.safetensors", "x/last.safetensors"]) == ["x/last", "x/last#2"]
    assert condition_names(["/w/deepcolor-unet.safetensors", "balanced"]) == ["deepcolor-unet", "balanced"]


# --- analysis on a hand-computed fixture ------------------------------------------------------------------------

def fixture_frame() -> pd.DataFrame:
    """Two participants x four photos, single mode. real: 4/4 judged real; A: 3/4; B: 1/4."""
    rows = []
    answers = {"real": [1, 1, 1, 1], "A": [1, 1, 1, 0], "B": [0, 0, 1, 0]}
    for condition, judged in answers.items():
        for i, value in enumerate(judged):
            rows.append({"mode": "single", "participant_id": 1 + i % 2, "photo_id": 10 + i, "photo": f"p{i}",
                         "condition": condition, "judged_real": bool(value), "kind": "main", "answered": True,
                         "answer": "real" if value else "fake", "fake_ssim": None if condition == "real" else 0.9,
                         "fake_mse": None if condition == "real" else 0.01 * (i + 1),
                         "correct": bool(value) == (condition == "real"), "response_ms": 900.0, "status": "completed",
                         "list_index": 0, "fake_psnr": None if condition == "real" else 20.0 + i,
                         "fake_colorfulness": 30.0 + i})
    return pd.DataFrame(rows)


def test_acceptance_numbers_match_hand_computation():
    table = analysis.acceptance_table(fixture_frame(), bootstrap_repeats=200).set_index("condition")
    assert table.loc["A", "rate"] == 0.75 and table.loc["B", "rate"] == 0.25 and table.loc["real", "rate"] == 1.0
    # naive Wilson 95% for 3/4: (0.3006, 0.9544); for 1/4: (0.0456, 0.6994) (e.g. Newcombe 1998, method 3)
    assert table.loc["A", "wilson_naive_low"] == pytest.approx(0.3006, abs=1e-4)
    assert table.loc["A", "wilson_naive_high"] == pytest.approx(0.9544, abs=1e-4)
    assert table.loc["B", "wilson_naive_low"] == pytest.approx(0.0456, abs=1e-4)
    # the primary interval is defined for A and B; all-"real" answers have infinite log-odds: no interval
    assert table.loc["A", "ci_low"] < 0.75 < table.loc["A", "ci_high"]
    assert pd.isna(table.loc["real", "ci_low"])
    assert table.loc["A", "relative_to_real"] == 0.75
    # d' with the log-linear rule: H = 4.5/5 = 0.9, FA(A) = 3.5/5 = 0.7 -> z(.9) - z(.7) = 1.28155 - 0.52440
    assert table.loc["A", "d_prime"] == pytest.approx(0.75715, abs=1e-4)
    assert table.loc["A", "criterion"] == pytest.approx(-0.90298, abs=1e-4)
    assert table.loc["A", "bootstrap_low"] <= 0.75 <= table.loc["A", "bootstrap_high"]


def test_pairwise_differences_are_clustered_and_holm_adjusted():
    from statsmodels.stats.multitest import multipletests

    from study.simulate import Variation, synthetic_trials

    frame = synthetic_trials(16, 18, {"real": 0.8, "A": 0.7, "B": 0.3, "C": 0.45}, Variation(0.5, 0.6), seed=3)
    pairs = analysis.pairwise_differences(frame)
    assert [tuple(p) for p in pairs[["model_a", "model_b"]].itertuples(index=False)] == [("A", "B"), ("A", "C"),
                                                                                          ("B", "C")]
    rates = frame.groupby("condition")["judged_real"].mean()
    assert pairs["difference"].iloc[0] == pytest.approx(rates["A"] - rates["B"])
    assert pairs["p_value"].between(0, 1).all() and pairs["p_value"].iloc[0] < 0.05  # 0.7 vs 0.3 is found
    assert pairs["p_holm"].tolist() == pytest.approx(multipletests(pairs["p_value"], method="holm")[1].tolist())
    # two participants cannot support a clustered test: no p-value rather than a wrong one
    tiny = analysis.pairwise_differences(fixture_frame())
    assert tiny["p_value"].isna().all() or tiny["p_value"].between(0, 1).all()


def test_exclusions_are_counted_before_and_after():
    frame = fixture_frame()
    sentinels = pd.DataFrame([{**frame.iloc[0].to_dict(), "kind": "sentinel", "condition": "sentinel",
                               "correct": pid == 1, "participant_id": pid, "photo_id": 99} for pid in (1, 2)])
    rules = {"min_sentinel_accuracy": 1.0, "min_median_response_ms": 300, "require_complete": True}
    people = analysis.participant_table(pd.concat([frame, sentinels]), rules).set_index("participant_id")
    assert not people.loc[1, "excluded"] and people.loc[2, "reasons"] == "failed sentinels"
    summary = analysis.exclusion_summary(pd.concat([frame, sentinels]), rules)
    assert (summary["participants_before"], summary["participants_after"]) == (2, 1)


@pytest.mark.parametrize("always", ["real", "fake"])
def test_a_participant_who_always_gives_one_answer_is_excluded_either_way(always):
    """Attention checks in single mode are all fakes, so "always colorized" passes them: the same-answer rule
    catches both biases."""
    frame = fixture_frame()
    frame = frame.assign(answer=always, judged_real=always == "real",
                         correct=(always == "real") == (frame["condition"] == "real"))
    rules = {"min_sentinel_accuracy": 1.0, "max_same_answer_share": 0.9}
    people = analysis.participant_table(frame, rules)
    assert people["excluded"].all() and people["reasons"].str.contains("same answer").all()
    mixed = analysis.participant_table(fixture_frame(), rules)
    assert not mixed["excluded"].any()


def _eleven_condition_trials(answer_of) -> pd.DataFrame:
    """One participant's counted trials in an 11-condition single-mode study (44 main photos, 4 of them real on
    each list, and 5 all-fake sentinels), answered by ``answer_of(is_real) -> "real" | "fake"``."""
    rows = []
    for index in range(49):
        kind = "main" if index < 44 else "sentinel"
        is_real = kind == "main" and index % 11 == 0
        answer = answer_of(is_real)
        rows.append({"participant_id": 1, "status": "completed", "list_index": 0, "kind": kind, "answered": True,
                     "answer": answer, "correct": (answer == "real") == is_real, "response_ms": 1200.0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("mode", ["single", "2afc"])
def test_a_perfect_participant_is_never_excluded_and_an_always_colorized_one_is(mode):
    from study.protocol import DEFAULT_RULES

    if mode == "single":
        perfect = _eleven_condition_trials(lambda real: "real" if real else "fake")
        biased = _eleven_condition_trials(lambda real: "fake")
    else:  # 2AFC: the real photo on a random side; a perfect participant follows it, a biased one picks "0"
        sides = np.random.default_rng(0).integers(0, 2, 49)
        perfect = _eleven_condition_trials(lambda real: "x").assign(answer=[str(s) for s in sides], correct=True)
        biased = perfect.assign(answer="0", correct=sides == 0)
    if mode == "single":
        assert perfect["answer"].value_counts(normalize=True).max() > 0.9  # what the old share-only rule removed
    assert not analysis.participant_table(perfect, DEFAULT_RULES)["excluded"].any()
    people = analysis.participant_table(biased, DEFAULT_RULES)
    assert people["excluded"].all() and people["reasons"].str.contains("same answer").all()


def test_chart_labels_stay_readable_with_eleven_conditions_and_published_marks(tmp_path):
    from study.report import StudyReport, acceptance_chart

    names = ["real", "balanced", "vivid", "deepcolor-unet", "deepcolor-mobilenet", "deepcolor-densenet",
             "organic-cgan", "organic-resnet18", "ucsd-vgg16", "brown-vgg19", "manipal-fusion"]
    acceptance = pd.DataFrame({"condition": names, "n": 40, "rate": np.linspace(0.8, 0.2, 11),
                               "ci_low": np.linspace(0.7, 0.1, 11), "ci_high": np.linspace(0.9, 0.3, 11)})
    report = StudyReport({"name": "eleven", "mode": "single"}, *(pd.DataFrame(),) * 2, acceptance,
                         *(pd.DataFrame(),) * 3, {})
    figure = acceptance_chart(report)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    boxes = [label.get_window_extent(renderer) for label in axis.get_yticklabels()]
    assert [label.get_text() for label in axis.get_yticklabels()] == names
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    marks = [line for line in axis.get_lines() if line.get_marker() == "D"]
    assert len(marks) == 3  # DeepColor's U-Net and DenseNet, Deep Koalarization (manipal-fusion)
    figure.savefig(tmp_path / "eleven.png")


def test_metric_correlation_direction():
    per_photo = analysis.per_photo_table(fixture_frame())
    correlations = analysis.metric_correlations(per_photo).set_index(["condition", "metric"])
    # within each model, over its photos (not pooled over models)
    assert correlations.loc[("A", "psnr"), "n_photos"] == 4 and ("real", "psnr") not in correlations.index
    # B: acceptance 0,0,1,0 over photos with MSE .01 .. .04 and PSNR 20 .. 23
    assert correlations.loc[("B", "mse"), "spearman_rho"] == pytest.approx(0.2582, abs=1e-3)
    assert set(correlations.index.get_level_values("metric")) == {"psnr", "ssim", "mse", "colorfulness"}


def test_simulated_acceptance_interval_coverage(tmp_path, photos, tiny_colorizer):
    """Through the app's own code and database: across repeated simulated studies (people and photos varying) the
    true acceptance falls inside the primary 95% interval about 95% of the time."""
    template = tmp_path / "template.sqlite"
    engine = make_engine(f"sqlite:///{template}")
    build(make_session_factory(engine), photos, tiny_colorizer, name="cov")
    engine.dispose()
    truth = {"real": 0.8, "balanced": 0.45, "vivid": 0.6}
    inside = total = 0
    for repeat in range(40):
        copy = tmp_path / f"r{repeat}.sqlite"
        shutil.copy(template, copy)
        engine = make_engine(f"sqlite:///{copy}")
        simulate(make_session_factory(engine), 12, truth, "cov", seed=repeat)
        trials = analysis.load_trials(engine, "cov", include_simulated=True)
        table = analysis.acceptance_table(analysis.analysable(trials, {}), bootstrap_repeats=0)
        engine.dispose()
        for row in table.itertuples():
            total += 1
            inside += row.ci_low <= truth[row.condition] <= row.ci_high
    coverage = inside / total
    # 120 intervals; with true coverage 0.95, fewer than 0.87 would happen with probability < 0.1%
    assert 0.87 <= coverage <= 1.0, coverage


def test_parse_accept():
    assert parse_accept("unet=0.45, vivid=0.55,real=0.85") == {"unet": 0.45, "vivid": 0.55, "real": 0.85}
    with pytest.raises(ValueError):
        parse_accept("unet=1.5")


def test_unknown_session_returns_to_the_consent_page(single_study):
    from demo.study_tab import answer_handler

    engine, factory, name = single_study
    screen = answer_handler(StudyService(factory), "stale-token", '{"trial": 1}', "real")
    assert screen.consent_visible and not screen.trial_visible and "not found" in screen.message


def _png_layout(data: bytes) -> list[tuple[str, int]]:
    """(chunk type, length) of every chunk of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset: offset + 4], "big")
        chunks.append((data[offset + 4: offset + 8].decode("ascii"), length))
        offset += 12 + length
    return chunks


@pytest.mark.parametrize("mode", ["single", "2afc"])
def test_no_served_byte_tells_real_from_fake(tmp_path, photos, tiny_colorizer, mode):
    """An adversary's audit: every stimulus a participant receives, through the handlers the app uses. Real and
    fake must not differ in anything but their pixels: no URL or file name, no per-image headers (inline data),
    the same byte length and PNG chunk layout, no metadata chunk."""
    import base64
    import re

    from demo.study_tab import answer_handler, resume_handler, start_handler

    engine = make_engine(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    factory = make_session_factory(engine)
    design = {"mode": mode} if mode == "single" else {"mode": "2afc", "presentation": "together"}
    name = build(factory, photos, tiny_colorizer, name="audit", **design)
    service = StudyService(factory)
    served = []  # (is_real, bytes, html attributes)
    with factory() as session:
        truth = dict(session.execute(select(Stimulus.public_id, Stimulus.is_real)).all())
    for person in range(6):
        screen = start_handler(service, name, True, None, None, None, external_id=f"p{person}")
        while screen.trial_visible:
            if screen.continue_visible:
                screen = resume_handler(service, screen.token, confirmed=True)  # the "Continue" button
                continue
            html = screen.stimulus
            assert "http" not in html and "file=" not in html and "gradio_api" not in html
            images = re.findall(r'<img ([^>]*)src="data:image/png;base64,([^"]+)"', html)
            trial_id = int(html.split('data-trial="')[1].split('"')[0])
            with factory() as session:
                trial = session.get(Trial, trial_id)
                ids = [trial.stimulus.public_id] + ([trial.other_stimulus.public_id] if trial.other_stimulus else [])
            assert len(images) == len(ids)
            for (attributes, data), public_id in zip(images, ids):
                assert public_id not in html  # the opaque id is not even sent
                served.append((truth[public_id], base64.b64decode(data), attributes))
            payload = f'{{"trial": {trial_id}, "response_ms": 900, "display_ms": null}}'
            screen = answer_handler(service, screen.token, payload, "real" if mode == "single" else "0")
    real = [item for item in served if item[0]]
    fake = [item for item in served if not item[0]]
    assert real and fake
    lengths = {len(data) for _, data, _ in served}
    assert len(lengths) == 1  # one byte length for every image of the study
    layouts = {tuple(_png_layout(data)) for _, data, _ in served}
    assert len(layouts) == 1 and {chunk for chunk, _ in next(iter(layouts))} == {"IHDR", "IDAT", "IEND"}
    assert {attributes for _, _, attributes in real} == {attributes for _, _, attributes in fake}
