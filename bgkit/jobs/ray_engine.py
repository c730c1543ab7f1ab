"""The Ray engine of :func:`bgkit.jobs.batch.process_batch`: the same batch on a Ray cluster, with Ray Data.

``pip install 'bgkit[ray]'`` (Ray Data). The driver -- the process that calls
:func:`~bgkit.jobs.batch.process_batch` with ``engine="ray"`` or runs ``bgkit batch ... --engine
ray`` -- scans the input, decides what is complete already and keeps the manifest, exactly as
the local engine does. The work itself is a Ray Data pipeline:

1. read: the list of files to do, as a dataset (one row per file: input, output, kind);
2. ``map_batches`` with a stateful predictor (:class:`BatchPredictor`, an actor pool): each
   worker loads the model once, then for each file decodes it, runs it through the
   :class:`bgkit.Pipeline` and
3. writes the output with bgkit's own atomic writer (:func:`bgkit.save_image`,
   :func:`bgkit.process_video`) -- so the files are byte for byte what the local engine writes,
   not a re-encoding by Ray's image writer -- and hands back the file's manifest record.

The driver streams the records back, writes them to the manifest and shows the progress.

On a cluster, every node needs bgkit (the same version, with the ``ray`` extra), the model's
weights (``bgkit fetch selfie``, or ``BGKIT_CACHE_DIR`` on shared storage), and the input and
output folders at the same paths (a shared filesystem, or a bucket mounted at the same path on
every node). See the README's "Batches" section.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from typing import Any, Iterator, Sequence

import numpy as np

from ..core.deps import require
from .batch import BatchItem, FileRecord, ModelRef, process_item

__all__ = ["BatchPredictor", "run_ray"]

log = logging.getLogger(__name__)


class BatchPredictor:
    """A Ray Data worker: loads the model once, then makes the outputs of batches of files.

    Args:
        model: :class:`ModelRef` fields (a dict) of the model to load.
        settings: the :class:`bgkit.EffectSettings` to draw with.
        audio: keep videos' sound.
        threads: torch (and the fast backends') threads of this worker; the worker's CPUs.
    """

    def __init__(self, model: dict[str, Any], settings: Any, audio: bool = True, threads: int = 1) -> None:
        from ..tuning import tune_process

        tune_process()  # a process that runs frames back to back (see bgkit.tuning)
        import torch

        from ..pipeline import Pipeline

        torch.set_num_threads(max(1, threads))  # this worker's share of the node, not the whole node
        self.pipe = Pipeline(ModelRef(**model).load(), settings)
        self.audio = audio

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = []
        for i in range(len(batch["input"])):
            item = BatchItem.from_row({k: batch[k][i] for k in ("input", "output", "rel", "kind")})
            records.append(process_item(self.pipe, item, engine="ray", audio=self.audio).to_json())
        return {"record": np.array(records, dtype=object)}


@contextlib.contextmanager
def _quiet_data_context(ray: Any) -> Iterator[None]:
    """Ray Data's own progress bars off while the batch runs (bgkit shows its own)."""
    ctx = ray.data.DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "enable_operator_progress_bars") if hasattr(ctx, k)}
    for k in saved:
        setattr(ctx, k, False)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)


def run_ray(
    items: Sequence[BatchItem],
    model: ModelRef,
    settings: Any,
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    batch_size: int = 4,
    audio: bool = True,
) -> Iterator[FileRecord]:
    """Make the outputs of ``items`` on Ray; yields each file's record as it comes back.

    Args:
        items: the files to do (from :func:`bgkit.jobs.batch.plan_batch`); their paths must be
            the same on every node.
        model: the model each worker loads.
        settings: the :class:`bgkit.EffectSettings` to draw with.
        address: the cluster: None starts a local Ray instance (on this machine's CPUs) unless
            Ray is initialised already (then that one is used); "auto" joins the cluster this
            machine is part of; "ray://head:10001" connects with Ray Client.
        workers: model replicas (Ray actors), each loading the model once (default: as many as
            the cluster's CPUs, or GPUs with ``gpus_per_worker``, allow).
        cpus_per_worker: CPUs reserved for each worker (its torch threads).
        gpus_per_worker: GPUs for each worker (e.g. 1, or 0.5 to share one); > 0 runs the model
            on CUDA (``model.device`` "auto" or "cuda").
        batch_size: files per ``map_batches`` call (per worker, at a time).
        audio: keep videos' sound.

    Stopping the iteration early (an interrupt) stops the Ray Data job, and shuts Ray down if
    it was started here.
    """
    ray = require("ray", "the Ray engine")
    require("ray.data", "the Ray engine")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if cpus_per_worker <= 0:
        raise ValueError(f"cpus_per_worker must be above 0; got {cpus_per_worker}")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus_per_worker must be 0 or more; got {gpus_per_worker}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    if gpus_per_worker > 0 and model.device == "cpu":
        raise ValueError("gpus_per_worker > 0 but the model's device is 'cpu'; use --device auto or cuda")
    started = False
    if ray.is_initialized():
        if address is not None:
            log.warning("Ray is initialised already in this process; address %r is not used", address)
    else:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=False)
        started = True
    try:
        resources = ray.cluster_resources()
        if workers is None:
            if gpus_per_worker > 0:
                workers = max(1, int(resources.get("GPU", 0) // gpus_per_worker))
            else:
                workers = max(1, int(resources.get("CPU", 1) // cpus_per_worker))
        blocks = max(1, math.ceil(len(items) / batch_size))
        workers = min(workers, blocks)  # a worker with no block to take would only load the model
        log.info("Ray: %d worker(s), %g CPU and %g GPU each; cluster: %g CPUs, %g GPUs", workers, cpus_per_worker,
                 gpus_per_worker, resources.get("CPU", 0), resources.get("GPU", 0))
        ref = dataclasses.asdict(model)
        if gpus_per_worker > 0 and ref["device"] == "auto":
            ref["device"] = "cuda"
        with _quiet_data_context(ray):  # a dataset keeps the context it was made in
            ds = ray.data.from_items([it.as_row() for it in items], override_num_blocks=blocks)
            ds = ds.map_batches(
                BatchPredictor,
                fn_constructor_kwargs={"model": ref, "settings": settings, "audio": audio,
                                       "threads": max(1, int(cpus_per_worker))},
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker or None,
            )
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                for line in batch["record"]:
                    yield FileRecord.from_dict(json.loads(str(line)))
    finally:
        if started:
            ray.shutdown()
