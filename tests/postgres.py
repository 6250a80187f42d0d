"""A throwaway PostgreSQL server on loopback for storage tests (Debian's postgresql package).

Skipped locally when the server binaries are missing; under CI=true their absence is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pytest


def _binaries() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_postgres():
    """Yields a SQLAlchemy URL of a fresh server; stops it afterwards."""
    binaries = _binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed but CI=true requires the PostgreSQL tests (see .ci/run)")
        pytest.skip("PostgreSQL server binaries not found (install Debian's postgresql to run these tests)")
    folder = tempfile.mkdtemp(prefix="colorizer-pg-")
    data = os.path.join(folder, "data")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    subprocess.run(as_postgres + [f"{binaries}/initdb", "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(as_postgres + [f"{binaries}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
                                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200",
                                  "start"], check=True, capture_output=True)
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    try:
        yield url
    finally:
        subprocess.run(as_postgres + [f"{binaries}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
