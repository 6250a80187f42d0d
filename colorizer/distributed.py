"""The archive job on Ray Data: the same plan, work and record as the local engine (``colorizer.archive``), with
the work done by a pool of Ray actors that each load the model once (a GPU each, in fp16, where CUDA is there).

The driver keeps the manifest: it records each outcome as Ray streams it back, so a job can stop under either engine
and resume under either. Workers need the inputs and ``--out`` on a filesystem every node sees (NFS, a mounted
bucket); the manifest is one SQLite file on the driver's side of it. Ray is optional: ``pip install colorizer[ray]``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Optional

from colorizer import MissingExtraError
from colorizer.archive import ArchiveItem, Manifest, Outcome, Plan, Summary, _tally, colorize_items

OUTCOME_FIELDS = ("relpath", "state", "size", "mtime_ns", "sha256", "reason", "seconds", "note")
IO_THREADS = 1  # per actor, beside its network: an actor has two CPUs, or a GPU
BATCH = 8  # photos per call: the reading and writing overlap the network within a batch


class ColorizeWorker:
    """A Ray Data callable class: built once per actor (the model loads once), then called on batches of items."""

    def __init__(self, colorizer, out: str, format: str, quality: int):
        import torch

        if torch.cuda.is_available() and colorizer.device.type != "cuda":
            colorizer.device = torch.device("cuda")  # one GPU per actor; Colorizer runs CUDA in fp16 autocast
            colorizer.model = colorizer.model.to(colorizer.device)
        elif colorizer.device.type == "cpu":
            # one of the actor's cores reads and writes photos beside the network, as in the local engine
            torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1")) - IO_THREADS))
        self.colorizer, self.out, self.format, self.quality = colorizer, Path(out), format, quality

    def __call__(self, batch: dict) -> dict:
        items = [ArchiveItem(relpath, Path(path), output)
                 for relpath, path, output in zip(batch["relpath"], batch["path"], batch["output"])]
        outcomes = list(colorize_items(self.colorizer, items, self.out, self.format, self.quality, IO_THREADS))
        return {name: [getattr(outcome, name) for outcome in outcomes] for name in OUTCOME_FIELDS}


def start_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> None:
    """Joins the cluster at ``address``, or starts Ray on this machine: no dashboard, no usage reports."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise MissingExtraError("--engine ray needs Ray: pip install 'colorizer[ray]' (or -r requirements-ray.txt)") from None
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)


def run_ray(colorizer, items: list[ArchiveItem], out: Path, manifest: Manifest, job: Plan, *, format: str = "png",
            quality: int = 95, address: Optional[str] = None, workers: Optional[int] = None,
            progress: bool = True) -> Summary:
    """The Ray engine: one actor per ``workers`` (default: one per GPU, else one per two CPUs)."""
    from tqdm import tqdm

    summary = Summary.of_plan(job)
    started = time.perf_counter()
    if not job.todo:
        return summary
    start_ray(address)
    import ray
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # Ray's notes on its own progress bars and autoscaler
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar, ours
    context.print_on_execution_start = False
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    threads = 2
    if workers is None:
        workers = gpus or max(1, int(resources.get("CPU", 1)) // threads)
    gpu_options = {"num_gpus": 1} if gpus else {"num_cpus": threads}
    rows = [{"relpath": item.relpath, "path": str(item.path.resolve()), "output": item.output} for item in job.todo]
    # small blocks: outcomes stream back (and reach the manifest) a batch at a time
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 2000))
    outcomes = dataset.map_batches(
        ColorizeWorker, fn_constructor_kwargs={"colorizer": colorizer, "out": str(out.resolve()), "format": format,
                                               "quality": quality},
        batch_size=BATCH, concurrency=workers, max_restarts=-1, max_task_retries=-1,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads), "RAY_USAGE_STATS_ENABLED": "0"}},
        **gpu_options)
    by_name = {item.relpath: item for item in job.todo}
    bar = tqdm(total=len(rows), desc=f"colorizing on Ray ({workers} workers)", unit="photo",
               disable=not progress or len(rows) < 2)
    for row in outcomes.iter_rows():
        outcome = Outcome(**{name: row[name] for name in OUTCOME_FIELDS})
        _tally(summary, outcome, manifest, by_name[outcome.relpath].output, colorizer.weights_sha256, bar)
        bar.update(1)
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary
