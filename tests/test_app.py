"""The Gradio app: handlers called directly, the launched server through gradio_client, and a real headless
Chromium for the end-to-end paths (screenshots saved under test-artifacts/)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from demo.colorize_tab import colorize_file, colorize_files, compare_models
from demo.models import ModelPool
from demo.results_tab import ResultsAccess, export_handler, summary_handler

from tests.conftest import launch_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def pool(weights_dir):
    return ModelPool(weights_dir, device="cpu")


@pytest.fixture
def files(tmp_path, gradient_image):
    made = {}
    gradient_image.save(made.setdefault("png", tmp_path / "photo.png"))
    (tmp_path / "notes.txt").write_text("hello")
    made["text"] = tmp_path / "notes.txt"
    (tmp_path / "empty.jpg").write_bytes(b"")
    made["empty"] = tmp_path / "empty.jpg"
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8))
    noise.save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:20000])
    made["corrupt"] = tmp_path / "cut.png"
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")
    made["bomb"] = tmp_path / "bomb.png"
    gradient_image.convert("CMYK").save(made.setdefault("cmyk", tmp_path / "cmyk.jpg"))
    Image.fromarray(np.asarray(gradient_image.convert("L")).astype(np.uint16) * 257).save(
        made.setdefault("16bit", tmp_path / "deep.png"))
    gradient_image.convert("P").save(made.setdefault("palette", tmp_path / "palette.gif"))
    gradient_image.convert("RGBA").save(made.setdefault("alpha", tmp_path / "alpha.png"))
    return made


@pytest.mark.parametrize("kind", ["png", "cmyk", "16bit", "palette", "alpha"])
def test_handler_colorizes_odd_modes(pool, files, kind):
    result = colorize_file(str(files[kind]), "balanced", 128, 1.0, pool)
    with Image.open(result.path) as saved:
        assert saved.size == (61, 47)
        assert saved.mode == ("RGBA" if kind == "alpha" else "RGB")
    assert "61 x 47" in result.info and "cpu" in result.info and "balanced" in result.info


def test_handler_says_only_the_first_frame_was_colorized(pool, files, tmp_path):
    frames = [Image.open(files["png"]).convert("L"), Image.new("L", (61, 47), 200)]
    animation = tmp_path / "moving.gif"
    frames[0].save(animation, save_all=True, append_images=frames[1:])
    result = colorize_file(str(animation), "balanced", 128, 1.0, pool)
    assert result.note == "moving.gif: it holds 2 frames (pages); only the first was colorized."
    assert result.note in result.info
    _, _, report = colorize_files([str(animation), str(files["png"])], "balanced", 128, 1.0, pool)
    assert "Colorized **2 of 2**" in report and "Notes:\n- moving.gif: it holds 2 frames" in report
    assert "Notes" not in colorize_files([str(files["png"])], "balanced", 128, 1.0, pool)[2]
    _, compared = compare_models(str(animation), ["balanced"], 128, pool)
    assert compared.endswith("**Note**: moving.gif: it holds 2 frames (pages); only the first was colorized.")


def test_rgb_model_draws_at_the_photos_own_size_in_the_app(tmp_path, files, rgb_sizes_seen):
    """The working-size slider is for models that keep the photo's lightness; an RGB model ignores it and says so."""
    import torch

    from colorizer import models
    from colorizer.weights import WeightsInfo, save_weights

    torch.manual_seed(0)
    model = models.create("unet", base_channels=8, head="rgb")
    save_weights(model, tmp_path / "w" / "rgbnet.safetensors",
                 WeightsInfo("unet", model.config.to_dict(), working_size=32))
    seen = rgb_sizes_seen
    result = colorize_file(str(files["png"]), "rgbnet", 128, 1.0, ModelPool(tmp_path / "w", device="cpu"))
    assert seen == [47] and "photo's own size" in result.info and "working size" not in result.info


@pytest.mark.parametrize("kind, words", [("text", "not an image"), ("empty", "empty"), ("corrupt", "truncated"),
                                         ("bomb", "too large")])
def test_handler_explains_bad_files(pool, files, kind, words):
    with pytest.raises(gr.Error) as caught:
        colorize_file(str(files[kind]), "balanced", 256, 1.0, pool)
    message = caught.value.message
    assert words in message and files[kind].name in message
    assert str(files[kind].parent) not in message  # no server paths in what the visitor sees


@pytest.mark.slow
def test_handler_colorizes_a_50_megapixel_photo(pool, tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("L", (8165, 6124), 100).save(path, quality=90)
    result = colorize_file(str(path), "balanced", 256, 1.0, pool)
    with Image.open(result.path) as saved:
        assert saved.size == (8165, 6124)
    assert max(result.after.size) <= 1600  # the slider gets a preview, the download the full photo


def test_handler_without_upload_or_with_unknown_model(pool, files):
    with pytest.raises(gr.Error, match="upload a photo"):
        colorize_file(None, "balanced", 256, 1.0, pool)
    with pytest.raises(gr.Error, match="unknown model"):
        colorize_file(str(files["png"]), "nope", 256, 1.0, pool)


def test_batch_handler_keeps_good_files_and_lists_bad(pool, files):
    import zipfile

    gallery, archive, report = colorize_files([str(files["png"]), str(files["text"]), str(files["cmyk"])],
                                              "balanced", 128, 1.0, pool)
    assert len(gallery) == 2 and "2 of 3" in report and "notes.txt" in report
    assert sorted(zipfile.ZipFile(archive).namelist()) == ["cmyk_color.png", "photo_color.png"]


def test_compare_view_shows_each_model_with_its_time(pool, files):
    from demo.colorize_tab import compare_models

    items, text = compare_models(str(files["png"]), ["balanced", "vivid"], 128, pool)
    assert [caption.split(" · ")[0] for _, caption in items] == ["input", "balanced", "vivid"]
    assert all(image.size == (61, 47) for image, _ in items)
    assert "| balanced |" in text and " s |" in text
    with pytest.raises(gr.Error, match="at least one model"):
        compare_models(str(files["png"]), [], 128, pool)
    with pytest.raises(gr.Error, match="Could not read"):
        compare_models(str(files["text"]), ["balanced"], 128, pool)


def test_models_load_once_and_are_shared(pool):
    assert pool.get("balanced") is pool.get("balanced")
    assert pool.names()[0] == "balanced"  # the default model first


def test_results_handlers_check_the_password(tmp_path):
    from study.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    disabled = ResultsAccess("")
    with pytest.raises(gr.Error, match="STUDY_RESULTS_PASSWORD"):
        summary_handler(disabled, engine, None, "anything")
    access = ResultsAccess("correct-horse-41")
    for number, attempt in enumerate((None, "", "wrong")):
        with pytest.raises(gr.Error, match="Wrong password"):
            summary_handler(access, engine, None, attempt, client=f"a{number}")
        with pytest.raises(gr.Error, match="Wrong password"):
            export_handler(access, engine, None, attempt, client=f"b{number}")


def test_guessing_never_locks_out_the_right_password(caplog):
    """200 wrong passwords from 10 addresses within a minute: the right one still works from every address, the
    guessers' wrong answers slow down, and the log says someone may be guessing."""
    now, slept = [0.0], []
    access = ResultsAccess("correct-horse-41", max_failures=5, window_s=60, clock=lambda: now[0],
                           sleep=slept.append, scrypt_n=2 ** 4)
    with caplog.at_level(logging.WARNING, logger="demo.results_tab"):
        for attempt in range(200):
            now[0] = attempt * 0.3
            with pytest.raises(gr.Error, match="Wrong password"):
                access.check(f"guess{attempt}", f"10.0.0.{attempt % 10}")
    for client in [f"10.0.0.{n}" for n in range(10)] + ["researcher"]:
        access.check("correct-horse-41", client)  # never refused, never delayed
    assert len(slept) == 200 - 10 * 4  # each address's first four wrong guesses answer at once
    assert max(slept) == 8.0 and min(slept) == 1.0
    alerts = [r for r in caplog.records if "may be guessing" in r.getMessage()]
    assert len(alerts) == 10  # one per address and window


def test_short_or_missing_password_disables_results():
    for password in ("", "short-pass"):
        access = ResultsAccess(password)
        assert not access.enabled
        with pytest.raises(gr.Error, match="STUDY_RESULTS_PASSWORD"):
            access.check(password)

def test_old_exports_are_removed(tmp_path, monkeypatch):
    import os
    import tempfile

    from demo.results_tab import EXPORT_PREFIX, remove_old_exports

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, new = tmp_path / f"{EXPORT_PREFIX}old", tmp_path / f"{EXPORT_PREFIX}new"
    old.mkdir(), new.mkdir()
    os.utime(old, (1, 1))
    assert remove_old_exports(max_age_s=600) == 1 and not old.exists() and new.exists()


# --- the launched app --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def running_app(weights_dir, tmp_path_factory):
    from demo.app import build_app

    folder = tmp_path_factory.mktemp("app")
    database = folder / "study.sqlite"
    app = build_app(ModelPool(weights_dir, device="cpu"), examples_dir=folder / "examples",
                    database_url=f"sqlite:///{database}", results_password="correct-horse-41")
    url = launch_app(app, mcp=importlib.util.find_spec("mcp") is not None)  # as `python -m demo --mcp`
    yield url, database, app
    app.close()


@pytest.mark.slow
def test_client_colorizes_and_reports_bad_upload(running_app, files):
    from gradio_client import Client, handle_file

    url, _, _ = running_app
    client = Client(url, verbose=False)
    slider, info, download = client.predict(handle_file(str(files["png"])), "balanced", 128, 1.2, api_name="/colorize")
    assert "61 x 47" in info
    with Image.open(download["value"]) as image:
        assert image.size == (61, 47)
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(files["text"])), "balanced", 128, 1.0, api_name="/colorize")
    # the server is still alive after the bad upload
    assert "61 x 47" in client.predict(handle_file(str(files["png"])), "balanced", 128, 1.0, api_name="/colorize")[1]


