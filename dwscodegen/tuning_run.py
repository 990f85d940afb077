"""Running tuning jobs: in this process, in a pool of worker processes, or on a dask.distributed cluster."""
from __future__ import annotations

import multiprocessing
from typing import Callable

from .errors import DwsError
from .procs import install_worker_stop_handlers
from .tuning import Job, measure


def run_jobs(jobs: list[Job], workers: int, scheduler: str | None, on_result: Callable[[dict], None]) -> None:
    if scheduler:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError:
            raise DwsError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
        try:
            client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise DwsError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
        with client:
            futures = [client.submit(measure, job, pure=False) for job in jobs]
            for future in dask_completed(futures):
                on_result(future.result())
    elif workers > 1:
        # multiprocessing.Pool, not concurrent.futures: leaving the block terminates the workers (an error
        # or a signal must not wait for the remaining jobs), and each worker ends its own QEMU first
        with multiprocessing.Pool(workers, initializer=install_worker_stop_handlers) as pool:
            for result in pool.imap_unordered(measure, jobs):
                on_result(result)
    else:
        for job in jobs:
            on_result(measure(job))
