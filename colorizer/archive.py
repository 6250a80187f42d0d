"""Colorizing a whole archive, resumably: plan, work, record.

A manifest (SQLite, ``OUT/colorizer-manifest.sqlite``) records every input: relative path, size, mtime, SHA-256,
state (done or failed with the reason) and the weights that coloured it. The work is split in three so that any
engine (this process, or Ray workers on other machines) shares the same semantics:

- ``plan`` (driver): lists the inputs, keeps this shard's, and skips what the manifest says is done (or failed,
  unless retried) and unchanged since.
- ``colorize_item`` (worker): hashes the input, colorizes it, writes ``.NAME.partial-PID`` beside the output and
  renames it into place, so an output is either absent or whole. An output already there whose provenance names this
  input's hash and these weights is adopted instead of written again: a job killed between the rename and the
  manifest update finishes with every photo written exactly once.
- ``Manifest.record`` (driver): stores each outcome as it arrives.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from PIL import Image

from colorizer.provenance import SUFFIXES, SourceMetadata, output_format, read_provenance

MANIFEST_NAME = "colorizer-manifest.sqlite"
# Extensions Pillow can open; anything else in a folder (sidecar .txt, .xml, .md) is ignored, not a failure.
IMAGE_SUFFIXES = frozenset(suffix for suffix, kind in Image.registered_extensions().items() if kind in Image.OPEN)


class JobMismatchError(ValueError):
    """The output folder holds a job run with another model or format."""


@dataclass(frozen=True)
class ArchiveItem:
    """One input photo and where its colorized version goes (both relative paths use '/')."""

    relpath: str
    path: Path
    output: str


@dataclass(frozen=True)
class Outcome:
    relpath: str
    state: str  # "done" (written), "adopted" (already there, whole, from this input and weights) or "failed"
    size: int = 0
    mtime_ns: int = 0
    sha256: str = ""
    reason: str = ""
    seconds: float = 0.0
    note: str = ""  # what a person should know about a photo that was written (only its first frame, ...)


@dataclass
class Plan:
    todo: list[ArchiveItem] = field(default_factory=list)
    done: int = 0  # already done and unchanged
    failed_before: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason) of earlier runs
    other_shards: int = 0
    ignored: list[Path] = field(default_factory=list)  # files that are not images
    notes_before: list[tuple[str, str]] = field(default_factory=list)  # (relpath, note) of done photos with one


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (I counted from 0) -> (I, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes I/N, e.g. 0/4 (got {text!r})") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= I < N")
    return index, count


def shard_of(relpath: str, count: int) -> int:
    """Which of ``count`` shards owns ``relpath``: a hash of the name, so every process agrees without talking."""
    return int.from_bytes(hashlib.sha1(relpath.encode("utf-8")).digest()[:8], "big") % count


def discover(sources: Iterable[str | os.PathLike], format: str = "png") -> tuple[list[ArchiveItem], list[Path]]:
    """Every image under ``sources`` (files and folders) with its output path, and the files that are not images.

    One folder: paths relative to it. Several sources: each folder keeps its own name as the first path part. A
    name that two inputs would share (``a.jpg`` and ``a.png``) keeps the input's suffix (``a.jpg.png``)."""
    sources = [Path(source) for source in sources]
    found: list[tuple[str, Path]] = []
    ignored: list[Path] = []
    for source in sources:
        if source.is_dir():
            base = source if len(sources) == 1 else source.parent
            for path in sorted(source.rglob("*")):
                if not path.is_file() or path.name.startswith(".") or path.name == MANIFEST_NAME:
                    continue
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    found.append((path.relative_to(base).as_posix(), path))
                else:
                    ignored.append(path)
        else:
            found.append((source.name, source))  # a named file is tried even without an image suffix
    suffix = SUFFIXES[output_format("", format)]
    stems: dict[str, int] = {}
    for relpath, _ in found:
        stem = relpath.rsplit(".", 1)[0] if "." in Path(relpath).name else relpath
        stems[stem] = stems.get(stem, 0) + 1
    items, seen = [], set()
    for relpath, path in found:
        if relpath in seen:
            raise ValueError(f"two inputs share the name {relpath!r}; pass them in separate runs")
        seen.add(relpath)
        stem = relpath.rsplit(".", 1)[0] if "." in Path(relpath).name else relpath
        items.append(ArchiveItem(relpath, path, (stem if stems[stem] == 1 else relpath) + suffix))
    return items, ignored


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The job's record in ``OUT/colorizer-manifest.sqlite``; safe for several shard processes at once."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / MANIFEST_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executescript("""
            CREATE TABLE IF NOT EXISTS job (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS inputs (
                relpath TEXT PRIMARY KEY, output TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
                state TEXT NOT NULL, reason TEXT, weights_sha256 TEXT, seconds REAL, finished_at REAL);
        """)

    def check_job(self, settings: dict[str, str]) -> None:
        """Stores the job's settings on its first run; refuses a rerun whose model or format differ."""
        with self.connection:
            stored = dict(self.connection.execute("SELECT key, value FROM job"))
            if not stored:
                self.connection.executemany("INSERT OR IGNORE INTO job VALUES (?, ?)", settings.items())
                stored = dict(self.connection.execute("SELECT key, value FROM job"))
        differing = [key for key, value in settings.items() if stored.get(key) != value]
        if differing:
            described = "; ".join(f"{key} {stored.get(key)!r} then, {settings[key]!r} now" for key in differing)
            raise JobMismatchError(f"{self.path.parent} holds a job run with other settings ({described}); "
                                   "finish it with the same settings or write to another --out folder")

    def rows(self) -> dict[str, sqlite3.Row]:
        cursor = self.connection.execute("SELECT relpath, output, size, mtime_ns, sha256, state, reason FROM inputs")
        return {row[0]: row for row in cursor}

    def record(self, outcome: Outcome, output: str, weights_sha256: Optional[str]) -> None:
        state = "failed" if outcome.state == "failed" else "done"
        self.connection.execute(
            "INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (outcome.relpath, output, outcome.size, outcome.mtime_ns, outcome.sha256, state,
             outcome.reason or outcome.note or None, weights_sha256, outcome.seconds, time.time()))

    def counts(self) -> dict[str, int]:
        return dict(self.connection.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state"))

    def remarks(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(failed, noted): (relpath, reason) of every failed photo and every done one written with a note."""
        rows = self.connection.execute(
            "SELECT relpath, state, reason FROM inputs WHERE state = 'failed' OR reason IS NOT NULL ORDER BY relpath")
        failed, noted = [], []
        for relpath, state, reason in rows:
            (failed if state == "failed" else noted).append((relpath, reason or "failed"))
        return failed, noted

    def close(self) -> None:
        self.connection.close()


def plan(items: list[ArchiveItem], manifest: Manifest, out: Path, *, retry_failed: bool = False,
         shard: tuple[int, int] = (0, 1), ignored: Optional[list[Path]] = None) -> Plan:
    """What this run has to do: this shard's items not done (or failed, unless retried) with unchanged inputs."""
    result = Plan(ignored=list(ignored or []))
    rows = manifest.rows()
    index, count = shard
    for item in items:
        if count > 1 and shard_of(item.relpath, count) != index:
            result.other_shards += 1
            continue
        row = rows.get(item.relpath)
        if row is not None:
            try:
                stat = item.path.stat()
                unchanged = (row[2], row[3]) == (stat.st_size, stat.st_mtime_ns)
            except OSError:
                unchanged = False
            if unchanged and row[5] == "done" and (out / row[1]).exists():
                result.done += 1
                if row[6]:  # a done photo's reason is its note
                    result.notes_before.append((item.relpath, row[6]))
                continue
            if unchanged and row[5] == "failed" and not retry_failed:
                result.failed_before.append((item.relpath, row[6] or "failed"))
                continue
        result.todo.append(item)
    return result


def _partial_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


@dataclass
class _Read:
    """An input read and decoded, waiting for the network."""

    item: ArchiveItem
    target: Path
    image: Image.Image
    source: SourceMetadata
    size: int
    mtime_ns: int
    sha256: str
    started: float
    note: str = ""

    def failed(self, error: Exception) -> "Outcome":
        return _failed(self.item, error, self.started, self.size, self.mtime_ns, self.sha256)


def _failed(item: ArchiveItem, error: Exception, started: float, size: int = 0, mtime_ns: int = 0,
            sha256: str = "") -> Outcome:
    return Outcome(item.relpath, "failed", size, mtime_ns, sha256, reason=str(error) or type(error).__name__,
                   seconds=time.perf_counter() - started)


def _frames_note(image: Image.Image | Path) -> str:
    """The note for a file of several frames: from a decoded image, or from a file's header alone."""
    from colorizer.imageio import first_frame_note, frame_count

    if isinstance(image, Path):
        try:
            with Image.open(image) as header:  # not decoded: an adopted output's input is only counted
                frames = frame_count(header)
        except (OSError, ValueError, Image.DecompressionBombError):
            frames = 1  # a note is not worth failing a photo whose output is already whole
    else:
        frames = frame_count(image)
    return first_frame_note(frames) if frames > 1 else ""


def _read(colorizer, item: ArchiveItem, out: Path) -> _Read | Outcome:
    """Hashes and decodes one input; an Outcome instead when it fails or its output is already there, whole."""
    from colorizer.imageio import InvalidImageError, open_image

    started = time.perf_counter()
    size = mtime_ns = 0
    sha256 = ""
    try:
        stat = item.path.stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
        sha256 = file_sha256(item.path)
        target = out / item.output
        for stale in target.parent.glob(f".{target.name}.partial-*"):  # left by a killed run; this item's only
            stale.unlink(missing_ok=True)
        if target.exists() and colorizer.label_outputs:
            label = read_provenance(target) or {}
            if (label.get("colorizer:SourceSHA256") == sha256
                    and label.get("colorizer:WeightsSHA256") == (colorizer.weights_sha256 or "")):
                return Outcome(item.relpath, "adopted", size, mtime_ns, sha256, seconds=time.perf_counter() - started,
                               note=_frames_note(item.path))
        image = open_image(item.path, colorizer.max_pixels)
        return _Read(item, target, image, SourceMetadata.of(image), size, mtime_ns, sha256, started,
                     _frames_note(image))
    except (InvalidImageError, OSError, ValueError) as error:
        return _failed(item, error, started, size, mtime_ns, sha256)


def _colorize(colorizer, read: _Read) -> Image.Image | Outcome:
    try:
        return colorizer.colorize(read.image)
    except (OSError, ValueError) as error:
        return read.failed(error)


def _write(colorizer, read: _Read, result: Image.Image, format: str, quality: int) -> Outcome:
    """Writes ``.NAME.partial-PID``, syncs it and renames it into place, so an output is either absent or whole."""
    try:
        read.target.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial_path(read.target)
        colorizer.save(result, partial, format=format, source=read.source, source_sha256=read.sha256,
                       quality=quality, compress_level=3)
        with open(partial, "rb+") as handle:  # on disk before it takes the final name
            os.fsync(handle.fileno())
        os.replace(partial, read.target)
    except (OSError, ValueError) as error:
        return read.failed(error)
    return Outcome(read.item.relpath, "done", read.size, read.mtime_ns, read.sha256,
                   seconds=time.perf_counter() - read.started, note=read.note)


def colorize_item(colorizer, item: ArchiveItem, out: Path, format: str = "png", quality: int = 95) -> Outcome:
    """Colorizes one input into ``out / item.output`` (see the module docstring); never raises for a bad input."""
    read = _read(colorizer, item, out)
    if isinstance(read, Outcome):
        return read
    result = _colorize(colorizer, read)
    return result if isinstance(result, Outcome) else _write(colorizer, read, result, format, quality)


def default_io_threads() -> int:
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def colorize_items(colorizer, items: Iterable[ArchiveItem], out: Path, format: str = "png", quality: int = 95,
                   io_threads: Optional[int] = None) -> Iterator[Outcome]:
    """Each item's Outcome as soon as it is known (not in input order). The network runs on this thread; with
    ``io_threads`` > 0, reading (hash, decode) runs ahead of it and writing (encode, sync, rename) behind it on that
    many threads, at most ``io_threads`` photos each way (2 x io_threads + 1 photos in memory with the network's).
    Why: the PNG encoder, not the network, limited a job on a GPU (bench/RESULTS.md). 0: one photo at a time."""
    io_threads = default_io_threads() if io_threads is None else io_threads
    if io_threads < 1:
        for item in items:
            yield colorize_item(colorizer, item, out, format, quality)
        return
    pending = iter(items)
    pool = ThreadPoolExecutor(io_threads, thread_name_prefix="archive-io")
    reading: deque[Future] = deque()
    writing: set[Future] = set()

    def read_ahead() -> None:
        while len(reading) < io_threads:
            item = next(pending, None)
            if item is None:
                return
            reading.append(pool.submit(_read, colorizer, item, out))

    try:
        read_ahead()
        while reading:
            read = reading.popleft().result()
            read_ahead()
            if isinstance(read, Outcome):
                yield read
                continue
            result = _colorize(colorizer, read)
            if isinstance(result, Outcome):
                yield result
                continue
            writing.add(pool.submit(_write, colorizer, read, result, format, quality))
            del read, result  # the photo's memory goes with its write
            # collect the writes that finished; wait for one only when more than io_threads are under way
            finished, writing = wait(writing, timeout=None if len(writing) > io_threads else 0,
                                     return_when=FIRST_COMPLETED)
            yield from (future.result() for future in finished)
        for future in as_completed(writing):
            yield future.result()
    finally:  # stopped early (an error, Ctrl-C): photos already coloured are still written, nothing more is read
        for future in reading:
            future.cancel()
        pool.shutdown(wait=True)


@dataclass
class Summary:
    written: int = 0
    adopted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_before: list[tuple[str, str]] = field(default_factory=list)
    other_shards: int = 0
    ignored: int = 0
    seconds: float = 0.0
    notes: list[tuple[str, str]] = field(default_factory=list)  # (relpath, note) of photos written with a caveat

    @classmethod
    def of_plan(cls, job: Plan) -> "Summary":
        """What a run reports before it colorizes anything: what its plan skipped."""
        return cls(skipped=job.done, failed_before=job.failed_before, other_shards=job.other_shards,
                   ignored=len(job.ignored), notes=list(job.notes_before))

    @property
    def complete(self) -> bool:
        """Every photo of this shard is colorized (none failed now or earlier)."""
        return not self.failed and not self.failed_before

    def lines(self) -> list[str]:
        rate = f" ({self.written / self.seconds:.2f} photos/s)" if self.seconds and self.written else ""
        text = [f"done: {self.written} written{rate}"
                + (f", {self.adopted} already written by an interrupted run" if self.adopted else "")
                + f"; skipped {self.skipped} done before; failed {len(self.failed)}; {self.seconds:.1f} s"]
        if self.failed_before:
            text.append(f"{len(self.failed_before)} photos failed in an earlier run (retry with --retry-failed)")
        if self.other_shards:
            text.append(f"{self.other_shards} photos belong to other shards")
        if self.ignored:
            text.append(f"ignored {self.ignored} files that are not images")
        if self.notes:
            text.append(f"{len(self.notes)} photos with a note (below)")
        return text


def run_local(colorizer, items: list[ArchiveItem], out: Path, manifest: Manifest, job: Plan, *,
              format: str = "png", quality: int = 95, progress: bool = True,
              io_threads: Optional[int] = None) -> Summary:
    """The local engine: one process, the network on this thread, reading and writing on ``io_threads`` beside it
    (see ``colorize_items``); each outcome recorded as soon as it is known."""
    from tqdm import tqdm

    import torch

    summary = Summary.of_plan(job)
    by_name = {item.relpath: item for item in items}
    io_threads = default_io_threads() if io_threads is None else io_threads
    network_threads = torch.get_num_threads()
    if colorizer.device.type == "cpu" and io_threads > 0:
        # the cores the reading and writing threads use are taken from PyTorch's (2 cores: 7.9 photos/s at 1 MP
        # against 5.8 with both PyTorch's and one photo at a time; bench/RESULTS.md)
        torch.set_num_threads(max(1, network_threads - io_threads))
    started = time.perf_counter()
    bar = tqdm(total=len(job.todo), desc="colorizing", unit="photo", disable=not progress or len(job.todo) < 2)
    try:
        for outcome in colorize_items(colorizer, job.todo, out, format, quality, io_threads):
            _tally(summary, outcome, manifest, by_name[outcome.relpath].output, colorizer.weights_sha256, bar)
            bar.update(1)
    finally:
        bar.close()
        torch.set_num_threads(network_threads)
    summary.seconds = time.perf_counter() - started
    return summary


def _tally(summary: Summary, outcome: Outcome, manifest: Manifest, output: str, weights_sha256: Optional[str],
           bar=None) -> None:
    manifest.record(outcome, output, weights_sha256)
    if outcome.state == "failed":
        summary.failed.append((outcome.relpath, outcome.reason))
        if bar is not None:
            bar.write(f"error: {outcome.relpath}: {outcome.reason}")
    elif outcome.state == "adopted":
        summary.adopted += 1
    else:
        summary.written += 1
    if outcome.note:
        summary.notes.append((outcome.relpath, outcome.note))


def job_settings(colorizer, format: str) -> dict[str, str]:
    """What must not change between runs of one job."""
    return {"weights_sha256": colorizer.weights_sha256 or "", "format": format,
            "labelled": str(bool(colorizer.label_outputs))}