@pytest.mark.slow
def test_mcp_lists_the_colorize_tools_and_colorizes(running_app):
    """An MCP client sees the colorize tab's functions as tools (the study and results endpoints are not tools)
    and gets a colorized photo back from one."""
    import asyncio
    import base64

    if importlib.util.find_spec("mcp") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the mcp extra is missing but CI=true requires it (requirements-dev.txt)")
        pytest.skip('pip install "gradio[mcp]"')
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    url, _, _ = running_app
    gray = io.BytesIO()
    Image.new("L", (40, 30), 120).save(gray, "PNG")

    async def session():
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as client:
                await client.initialize()
                tools = {tool.name: tool for tool in (await client.list_tools()).tools}
                result = await client.call_tool("colorize_photo", {
                    "path": "data:image/png;base64," + base64.b64encode(gray.getvalue()).decode(),
                    "model_name": "balanced", "working_size": 128, "factor": 1.0})
                return tools, result

    tools, result = asyncio.run(session())
    assert set(tools) == {"colorize_photo", "colorize_photos", "compare_models_on_photo"}
    assert "black-and-white photo" in tools["colorize_photo"].description
    assert set(tools["colorize_photo"].inputSchema["properties"]) == {"path", "model_name", "working_size", "factor"}
    assert not result.isError
    assert "40 x 30" in " ".join(getattr(item, "text", "") for item in result.content)


@pytest.mark.slow
def test_results_api_refuses_without_password(running_app):
    from gradio_client import Client

    url, _, _ = running_app
    client = Client(url, verbose=False)
    for attempt in ("", "wrong"):
        with pytest.raises(Exception, match="Wrong password"):
            client.predict(attempt, api_name="/results_summary")
        with pytest.raises(Exception, match="Wrong password"):
            client.predict(attempt, api_name="/results_export")
    table, _, text = client.predict("correct-horse-41", api_name="/results_summary")
    assert "participants" in text


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 900):
    """A page in Debian's headless Chromium (Playwright cannot download browsers here)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing but CI=true requires the browser tests (see .ci/run)")
        pytest.skip("Debian's chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


@pytest.mark.slow
def test_browser_upload_colorize_and_see_the_result(running_app, files):
    url, _, _ = running_app
    with browser_page() as page:
        page.goto(url)
        page.wait_for_selector("#colorize-button", timeout=60_000)
        page.set_input_files("#source-image input[type=file]", str(files["png"]))
        page.wait_for_selector("#source-image img", timeout=30_000)
        page.click("#colorize-button")
        page.wait_for_function("document.querySelector('#result-info').innerText.includes('colorized')",
                               timeout=60_000)
        page.wait_for_selector("#result-slider img >> visible=true", timeout=30_000)  # decoded and laid out
        images = page.locator("#result-slider img >> visible=true")
        assert images.count() >= 1 and images.first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "colorize_tab.png"), full_page=True)


def _wait_for_next_screen(page, seen: set) -> str:
    """Waits until the server's reply has rendered: a new trial, practice feedback or the completion screen."""
    page.wait_for_function(
        "(() => { const done = document.querySelector('#study-done');"
        " if (done && done.innerText.includes('completion code')) return true;"
        " const next = document.querySelector('#study-continue');"
        " if (next && next.offsetParent !== null) return true;"
        " const t = document.querySelector('#stimulus .trial');"
        f" return t && !{sorted(seen)!r}.includes(t.dataset.trial) && window.colorizerStudy"
        " && window.colorizerStudy.trial === t.dataset.trial && window.colorizerStudy.ready; })()", timeout=30_000)
    if page.locator("#study-done").is_visible():
        return "done"
    if page.locator("#study-continue").is_visible():
        return "feedback"
    return page.locator("#stimulus .trial").get_attribute("data-trial")


