"""The resumable archive job and the provenance label, as a user meets them: the CLI in a subprocess, killed at
random moments; labels read back by ExifTool, a reader that is not the writer."""

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorizer.archive import (MANIFEST_NAME, Manifest, colorize_item, colorize_items, discover, file_sha256,
                               job_settings, parse_shard, plan, shard_of)
from colorizer.provenance import DIGITAL_SOURCE_TYPE, read_provenance

ROOT = Path(__file__).resolve().parent.parent


def exiftool(*args) -> list[dict]:
    if shutil.which("exiftool") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("exiftool is missing but CI=true requires it (see scripts/install-test-services.sh)")
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
    result = subprocess.run(["exiftool", "-j", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def make_archive(folder: Path, count: int, side: int = 96) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for index in range(count):
        sub = folder / f"box{index % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[0:side, 0:side]
        gray = ((x * (index + 1) + y * 3 + rng.integers(0, 20, (side, side))) % 256).astype(np.uint8)
        path = sub / f"photo{index:03d}.{'jpg' if index % 2 else 'png'}"
        Image.fromarray(gray, "L").save(path)
        paths.append(path)
    (folder / "box0" / "README.txt").write_text("sidecar notes, not a photo")
    return paths


def colorize_cli(*args, **popen):
    command = [sys.executable, "-m", "colorizer", "colorize", *map(str, args)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """Each output's inode and mtime: a file written again gets a new inode (written, then renamed into place)."""
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in out.rglob("*.png") if not p.name.startswith(".")}


def test_discover_keeps_structure_ignores_sidecars_and_splits_collisions(tmp_path):
    make_archive(tmp_path / "in", 6)
    Image.new("L", (8, 8)).save(tmp_path / "in" / "box0" / "photo000.jpg")  # photo000.png exists too
    items, ignored = discover([tmp_path / "in"])
    outputs = {item.relpath: item.output for item in items}
    assert outputs["box1/photo001.jpg"] == "box1/photo001.png"
    assert outputs["box0/photo000.png"] == "box0/photo000.png.png"
    assert outputs["box0/photo000.jpg"] == "box0/photo000.jpg.png"
    assert [p.name for p in ignored] == ["README.txt"]
    both, _ = discover([tmp_path / "in" / "box1", tmp_path / "in" / "box2"], "jpeg")
    assert {item.output for item in both} == {"box1/photo001.jpg", "box1/photo004.jpg", "box2/photo002.jpg",
                                              "box2/photo005.jpg"}


def test_shards_partition_the_work_deterministically():
    names = [f"folder/photo{i}.jpg" for i in range(500)]
    shards = [{name for name in names if shard_of(name, 4) == index} for index in range(4)]
    assert set().union(*shards) == set(names) and sum(map(len, shards)) == len(names)
    assert min(map(len, shards)) > 80  # roughly even
    assert shards == [{name for name in names if shard_of(name, 4) == index} for index in range(4)]
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_output_written_but_not_recorded_is_adopted_not_rewritten(tmp_path, tiny_colorizer):
    """The window between the rename and the manifest update: the rerun recognises the finished file."""
    make_archive(tmp_path / "in", 2)
    items, _ = discover([tmp_path / "in"])
    out = tmp_path / "out"
    first = colorize_item(tiny_colorizer, items[0], out)  # written, never recorded (as if killed right after)
    assert first.state == "done"
    before = snapshot(out)
    manifest = Manifest(out)
    job = plan(items, manifest, out)
    assert [item.relpath for item in job.todo] == [item.relpath for item in items]
    again = colorize_item(tiny_colorizer, items[0], out)
    assert again.state == "adopted" and snapshot(out) == before
    (tmp_path / "in" / items[0].relpath).write_bytes((tmp_path / "in" / items[1].relpath).read_bytes())
    changed = colorize_item(tiny_colorizer, items[0], out)  # same name, other content: coloured again
    assert changed.state == "done" and snapshot(out) != before
    manifest.close()


def test_reading_and_writing_on_threads_give_what_one_photo_at_a_time_gives(tmp_path, tiny_colorizer):
    """The pipelined job (reads ahead, writes behind) against the plain loop: the same outcomes, the same pixels, a
    bad file failed in both, an output already there adopted in both, no partial file left."""
    make_archive(tmp_path / "in", 9)
    (tmp_path / "in" / "box1" / "broken.jpg").write_bytes(b"not a jpeg at all")
    items, _ = discover([tmp_path / "in"])
    outcomes = {}
    for threads in (0, 3):
        out = tmp_path / f"out{threads}"
        colorize_item(tiny_colorizer, items[0], out)  # as if an earlier run wrote it
        outcomes[threads] = {outcome.relpath: outcome for outcome in
                             colorize_items(tiny_colorizer, items, out, io_threads=threads)}
    plain, threaded = outcomes[0], outcomes[3]
    assert sorted(threaded) == sorted(plain) == sorted(item.relpath for item in items)
    states = {relpath: outcome.state for relpath, outcome in threaded.items()}
    assert states == {relpath: outcome.state for relpath, outcome in plain.items()}
    assert states[items[0].relpath] == "adopted" and states["box1/broken.jpg"] == "failed"
    assert list(states.values()).count("done") == len(items) - 2
    assert threaded["box1/broken.jpg"].reason == plain["box1/broken.jpg"].reason
    for item in items:
        if states[item.relpath] != "failed":
            assert threaded[item.relpath].sha256 == file_sha256(item.path)
            with Image.open(tmp_path / "out0" / item.output) as one, Image.open(tmp_path / "out3" / item.output) as two:
                assert np.array_equal(np.asarray(one), np.asarray(two)), item.relpath
    assert not list((tmp_path / "out3").rglob(".*partial*"))


def test_threaded_job_holds_a_bounded_number_of_photos(tmp_path, tiny_colorizer):
    """Memory stays bounded on a huge archive: inputs are taken from the list only as outcomes come back, at most
    io_threads read ahead, io_threads being written and one in the network."""
    make_archive(tmp_path / "in", 12)
    items, _ = discover([tmp_path / "in"])
    taken = []

    def listed():
        for item in items:
            taken.append(item.relpath)
            yield item

    in_flight = []
    outcomes = []
    for outcome in colorize_items(tiny_colorizer, listed(), tmp_path / "out", io_threads=2):
        in_flight.append(len(taken) - len(outcomes))
        outcomes.append(outcome)
    assert max(in_flight) <= 2 * 2 + 1
    assert sorted(outcome.relpath for outcome in outcomes) == sorted(item.relpath for item in items)
    assert {outcome.state for outcome in outcomes} == {"done"}


def test_threaded_job_stopped_by_an_error_leaves_only_whole_outputs(tmp_path, tiny_colorizer):
    """An unexpected error in the network (or Ctrl-C) ends the job: the photos already coloured are written whole,
    nothing more is read, and a rerun adopts what was written."""
    make_archive(tmp_path / "in", 8)
    items, _ = discover([tmp_path / "in"])
    calls = []

    class Failing:
        def __getattr__(self, name):
            return getattr(tiny_colorizer, name)

        def colorize(self, image):
            calls.append(1)
            if len(calls) == 4:
                raise RuntimeError("the network broke")
            return tiny_colorizer.colorize(image)

    out = tmp_path / "out"
    seen = []
    with pytest.raises(RuntimeError, match="the network broke"):
        for outcome in colorize_items(Failing(), items, out, io_threads=2):
            seen.append(outcome)
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*.png"))
    assert len(written) == 3 and not list(out.rglob(".*partial*"))
    for name in written:
        with Image.open(out / name) as image:
            image.load()  # whole: decodes to the end
    again = {outcome.relpath: outcome.state for outcome in colorize_items(tiny_colorizer, items, out, io_threads=2)}
    assert sorted(again.values()).count("adopted") == 3 and list(again.values()).count("done") == 5


def test_rerun_with_other_weights_is_refused(tmp_path, tiny_colorizer):
    manifest = Manifest(tmp_path)
    manifest.check_job(job_settings(tiny_colorizer, "png"))
    manifest.check_job(job_settings(tiny_colorizer, "png"))  # same settings: fine
    with pytest.raises(ValueError, match="other settings"):
        manifest.check_job({**job_settings(tiny_colorizer, "png"), "weights_sha256": "0" * 64})
    manifest.close()


@pytest.mark.slow
def test_job_killed_three_times_finishes_with_every_photo_written_once(tmp_path, tiny_weights):
    inputs = make_archive(tmp_path / "in", 72, side=160)  # enough work left after each kill on a fast machine
    (tmp_path / "in" / "box1" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    args = [tmp_path / "in", "--out", out, "--weights", tiny_weights, "--size", "64"]
    seen: dict[str, tuple[int, int]] = {}
    rng = random.Random(7)
    kills = 0
    while kills < 3:
        process = colorize_cli(*args)
        deadline = time.monotonic() + 120
        while len(snapshot(out)) <= len(seen) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # until this run has written something new
        time.sleep(rng.uniform(0.0, 0.08))  # a random moment, mid-photo or between photos
        if process.poll() is not None:
            break  # finished before it could be killed: the rest of the test still checks everything
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        now = snapshot(out)
        assert all(now.get(name, stamp) == stamp for name, stamp in seen.items()), "an output was rewritten"
        seen.update(now)
    assert kills == 3, "the job ended before it was killed three times: make the photos larger"
    final = colorize_cli(*args)
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 1, stderr  # the corrupt photo
    assert "corrupt.jpg" in stderr and "README.txt" not in stderr and "Traceback" not in stderr
    now = snapshot(out)
    assert all(now[name] == stamp for name, stamp in seen.items()), "an output was rewritten"
    assert len(now) == len(inputs)
    assert not [p for p in out.rglob(".*partial*")], "partial files left behind"
    with sqlite3.connect(out / MANIFEST_NAME) as db:
        states = dict(db.execute("SELECT relpath, state FROM inputs"))
        hashes = dict(db.execute("SELECT relpath, sha256 FROM inputs"))
    assert states.pop("box1/corrupt.jpg") == "failed"
    assert set(states.values()) == {"done"} and len(states) == len(inputs)
    for path in inputs:
        relpath = path.relative_to(tmp_path / "in").as_posix()
        output = out / (relpath.rsplit(".", 1)[0] + ".png")
        with Image.open(output) as image:
            image.load()  # whole, not truncated
            assert image.size == (160, 160) and image.mode == "RGB"
        label = read_provenance(output)
        assert label["colorizer:SourceSHA256"] == hashes[relpath] == file_sha256(path)
    rerun = colorize_cli(*args)
    stdout, _ = rerun.communicate(timeout=300)
    assert f"skipped {len(inputs)} done before" in stdout and snapshot(out) == now
    retried = colorize_cli(*args, "--retry-failed")
    _, stderr = retried.communicate(timeout=300)
    assert retried.returncode == 1 and "corrupt.jpg" in stderr


def recorded_done(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / MANIFEST_NAME}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM inputs WHERE state = 'done'").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def test_ctrl_c_says_what_is_kept_and_the_rerun_finishes(tmp_path, tiny_weights):
    make_archive(tmp_path / "in", 71, side=160)
    pages = [Image.new("L", (160, 160), level) for level in (40, 220)]
    pages[0].save(tmp_path / "in" / "album.tif", save_all=True, append_images=pages[1:])  # first in order
    out = tmp_path / "out"
    args = [tmp_path / "in", "--out", out, "--weights", tiny_weights, "--size", "64"]
    process = colorize_cli(*args)
    deadline = time.monotonic() + 120
    while not recorded_done(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # until the manifest holds a photo (an output on disk may not be recorded yet)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    kept = int(re.search(r"stopped: (\d+) photos are done and kept; run the same command again", stderr).group(1))
    assert 1 <= kept < 72 and not list(out.rglob(".*partial*"))
    with sqlite3.connect(out / MANIFEST_NAME) as db:
        album_done = db.execute("SELECT state FROM inputs WHERE relpath = 'album.tif'").fetchone() == ("done",)
    assert ("note: album.tif: it holds 2 frames" in stderr) == album_done, stderr  # what a stop had recorded
    rerun = colorize_cli(*args)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert f"skipped {kept} done before" in stdout and len(snapshot(out)) == 72
    assert recorded_done(out) == 72 and "note: album.tif: it holds 2 frames" in stderr


def test_label_read_by_exiftool_in_every_format(tmp_path, tiny_colorizer):
    source = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (48, 1)), "L")
    exif = Image.Exif()
    exif[0x010F] = "Kodak"  # Make
    exif[0x0112] = 6  # rotated: the output is upright, so it must say 1
    source.save(tmp_path / "scan.jpg", exif=exif.tobytes(), dpi=(600, 600))
    for format in ("png", "jpeg", "tiff"):
        out = tmp_path / format
        process = colorize_cli(tmp_path / "scan.jpg", "--out", out, "--weights", tiny_colorizer.weights_path,
                               "--format", format)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        [written] = [p for p in out.iterdir() if p.name != MANIFEST_NAME]
        [tags] = exiftool("-XMP:all", "-PNG:all", "-EXIF:Make", "-EXIF:Orientation#", "-XResolution",
                          "-PixelsPerUnitX", written)
        assert tags["DigitalSourceType"] == DIGITAL_SOURCE_TYPE
        assert tags["Description"].startswith("Colorized by Colorizer ")
        assert tiny_colorizer.weights_sha256 in tags["Description"]
        assert tags["Make"] == "Kodak" and tags.get("Orientation", 1) == 1  # no second rotation by viewers
        if format == "png":
            assert round(tags["PixelsPerUnitX"] * 0.0254) == 600
        else:
            assert tags["XResolution"] == 600
        with Image.open(written) as image:
            assert image.size == (48, 64)  # rotated upright


def test_python_api_labels_by_default_and_can_opt_out(tmp_path, tiny_weights, gradient_image):
    from colorizer import Colorizer

    labelled = Colorizer.from_file(tiny_weights, device="cpu")
    labelled.save(labelled.colorize(gradient_image), tmp_path / "a.png")
    [tags] = exiftool("-XMP:all", tmp_path / "a.png")
    assert tags["DigitalSourceType"] == DIGITAL_SOURCE_TYPE
    plain = Colorizer.from_file(tiny_weights, device="cpu", label_outputs=False)
    plain.save(plain.colorize(gradient_image), tmp_path / "b.jpg")
    [tags] = exiftool("-XMP:all", tmp_path / "b.jpg")
    assert "DigitalSourceType" not in tags and read_provenance(tmp_path / "b.jpg") is None


@pytest.mark.slow
def test_ray_engine_survives_a_killed_worker_and_driver_and_resumes_either_way(tmp_path, tiny_weights):
    """Ray's local cluster: a worker is killed (Ray restarts it and retries), then the driver is killed; the rerun
    on Ray finishes the job with every photo written once, and the local engine then finds nothing left to do."""
    pytest.importorskip("ray", reason="Ray is optional (pip install colorizer[ray]); requirements-dev installs it")
    inputs = make_archive(tmp_path / "in", 40, side=200)
    out = tmp_path / "out"
    args = [tmp_path / "in", "--out", out, "--weights", tiny_weights, "--size", "64"]
    driver = colorize_cli(*args, "--engine", "ray", start_new_session=True)

    def wait_for_outputs(count):
        deadline = time.monotonic() + 240
        while len(snapshot(out)) < count and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.poll() is None, driver.communicate()
        assert len(snapshot(out)) >= count, "the Ray job made no progress in 4 minutes"

    wait_for_outputs(3)
    killed = subprocess.run(["pkill", "-9", "-f", r"MapBatches\(ColorizeWorker\)"], capture_output=True)
    assert killed.returncode == 0, "no Ray worker process to kill"
    seen = snapshot(out)
    wait_for_outputs(len(seen) + 3)  # the restarted worker carries on
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # whatever Ray still had in flight ends (or is adopted by the rerun)
    seen = snapshot(out)
    assert len(seen) < len(inputs), "the job finished before the driver was killed"
    rerun = colorize_cli(*args, "--engine", "ray")
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    now = snapshot(out)
    assert len(now) == len(inputs)
    assert all(now[name] == stamp for name, stamp in seen.items()), "an output was rewritten"
    assert not [p for p in out.rglob(".*partial*")]
    for path in inputs:
        relpath = path.relative_to(tmp_path / "in").as_posix()
        label = read_provenance(out / (relpath.rsplit(".", 1)[0] + ".png"))
        assert label["Iptc4xmpExt:DigitalSourceType"] == DIGITAL_SOURCE_TYPE
        assert label["colorizer:SourceSHA256"] == file_sha256(path)
    local = colorize_cli(*args)
    stdout, stderr = local.communicate(timeout=300)
    assert local.returncode == 0 and f"skipped {len(inputs)} done before" in stdout, stderr
    assert snapshot(out) == now
