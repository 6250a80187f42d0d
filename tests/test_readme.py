"""Every command the README shows runs verbatim in a fresh clone (no ../shared beside it), and leaves the clone's
``git status`` clean. The two install commands are skipped: the test runs inside the environment they make."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the README, in order."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S)


def test_readme_is_short_and_has_its_blocks():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 170  # a page for users (with the papers' table); the record lives in docs/ and bench/
    languages = [language for language, _ in readme_blocks()]
    assert languages.count("bash") >= 3 and "python" in languages


@pytest.mark.slow
def test_every_readme_command_runs_verbatim_in_a_fresh_clone(tmp_path):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs the git checkout to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # the clone holds what is committed; run the README as it is in this checkout
    shutil.copy(ROOT / "README.md", clone / "README.md")
    subprocess.run(["git", "update-index", "--assume-unchanged", "README.md"], cwd=clone, check=True)
    ran = 0
    for language, code in readme_blocks():
        if language == "python":
            result = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True,
                                    timeout=600)
            assert result.returncode == 0, f"README Python block failed:\n{result.stderr[-2000:]}"
            ran += 1
            continue
        for line in code.strip().splitlines():
            command = line.split("  #")[0].strip()
            if not command or command.startswith("pip install"):
                continue
            result = subprocess.run(["bash", "-c", command], cwd=clone, capture_output=True, text=True, timeout=900,
                                    env={**__import__("os").environ, "PYTHONPATH": str(clone)})
            assert result.returncode == 0, f"{command!r} failed:\n{result.stdout[-1500:]}\n{result.stderr[-2000:]}"
            ran += 1
    assert ran >= 8
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", f"README commands left files git would add:\n{status}"