def _join_as(page, url: str, participant: str, seen: set) -> str:
    """Opens a participant's link, consents, starts; returns the first screen (``_wait_for_next_screen``)."""
    page.goto(url + f"?PROLIFIC_PID={participant}")
    page.wait_for_selector("#consent-box input", timeout=60_000)
    page.click("#consent-box input")
    page.click("#start-study")
    return _wait_for_next_screen(page, seen)


def _responses(database, external_pattern="%"):
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT t.id, t.kind, r.response_ms, p.status, p.id FROM trials t JOIN participants p ON p.id = t.participant_id "
            "LEFT JOIN responses r ON r.trial_id = t.id WHERE p.external_id_hash IS NOT NULL ORDER BY p.id, t.position"
        ).fetchall()


@pytest.mark.slow
def test_browser_participant_completes_the_study(running_app):
    """Consent to completion code through a study link: feedback under its own practice trial, a reload midway."""
    url, database, _ = running_app
    with browser_page(1100) as page:
        page.goto(url + "?PROLIFIC_PID=browser-test")
        page.wait_for_selector("#consent-box input", timeout=60_000)  # a study link opens the Turing test
        assert not page.get_by_role("tab", name="Colorize").is_visible()
        assert "only the colors are predicted" not in page.locator("body").inner_text()  # not on screen
        page.click("#consent-box input")
        page.click("#start-study")
        seen: set = set()
        feedback_checked, last = False, None
        for _ in range(80):
            state = _wait_for_next_screen(page, seen)
            if state == "done":
                break
            if state == "feedback":
                # the feedback is about the trial still on screen, and the next trial waits for "Continue"
                shown = page.locator("#stimulus .trial").get_attribute("data-trial")
                assert shown in seen and shown == last
                assert "Practice" in page.locator("#trial-progress").inner_text()
                assert page.locator("#trial-feedback").inner_text().strip()
                page.screenshot(path=str(ARTIFACTS / "study_practice_feedback.png"), full_page=True)
                feedback_checked = True
                page.click("#study-continue")
                page.wait_for_selector("#study-continue", state="hidden", timeout=30_000)  # the next trial is on
                continue
            trial = state
            assert not page.locator("#trial-feedback").inner_text().strip()  # no feedback under a new trial
            seen.add(trial)
            if len(seen) == 4:  # a refresh in the middle of the study resumes at the same trial
                page.reload()
                page.wait_for_function("window.colorizerStudy && window.colorizerStudy.ready", timeout=30_000)
                assert page.locator("#stimulus .trial").get_attribute("data-trial") == trial
                page.screenshot(path=str(ARTIFACTS / "study_trial.png"), full_page=True)
            time.sleep(0.35)
            last = trial
            page.click("#answer-row button >> nth=0")  # "Left is real" (2AFC) or "Real photo"
        assert feedback_checked
        assert "completion code" in page.locator("#study-done").inner_text()
        page.screenshot(path=str(ARTIFACTS / "study_done.png"), full_page=True)
    rows = _responses(database)
    answered = [r for r in rows if r[2] is not None]
    assert len(answered) == len(seen) == len(rows) and all(r[3] == "completed" for r in rows)
    assert all(r[2] >= 300 for r in answered)  # measured in the browser


