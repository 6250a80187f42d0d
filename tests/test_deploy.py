"""The README's deployment past one process: two app processes on one PostgreSQL database behind nginx with
sticky sessions (deploy/nginx-colorizer.conf, as shipped). A participant's process is killed mid-study; they
reload, continue on the other process and finish, with no answer lost or doubled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from study.stimuli import skimage_photos
from tests.conftest import new_postgres_database
from tests.postgres import _free_port as free_port
from tests.test_app import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _join_as, _wait_for_next_screen

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "deploy" / "nginx-colorizer.conf"


def wait_for_http(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def nginx_config(folder: Path, listen: int, backends: list[int]) -> Path:
    """The shipped file with this test's ports, inside a minimal nginx.conf that keeps everything in ``folder``."""
    snippet = SHIPPED_CONFIG.read_text()
    assert "127.0.0.1:7861" in snippet and "127.0.0.1:7862" in snippet and "listen 8080;" in snippet
    snippet = (snippet.replace("127.0.0.1:7861", f"127.0.0.1:{backends[0]}")
               .replace("127.0.0.1:7862", f"127.0.0.1:{backends[1]}").replace("listen 8080;", f"listen {listen};"))
    (folder / "colorizer.conf").write_text(snippet)
    temp = "".join(f"{kind}_temp_path {folder / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                       "scgi"))
    main = folder / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        + "events {}\nhttp {\n" + f"access_log {folder / 'access.log'};\n" + temp
        + f"include {folder / 'colorizer.conf'};\n}}\n")
    return main


@pytest.mark.slow
def test_two_processes_behind_nginx_a_participant_survives_a_killed_process(tmp_path, postgres_server):
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing but CI=true requires the deployment test (scripts/install-test-services.sh)")
        pytest.skip("Debian's nginx is not installed")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing but CI=true requires the browser tests")
        pytest.skip("Debian's chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    url = new_postgres_database(postgres_server)
    images = tmp_path / "photos"
    images.mkdir()
    for label, rgb in skimage_photos():
        Image.fromarray(np.asarray(Image.fromarray(rgb).resize((96, 96)))).save(images / f"{label}.png")
    built = subprocess.run([sys.executable, "-m", "study", "build", "--db", url, "--images", images, "--models",
                            "balanced", "--name", "multi", "--size", "64", "--mode", "single"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]

    ports = [free_port(), free_port()]
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    apps = {port: subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port), "--db", url, "--study",
                                    "multi"], cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL,
                                   stderr=open(tmp_path / f"app-{port}.log", "w"))
            for port in ports}
    listen = free_port()
    proxy = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(nginx_config(tmp_path, listen,
                                                                                                  ports))],
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nginx.out", "w"))
    front = f"http://127.0.0.1:{listen}/"
    try:
        for port, process in apps.items():
            wait_for_http(f"http://127.0.0.1:{port}/", process)
        wait_for_http(front, proxy)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            participants = {}  # upstream port -> (page, id, trials seen)
            for attempt in range(12):  # new browsers until one participant sits on each process
                page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
                served = []
                page.on("response", lambda response, served=served: served.append(
                    response.headers.get("x-colorizer-upstream", "")) if "/gradio_api/" in response.url else None)
                seen: set = set()
                state = _join_as(page, front, f"proxy-{attempt}", seen)
                port = int(served[-1].rsplit(":", 1)[1])
                assert {int(entry.rsplit(":", 1)[1]) for entry in served if entry} == {port}  # sticky
                if port in participants:
                    page.context.close()
                    continue
                participants[port] = (page, f"proxy-{attempt}", seen, state)
                if len(participants) == 2:
                    break
            assert len(participants) == 2, "nginx sent every new browser to the same process"

            def answer(page, seen, state, count):
                for _ in range(count):
                    if state == "feedback":
                        page.click("#study-continue")
                        page.wait_for_selector("#study-continue", state="hidden", timeout=30_000)
                        state = _wait_for_next_screen(page, seen)
                        continue
                    if state == "done":
                        return state
                    seen.add(state)
                    time.sleep(0.35)
                    page.click("#answer-row button >> nth=0")
                    state = _wait_for_next_screen(page, seen)
                return state

            for port, (page, participant, seen, state) in participants.items():
                participants[port] = (page, participant, seen, answer(page, seen, state, 3))
            victim_port, survivor_port = ports
            apps[victim_port].send_signal(signal.SIGKILL)  # the process dies mid-study
            apps[victim_port].wait()
            page, participant, seen, _ = participants[victim_port]
            page.reload()
            page.wait_for_function("window.colorizerStudy && window.colorizerStudy.ready", timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "deploy_after_failover.png"), full_page=True)
            if page.locator("#study-continue").is_visible():
                resumed = "feedback"  # practice feedback of the last answer, shown again
            else:
                resumed = page.locator("#stimulus .trial").get_attribute("data-trial")
                assert resumed not in seen  # the next unanswered trial, not one already answered
            participants[victim_port] = (page, participant, seen, resumed)
            answered = []
            for port, (page, participant, seen, state) in participants.items():
                assert answer(page, seen, state, 200) == "done"
                assert "completion code" in page.locator("#study-done").inner_text()
                answered.append(len(seen))
            browser.close()
    finally:
        proxy.send_signal(signal.SIGTERM)
        for process in apps.values():
            process.send_signal(signal.SIGTERM)
        for process in [proxy, *apps.values()]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT p.status, COUNT(t.id), COUNT(r.id), COUNT(DISTINCT r.trial_id) FROM participants p "
            "JOIN trials t ON t.participant_id = p.id LEFT JOIN responses r ON r.trial_id = t.id "
            "WHERE p.external_id_hash IS NOT NULL AND p.status = 'completed' GROUP BY p.id, p.status")).fetchall()
    engine.dispose()
    assert len(rows) == 2  # both finished (other browsers that joined and left are not counted here)
    for status, trials, responses, distinct in rows:
        assert trials == responses == distinct  # every trial answered once: nothing lost, nothing doubled
    assert sorted(responses for _, _, responses, _ in rows) == sorted(answered)  # each click stored once
