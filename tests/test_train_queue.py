"""The training queue skips a run whose starting file is missing instead of training something else from scratch."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_queue(runs: Path, only: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/train_queue.py", "--data", str(runs / "no-photos"), "--runs",
                           str(runs), "--only", only], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_continuation_without_its_checkpoint_is_skipped_with_a_message(tmp_path):
    result = run_queue(tmp_path, "organic-cgan-more,organic-resnet18-smooth")
    assert result.returncode == 0, result.stderr
    assert "organic-cgan-more: skipped, it starts from" in result.stdout
    assert str(tmp_path / "organic-resnet18" / "best.safetensors") in result.stdout
    assert not (tmp_path / "organic-cgan-more" / "train.log").exists()  # nothing was started
    assert not (tmp_path / "organic-resnet18-smooth").exists()


def test_a_continuation_with_its_checkpoint_is_started(tmp_path):
    (tmp_path / "organic-cgan-more").mkdir()
    (tmp_path / "organic-cgan-more" / "last.pt").write_bytes(b"not a checkpoint")
    result = run_queue(tmp_path, "organic-cgan-more")
    assert "skipped" not in result.stdout
    assert "organic-cgan-more: " in result.stdout and " -m colorizer train " in result.stdout
    assert (tmp_path / "organic-cgan-more" / "train.log").exists()  # the trainer was started (it fails: no photos)