@pytest.mark.slow
def test_browser_double_click_answers_one_trial_and_a_second_id_starts_afresh(running_app):
    url, database, app = running_app
    with browser_page(1100) as page:
        seen: set = set()
        state = _join_as(page, url, "double-clicker", seen)
        before = len([r for r in _responses(database) if r[2] is not None])
        page.dblclick("#answer-row button >> nth=0", delay=40)  # a human double click: two clicks 40 ms apart
        time.sleep(2.0)  # long enough for the reply and for a wrongly accepted second answer to be stored
        after = [r for r in _responses(database) if r[2] is not None]
        assert len(after) == before + 1
        # the next screen (practice feedback or a trial) still waits for its own answer
        assert page.locator("#study-continue").is_visible() or page.locator("#stimulus .trial").get_attribute(
            "data-trial") != state
        # another participant id on the same browser: a new participant at the consent page, not the old session
        page.goto(url + "?PROLIFIC_PID=second-person")
        page.wait_for_selector("#consent-box input", timeout=60_000)
        assert page.locator("#consent-box input").is_visible()
        assert not page.locator("#study-done").is_visible()
        page.click("#consent-box input")
        page.click("#start-study")
        _wait_for_next_screen(page, set())
        # and the first id comes back to its own session
        page.goto(url + "?PROLIFIC_PID=double-clicker")
        page.wait_for_function("window.colorizerStudy && window.colorizerStudy.ready || "
                               "(document.querySelector('#study-continue') || {}).offsetParent", timeout=30_000)
        assert not page.locator("#consent-box input").is_visible()
    participants = {r[4] for r in _responses(database)}
    assert len(participants) >= 2


@pytest.mark.slow
def test_browser_held_enter_answers_one_trial(running_app):
    """Keyboard auto-repeat (a held Enter on an answer button) stores one answer, not one per repeat."""
    url, database, app = running_app
    with browser_page(1100) as page:
        seen: set = set()
        state = _join_as(page, url, "key-holder", seen)
        while state == "feedback" or "Practice" in page.locator("#trial-progress").inner_text():
            if state == "feedback":  # practice answers wait for "Continue": hold the key on a main trial instead
                page.click("#study-continue")
                page.wait_for_selector("#study-continue", state="hidden", timeout=30_000)
            else:
                seen.add(state)
                page.click("#answer-row button >> nth=0")
            state = _wait_for_next_screen(page, seen)
        before = len([r for r in _responses(database) if r[2] is not None])
        page.focus("#answer-row button >> nth=0")
        page.keyboard.down("Enter")
        for _ in range(12):  # what a held key sends: keydown events with event.repeat set, ~30 a second
            time.sleep(0.03)
            page.keyboard.down("Enter")
        time.sleep(1.5)
        page.keyboard.up("Enter")
        time.sleep(1.0)
        after = [r for r in _responses(database) if r[2] is not None]
        assert len(after) == before + 1
        assert page.locator("#study-continue").is_visible() or page.locator("#stimulus .trial").get_attribute(
            "data-trial") != state
        page.screenshot(path=str(ARTIFACTS / "study_after_held_enter.png"), full_page=True)


@pytest.mark.slow
def test_browser_check_before_consent_refuses_phones_and_small_windows(running_app):
    """A phone and a window too small for the photos at full size are refused at Start, before anyone is
    registered; enlarged, the same page starts and the participant's window size is stored."""
    url, database, app = running_app
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")

    def registered():
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT COUNT(*) FROM participants").fetchone()[0]

    def press_start(page, participant):
        page.goto(url + f"?PROLIFIC_PID={participant}")
        page.wait_for_selector("#consent-box input", timeout=60_000)
        page.click("#consent-box input")
        page.click("#start-study")
        page.wait_for_function("document.querySelector('#study-message').innerText.includes('This study needs') || "
                               "(window.colorizerStudy && window.colorizerStudy.ready)", timeout=30_000)
        return page.locator("#study-message").inner_text()

    before = registered()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(has_touch=True, is_mobile=True, viewport={"width": 390, "height": 844})
            assert "mouse or trackpad" in press_start(phone.new_page(), "on-a-phone")
            page = browser.new_context(viewport={"width": 640, "height": 480}).new_page()
            message = press_start(page, "small-window")
            assert "at least" in message and "640 x 480" in message
            assert "at least" in page.locator("body").inner_text()  # the requirement is said before consent too
            page.screenshot(path=str(ARTIFACTS / "study_small_window.png"), full_page=True)
            assert registered() == before
            page.set_viewport_size({"width": 1100, "height": 900})
            page.click("#start-study")
            page.wait_for_function("window.colorizerStudy && window.colorizerStudy.ready || "
                                   "(document.querySelector('#study-continue') || {}).offsetParent", timeout=30_000)
        finally:
            browser.close()
    assert registered() == before + 1
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT window_width, window_height, touch_only FROM participants "
                                  "ORDER BY id DESC LIMIT 1").fetchone() == (1100, 900, 0)


