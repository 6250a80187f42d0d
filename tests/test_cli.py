"""The command line, run as a user would: ``python -m colorizer ...`` in a subprocess."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "colorizer", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def photo_folder(tmp_path, gradient_image):
    folder = tmp_path / "photos"
    folder.mkdir()
    gradient_image.save(folder / "good_color.png")
    gradient_image.convert("L").save(folder / "good_gray.jpg")
    (folder / "notes.txt").write_text("not a picture")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)).save(folder / "broken.png")
    (folder / "broken.png").write_bytes((folder / "broken.png").read_bytes()[:20_000])
    return folder


def test_colorize_folder_reports_bad_files_and_writes_the_rest(photo_folder, tiny_weights, tmp_path):
    out = tmp_path / "out"
    result = run("colorize", photo_folder, "--out", out, "--weights", tiny_weights)
    assert result.returncode == 1
    assert "broken.png" in result.stderr and "notes.txt" not in result.stderr  # a sidecar file is not a failure
    assert "ignored 1 files that are not images" in result.stdout
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["colorizer-manifest.sqlite", "good_color.png", "good_gray.png"]
    assert Image.open(out / "good_gray.png").size == (61, 47)


def test_colorize_all_good_exits_zero(photo_folder, tiny_weights, tmp_path):
    result = run("colorize", photo_folder / "good_gray.jpg", "--out", tmp_path / "o", "--weights", tiny_weights,
                 "--size", "64", "--saturation", "1.5")
    assert result.returncode == 0, result.stderr
    assert "done: 1 written" in result.stdout


def test_colorize_one_photo_at_a_time_and_a_bad_thread_count(photo_folder, tiny_weights, tmp_path):
    result = run("colorize", photo_folder / "good_gray.jpg", "--out", tmp_path / "o", "--weights", tiny_weights,
                 "--io-threads", "0")
    assert result.returncode == 0 and "done: 1 written" in result.stdout, result.stderr
    result = run("colorize", photo_folder / "good_gray.jpg", "--out", tmp_path / "p", "--weights", tiny_weights,
                 "--io-threads", "-1")
    assert result.returncode == 2 and result.stderr.strip() == "error: --io-threads takes 0 or more"
    assert not (tmp_path / "p").exists()


def test_colorize_names_files_of_which_only_the_first_page_was_colorized(photo_folder, tiny_weights, tmp_path):
    pages = [Image.new("L", (40, 30), level) for level in (40, 128, 220)]
    pages[0].save(photo_folder / "album.tif", save_all=True, append_images=pages[1:])
    result = run("colorize", photo_folder / "album.tif", photo_folder / "good_gray.jpg", "--out", tmp_path / "o",
                 "--weights", tiny_weights)
    assert result.returncode == 0, result.stderr
    assert "done: 2 written" in result.stdout and "1 photos with a note" in result.stdout
    assert "note: album.tif: it holds 3 frames (pages); only the first was colorized" in result.stderr
    assert "Warning" not in result.stderr  # said once, in the summary
    assert Image.open(tmp_path / "o" / "album.png").size == (40, 30)
    again = run("colorize", photo_folder / "album.tif", photo_folder / "good_gray.jpg", "--out", tmp_path / "o",
                "--weights", tiny_weights)  # everything done: the manifest keeps the note
    assert "done: 0 written" in again.stdout and "skipped 2 done before" in again.stdout
    assert "1 photos with a note" in again.stdout and "note: album.tif: it holds 3 frames" in again.stderr
    for manifest in (tmp_path / "o").glob("colorizer-manifest.sqlite*"):
        manifest.unlink()  # as if killed before recording: the outputs are adopted, and noted from the header
    adopted = run("colorize", photo_folder / "album.tif", "--out", tmp_path / "o", "--weights", tiny_weights)
    assert "1 already written by an interrupted run" in adopted.stdout, adopted.stdout + adopted.stderr
    assert "note: album.tif: it holds 3 frames" in adopted.stderr


def test_unknown_model_is_one_readable_line(tmp_path, gradient_image):
    gradient_image.save(tmp_path / "a.png")
    result = run("colorize", tmp_path / "a.png", "--out", tmp_path / "o", "--model", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "Traceback" not in result.stderr
    assert "unknown model 'nope'" in result.stderr


def test_models_lists_registry():
    result = run("models")
    assert result.returncode == 0
    for name in ("unet", "vgg19_unet", "vgg16_regression", "fusion_vgg16", "densenet121_unet", "mobilenet_unet",
                 "resnet18_unet", "patchgan", "context_unet"):
        assert name in result.stdout
    # every recipe is either shipped, trained with a card saying why it is not, or listed as untrained
    from colorizer.recipes import RECIPES
    from colorizer.weights import WEIGHTS_DIR

    lines = result.stdout.splitlines()
    listed = {label: next((line.rsplit(": ", 1)[1].split(", ") for line in lines if label in line), [])
              for label in ("trained, not shipped", "not trained yet")}
    for recipe in RECIPES:
        if (WEIGHTS_DIR / f"{recipe}.safetensors").exists():
            assert any(line.startswith(f"  {recipe} ") for line in lines)
        elif (WEIGHTS_DIR / f"{recipe}.md").exists():
            assert recipe in listed["trained, not shipped"]
        else:
            assert recipe in listed["not trained yet"]


def test_output_cut_short_by_a_closed_pipe_is_not_a_traceback():
    reader = subprocess.Popen([sys.executable, "-m", "colorizer", "models"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=ROOT)
    reader.stdout.close()  # like `| head` exiting before the listing is written
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_evaluate_prints_table_and_is_deterministic(tiny_weights, tmp_path):
    from skimage import data

    folder = tmp_path / "val"
    folder.mkdir()
    for name in ("astronaut", "coffee"):
        Image.fromarray(getattr(data, name)()).resize((96, 96)).save(folder / f"{name}.png")
    csv = tmp_path / "metrics.csv"
    sheet = tmp_path / "sheet.png"
    first = run("evaluate", folder, "--weights", tiny_weights, "--size", "64", "--out", csv, "--sheet", sheet)
    assert first.returncode == 0, first.stderr
    assert "model " in first.stdout and "gray " in first.stdout and "PSNR" in first.stdout
    assert csv.read_text().count("\n") == 3 and sheet.stat().st_size > 5000
    second = run("evaluate", folder, "--weights", tiny_weights, "--size", "64")
    table = lambda out: out.split("\n", 1)[1]  # noqa: E731 - drop the header line naming the device
    assert table(first.stdout).split("per-photo")[0] == table(second.stdout)


def test_train_cli_runs_and_resumes(tmp_path):
    from skimage import data

    folder = tmp_path / "train"
    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    out = tmp_path / "run"
    args = ["train", "--data", folder, "--out", out, "--model-config", '{"width": 8}', "--size", "32",
            "--max-crop", "48", "--batch", "2", "--steps-per-epoch", "2", "--val-fraction", "0.25", "--no-progress"]
    first = run(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    second = run(*args, "--epochs", "2", "--resume")
    assert second.returncode == 0, second.stderr
    assert "resumed" in second.stderr and "trained 2 epochs" in second.stdout


def test_evaluate_reports_each_source_folder(tiny_weights, tmp_path):
    from skimage import data

    for source, names in (("scenes", ("astronaut", "coffee")), ("animals", ("chelsea",))):
        (tmp_path / "val" / source).mkdir(parents=True)
        for name in names:
            Image.fromarray(getattr(data, name)()).resize((80, 80)).save(tmp_path / "val" / source / f"{name}.png")
    result = run("evaluate", tmp_path / "val", "--weights", tiny_weights, "--size", "64")
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("per source")[1]
    assert "scenes" in table and "animals" in table
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:] if line.strip()}
    assert rows["scenes"][1] == "2" and rows["animals"][1] == "1"  # photo counts


def test_tune_chooses_a_decoding_on_val_and_held_out_training_photos(tiny_weights, tmp_path):
    from skimage import data

    for folder, source, names in (("val", "scenes", ("astronaut",)), ("train", "animals", ("chelsea", "coffee"))):
        (tmp_path / folder / source).mkdir(parents=True)
        for name in names:
            Image.fromarray(getattr(data, name)()).resize((80, 80)).save(tmp_path / folder / source / f"{name}.png")
    plot = tmp_path / "frontier.png"
    result = run("tune", tmp_path / "val", "--holdout", tmp_path / "train", "--weights", tiny_weights,
                 "--temperatures", "0.3,0.6,1", "--undo-rebalancing", "0,0.5", "--gains", "1,1.3",
                 "--min-cf", "0", "--plot", plot)
    assert result.returncode == 0, result.stderr
    assert "photos: 2" in result.stdout  # one val photo and the one held out of two training photos (3%, at least 1)
    assert "chosen (highest PSNR with colourfulness >= 0" in result.stdout and plot.stat().st_size > 10_000
    table = result.stdout.split("per source")[0]
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert [tuple(map(float, row[:4])) for row in rows] == [  # T, undo, gain, prior correction (none asked)
        (t, beta, gain, 0.0) for t in (0.3, 0.6, 1.0) for beta in (0.0, 0.5) for gain in (1.0, 1.3)]
    best = max(rows, key=lambda row: float(row[5]))  # after the photo count
    label = f"T={float(best[0]):g}" + (f", undo rebalancing {float(best[1]):g}" if float(best[1]) else "") + \
        (f", chroma gain {float(best[2]):g}" if float(best[2]) != 1 else "")
    assert f"{label}:" in result.stdout  # min-cf 0: every decoding is eligible, so the best PSNR wins


def test_tune_refuses_a_regression_model(tmp_path):
    from colorizer import models
    from colorizer.weights import WeightsInfo, save_weights

    model = models.create("unet", base_channels=4)
    path = tmp_path / "regression.safetensors"
    save_weights(model, path, WeightsInfo("unet", model.config.to_dict(), working_size=64))
    (tmp_path / "val").mkdir()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "val" / "red.png")
    result = run("tune", tmp_path / "val", "--weights", path)
    assert result.returncode == 2 and "regression model" in result.stderr and "Traceback" not in result.stderr
