"""`pip install .` gives a working package: the commands and the README's Python snippet run from another folder,
with the shipped weights found where pip put them (not in the repository)."""

import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_installed_package_runs_from_outside_the_repository(tmp_path):
    environment = tmp_path / "venv"
    # the system's packages stand in for the dependencies (the install of torch & co. is what CI does anyway);
    # what is tested is this package: its files, data, weights and commands
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(environment)
    python, bin_dir = environment / "bin" / "python", environment / "bin"
    installed = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(ROOT)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*command):
        result = subprocess.run([*map(str, command)], cwd=work, capture_output=True, text=True, timeout=600,
                                env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)})
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        return result.stdout

    run(bin_dir / "colorizer", "samples", "--out", "samples/")
    assert "done: 1 written" in run(bin_dir / "colorizer", "colorize", "samples/historical/helenkeller.jpg",
                                    "--out", "colored/")
    snippet = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    run(python, "-c", snippet + "\nimport colorizer, colorizer.weights as w\n"
        f"assert not colorizer.__file__.startswith({str(ROOT)!r}), colorizer.__file__\n"
        "assert 'share/colorizer/weights' in str(w.WEIGHTS_DIR), w.WEIGHTS_DIR\n")
    assert (work / "helenkeller_color.png").stat().st_size > 10_000
    assert "usage" in run(bin_dir / "colorizer-study", "--help") and "usage" in run(bin_dir / "colorizer-app", "--help")
    assert "balanced" in run(bin_dir / "colorizer", "models")
