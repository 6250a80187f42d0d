"""How long a newcomer waits: ``python -m demo`` on a fresh database until the colorize tab answers, and until the
default study can be taken.

Usage: ``python -m bench.launch`` prints both times (seconds from starting the process).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_launch(timeout_s: float = 900.0) -> dict:
    """Seconds to the first working colorization and to a startable default study, on a fresh SQLite file."""
    from gradio_client import Client, handle_file
    from PIL import Image

    from bench.storage import _free_port

    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "gray.png"
        Image.new("L", (320, 240), 128).save(photo)
        port = _free_port()
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port), "--db",
                                   f"sqlite:///{Path(folder) / 'fresh.sqlite'}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            client = None
            while client is None:
                try:
                    client = Client(url, verbose=False)
                except Exception:
                    if server.poll() is not None or time.perf_counter() - started > timeout_s:
                        raise RuntimeError("the app did not start") from None
                    time.sleep(0.5)
            client.predict(handle_file(str(photo)), "balanced", 256, 1.0, api_name="/colorize")
            colorize_s = time.perf_counter() - started
            while True:
                outputs = client.predict(True, None, None, None, "", api_name="/study_start")
                if any(isinstance(o, str) and 'data-trial="' in o for o in outputs):
                    break
                if time.perf_counter() - started > timeout_s:
                    raise RuntimeError("the default study was not ready in time")
                time.sleep(2)
            study_s = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"colorize_s": colorize_s, "study_s": study_s}


def main() -> int:
    result = first_launch()
    print(f"python -m demo on a fresh database: first colorization answered after {result['colorize_s']:.1f} s, "
          f"the default study startable after {result['study_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
