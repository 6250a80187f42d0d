"""Study storage under concurrency: SQLite (WAL) writes through ``StudyService``, and the Gradio app under
simulated participants through ``gradio_client`` on localhost."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from study.db import make_engine, make_session_factory
from study.schema import Response
from study.service import StudyService
from study.stimuli import StudyDesign, build_study


def _photos(count: int = 24, size: int = 48):
    rng = np.random.default_rng(0)
    return [(f"synthetic{i}", rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for i in range(count)]


class _Identity:
    """A stand-in colorizer for storage benchmarks: the image content does not matter to the database."""

    def colorize_photo(self, photo, size=None):
        from PIL import Image

        return Image.fromarray((photo.gray * 255).astype("uint8")).convert("RGB")


def storage_table(writer_counts=(1, 8, 32, 64), answers_per_writer: int = 40) -> list[dict]:
    rows = []
    for writers in writer_counts:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'bench.sqlite'}")
            factory = make_session_factory(engine)
            with factory.begin() as session:
                build_study(session, StudyDesign(name="bench", size=32, practice_trials=0), _photos(),
                            {"a": _Identity(), "b": _Identity()})
            service = StudyService(factory)
            tokens = [service.start("bench", True).token for _ in range(writers)]
            latencies, lock, sent = [], threading.Lock(), [0]

            def participant(token):
                state = service.resume(token)
                own = []
                while not state.done and len(own) < answers_per_writer:
                    start = time.perf_counter()
                    state = service.answer(token, state.trial.trial_id, "real", 800.0, None)
                    own.append((time.perf_counter() - start) * 1000)
                with lock:
                    latencies.extend(own)
                    sent[0] += len(own)

            started = time.perf_counter()
            with ThreadPoolExecutor(writers) as pool:
                list(pool.map(participant, tokens))
            elapsed = time.perf_counter() - started
            with factory() as session:
                stored = session.scalar(select(func.count()).select_from(Response))
                distinct = session.scalar(select(func.count(func.distinct(Response.trial_id))))
            engine.dispose()
        rows.append({"writers": writers, "responses": sent[0], "stored": stored, "duplicates": stored - distinct,
                     "responses_per_s": sent[0] / elapsed, "p50_ms": float(np.percentile(latencies, 50)),
                     "p99_ms": float(np.percentile(latencies, 99))})
    return rows


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_latency(participants: int = 20, weights_dir: str | None = None) -> dict:
    """p50/p95 time from an answer to the next image, ``participants`` answering at once via gradio_client.

    The app runs in its own process (``python -m demo``), as deployed, so client threads do not share its GIL.
    """
    import json
    import subprocess
    import sys

    import httpx
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        command = [sys.executable, "-m", "demo", "--port", str(port), "--db", f"sqlite:///{Path(folder) / 'app.sqlite'}"]
        if weights_dir:
            command += ["--weights-dir", weights_dir]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.time() + 180
            while True:
                try:
                    Client(url, verbose=False)
                    break
                except Exception:
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError("the app did not start")
                    time.sleep(1)
            latencies, lock = [], threading.Lock()

            def trial_of(outputs) -> int | None:
                html = next((o for o in outputs if isinstance(o, str) and 'data-trial="' in o), None)
                return int(html.split('data-trial="')[1].split('"')[0]) if html else None

            def participant(index):
                # the start goes through gradio_client (untimed); answers are plain HTTP POSTs to the answer
                # endpoint, which runs outside Gradio's queue, as the browser's own client sends them: a Python
                # gradio_client adds ~80 ms of its own per call (a no-op event measured 816 ms p50 with 20 of them)
                client = Client(url, verbose=False)
                ready_by = time.time() + 900  # a fresh app builds its default study first: wait for it, not fail
                while True:
                    outputs = client.predict(True, None, None, None, "", api_name="/study_start")
                    if trial_of(outputs) is not None or time.time() > ready_by:
                        break
                    time.sleep(3)
                token = outputs[-2]  # the hidden token box; the last output is the "continue my session" button
                pair = any(isinstance(o, str) and 'class="trial pair"' in o for o in outputs)
                answer_endpoint = "study_answer_0" if pair else "study_answer_real"
                trial, own = trial_of(outputs), []
                session = f"bench-{index}"  # one session per participant, as a browser tab keeps one
                with httpx.Client(timeout=60) as http:
                    def call(endpoint, *data):
                        reply = http.post(f"{url}gradio_api/run/{endpoint}",
                                          json={"data": list(data), "session_hash": session})
                        reply.raise_for_status()
                        return reply.json()["data"]

                    for _ in range(120):
                        if trial is None:
                            break
                        payload = json.dumps({"trial": trial, "response_ms": 900, "display_ms": None})
                        start = time.perf_counter()
                        outputs = call(answer_endpoint, token, payload)
                        elapsed = (time.perf_counter() - start) * 1000
                        following = trial_of(outputs)
                        if following is None and not any("completion code" in str(o) for o in outputs):
                            outputs = call("study_continue", token)  # practice feedback, then on
                            following = trial_of(outputs)
                        elif following is not None:
                            own.append(elapsed)  # answer -> next image (inline in the reply)
                        trial = following
                with lock:
                    latencies.extend(own)

            with ThreadPoolExecutor(participants) as executor:
                list(executor.map(participant, range(participants)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    if not latencies:
        raise RuntimeError("no participant got past the first trial: the app's default study never became ready")
    return {"participants": participants, "answers": len(latencies), "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)), "mean_ms": statistics.fmean(latencies)}