def test_exported_report_is_encrypted_with_the_password(tmp_path, tiny_colorizer):
    import zipfile

    import numpy as np
    import pyzipper
    from PIL import Image

    from study.db import make_engine, make_session_factory
    from study.stimuli import StudyDesign, build_study, skimage_photos

    engine = make_engine(f"sqlite:///{tmp_path / 'e.sqlite'}")
    photos = [(label, np.asarray(Image.fromarray(rgb).resize((64, 64)))) for label, rgb in skimage_photos()]
    with make_session_factory(engine).begin() as session:
        build_study(session, StudyDesign(name="e", size=48), photos, {"tiny": tiny_colorizer})
    archive = export_handler(ResultsAccess("correct-horse-41"), engine, "e", "correct-horse-41", client="me")
    assert not (archive.parent / "report").exists()  # only the encrypted zip stays on disk
    with zipfile.ZipFile(archive) as plain:  # the standard library cannot read it without the password
        names = plain.namelist()
        assert "summary.json" in names and all(info.flag_bits & 0x1 for info in plain.infolist())
        with pytest.raises(RuntimeError):
            plain.read("summary.json")
    with pyzipper.AESZipFile(archive) as bundle:
        bundle.setpassword(b"correct-horse-41")
        assert b'"study"' in bundle.read("summary.json")
        assert b'"Dataset"' in bundle.read("psych-ds/dataset_description.json")
        assert "psych-ds/data/study-e_data.csv" in bundle.namelist()


class _HeldBuildPool(ModelPool):
    """Real models; the background study build waits at its first photo until the test lets it go, so the test
    sees the app while the build is under way, however fast the tiny model is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def get(self, name):
        colorizer, release = super().get(name), self.release

        class Held:
            def __getattr__(self, attribute):
                return getattr(colorizer, attribute)

            def colorize_photo(self, *args, **kwargs):
                if threading.current_thread().name == "default-study-build":
                    release.wait(60)
                return colorizer.colorize_photo(*args, **kwargs)

        return Held()


@pytest.mark.slow
def test_app_serves_while_the_default_study_is_built_in_the_background(weights_dir, tmp_path, files):
    from gradio_client import Client, handle_file

    from demo.app import build_app
    from demo.study_tab import start_handler

    pool = _HeldBuildPool(weights_dir, device="cpu")
    app = build_app(pool, examples_dir=tmp_path / "examples", database_url=f"sqlite:///{tmp_path / 'study.sqlite'}",
                    build_in_background=True)
    build, service = app.default_study_build, app.study_service
    try:
        url = launch_app(app)
        # colorizing works at once
        info = Client(url, verbose=False).predict(handle_file(str(files["png"])), "balanced", 128, 1.0,
                                                  api_name="/colorize")[1]
        assert "61 x 47" in info
        # a participant who arrives now is asked to come back; nobody joins a half-made study
        early = start_handler(service, "default", True, None, None, None, "early-bird", build.pending)
        assert early.consent_visible and "still being prepared" in early.message
        with sqlite3.connect(tmp_path / "study.sqlite") as connection:
            assert connection.execute("select count(*) from participants").fetchone()[0] == 0
        pool.release.set()
        assert build.wait(120) and build.pending() is None
        later = start_handler(service, "default", True, None, None, None, "early-bird", build.pending)
        assert later.trial_visible and not later.message
    finally:
        pool.release.set()
        build.wait(120)
        app.close()
