"""The Gradio app: handlers called directly, the launched server through gradio_client, and a real headless
Chromium for the end-to-end paths (screenshots saved under test-artifacts/)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from demo.colorize_tab import colorize_file, colorize_files
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


def test_models_load_once_and_are_shared(pool):
    assert pool.get("balanced") is pool.get("balanced")
    assert pool.names()[0] == "balanced"  # the default model first


def test_results_handlers_check_the_password(tmp_path):
    from study.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    disabled = ResultsAccess("")
    with pytest.raises(gr.Error, match="STUDY_RESULTS_PASSWORD"):
        summary_handler(disabled, engine, None, "anything")
    access = ResultsAccess("s3cret")
    for attempt in (None, "", "wrong"):
        with pytest.raises(gr.Error, match="Wrong password"):
            summary_handler(access, engine, None, attempt)
        with pytest.raises(gr.Error, match="Wrong password"):
            export_handler(access, engine, None, attempt)


# --- the launched app --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def running_app(weights_dir, tmp_path_factory):
    from demo.app import build_app

    folder = tmp_path_factory.mktemp("app")
    database = folder / "study.sqlite"
    app = build_app(ModelPool(weights_dir, device="cpu"), examples_dir=folder / "examples",
                    database_url=f"sqlite:///{database}", results_password="s3cret")
    url = launch_app(app)
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
def test_results_api_refuses_without_password(running_app):
    from gradio_client import Client

    url, _, _ = running_app
    client = Client(url, verbose=False)
    for attempt in ("", "wrong"):
        with pytest.raises(Exception, match="Wrong password"):
            client.predict(attempt, api_name="/results_summary")
        with pytest.raises(Exception, match="Wrong password"):
            client.predict(attempt, api_name="/results_export")
    table, _, text = client.predict("s3cret", api_name="/results_summary")
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


@pytest.mark.slow
def test_browser_participant_completes_the_study(running_app):
    url, database, _ = running_app
    with browser_page(1100) as page:
        page.goto(url + "?PROLIFIC_PID=browser-test")
        page.get_by_role("tab", name="Turing test").click()
        page.click("#consent-box input")
        page.click("#start-study")
        page.wait_for_selector("#stimulus .trial img.stimulus", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "study_trial.png"), full_page=True)
        seen = set()
        for _ in range(40):
            # wait until the server's reply has rendered: a new trial or the completion screen
            page.wait_for_function(
                "(() => { const done = document.querySelector('#study-done');"
                " if (done && done.innerText.includes('completion code')) return true;"
                " const t = document.querySelector('#stimulus .trial');"
                f" return t && !{sorted(seen)!r}.includes(t.dataset.trial); }})()", timeout=30_000)
            if page.locator("#study-done").is_visible() and "completion code" in page.locator("#study-done").inner_text():
                break
            trial = page.locator("#stimulus .trial").get_attribute("data-trial")
            if trial in seen:  # wait until the next trial has rendered
                time.sleep(0.2)
                continue
            seen.add(trial)
            page.wait_for_function("window.colorizerStudy && window.colorizerStudy.trial === "
                                   f"'{trial}' && window.colorizerStudy.ready", timeout=10_000)
            if len(seen) == 3:  # a refresh in the middle of the study resumes at the same trial
                page.reload()
                page.get_by_role("tab", name="Turing test").click()
                page.wait_for_selector("#stimulus .trial img.stimulus", timeout=30_000)
                assert page.locator("#stimulus .trial").get_attribute("data-trial") == trial
                assert page.locator("#trial-progress").inner_text().startswith(("Photo 3", "Practice 3"))
                page.wait_for_function("window.colorizerStudy && window.colorizerStudy.ready", timeout=10_000)
            time.sleep(0.35)
            page.click("#answer-real")
        assert "completion code" in page.locator("#study-done").inner_text()
        page.screenshot(path=str(ARTIFACTS / "study_done.png"), full_page=True)
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT r.response_ms, p.status FROM responses r JOIN trials t ON t.id = r.trial_id "
            "JOIN participants p ON p.id = t.participant_id WHERE p.external_id_hash IS NOT NULL").fetchall()
    assert len(rows) == len(seen) and all(status == "completed" for _, status in rows)
    assert all(ms is not None and ms >= 300 for ms, _ in rows)  # measured in the browser
