"""Where a job's engine work runs: a child process per worker thread (bgremover.engine.isolation),
killed past settings.JOB_TIME_LIMIT_S or settings.JOB_MEMORY_LIMIT_MB, so neither a slow
decode nor a hungry image can hold a worker or the server's memory. The web process itself
never imports PyTorch: the child loads the model once and serves job after job.
"""

from __future__ import annotations

import threading

from django.conf import settings

from bgremover.engine import pipeline
from bgremover.engine.isolation import IsolatedWorker
from bgremover.engine.products import ProductOptions

# Jobs one child serves before a fresh one replaces it (nothing leaked can pile up).
CALLS_PER_PROCESS = 200

_local = threading.local()


def removal_options(matting: str = "auto") -> pipeline.RemovalOptions:
    """The engine options for a job with this matting choice (the default: warming up)."""
    return pipeline.RemovalOptions(
        model=settings.DEFAULT_MODEL,
        model_dir=settings.MODEL_DIR,
        matting=matting,  # type: ignore[arg-type]  (validated by the Job's choices)
        max_pixels=settings.MAX_UPLOAD_PIXELS,
        device=settings.DEVICE,
        precision=settings.PRECISION,
        threads=settings.TORCH_THREADS,
        weights_url=settings.WEIGHTS_URL,
    )


def product_options(matting: str) -> ProductOptions:
    return ProductOptions(removal=removal_options(matting))


def memory_limit_bytes() -> int | None:
    return settings.JOB_MEMORY_LIMIT_MB * 1024 * 1024 or None


def engine_worker() -> IsolatedWorker:
    """This thread's engine process (created on first use; started by its first call)."""
    worker: IsolatedWorker | None = getattr(_local, "worker", None)
    if worker is None:
        worker = IsolatedWorker(
            memory_limit_bytes=memory_limit_bytes(),
            max_calls=CALLS_PER_PROCESS,
            initializer=pipeline.warm_up,
            initargs=(removal_options(),),
            name=f"bgremover-engine-{threading.current_thread().name}",
        )
        _local.worker = worker
    worker.memory_limit_bytes = memory_limit_bytes()  # the setting may change (tests do)
    return worker
