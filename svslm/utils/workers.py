"""Worker processes for a stage's `--nj`: the one start policy every pool of svslm uses.

Workers are started with `spawn`, never `fork`. A forked child copies the parent's memory but not
its threads: once the parent has run a torch (or onnxruntime, OpenMP, CUDA) operation, the
child inherits thread pools whose threads do not exist and locks some of them held, and hangs or
crashes on its first parallel operation. Which parent has already run such code depends on the
caller (a test, `svslm sing`, a stage that fitted a model first), so no pool relies on it. A
spawned worker imports its modules afresh and loads its models once, in `initializer`; what it
is given (the initializer's arguments, the tasks) must pickle, and a script that starts a pool
must keep its top level under `if __name__ == "__main__":` (a spawned worker imports it).

The price is the start: each worker imports torch and the stage's modules itself (measured for
stage 2's tokenizing pool of 2 workers on the shared 2-core machine at load 5: 21-23 s against
0.4 s forked), paid once per pool, not per utterance.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

START_METHOD = "spawn"


def _start_worker(threads: int | None, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)  # nj workers share the cores: more threads each only contend
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def process_pool(nj: int, initializer: Callable[..., None] | None = None, initargs: tuple = (),
                 threads: int | None = 1) -> Iterator[multiprocessing.pool.Pool]:
    """A `multiprocessing` pool of `nj` spawned workers, each with `threads` torch threads (None:
    torch's default, for workers that never import it) and `initializer(*initargs)` run once.
    Leaving the block terminates the workers (work still queued is abandoned)."""
    ctx = multiprocessing.get_context(START_METHOD)
    pool = ctx.Pool(nj, _start_worker, (threads, initializer, initargs))
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def process_executor(nj: int, initializer: Callable[..., None] | None = None, initargs: tuple = (),
                     threads: int | None = 1) -> ProcessPoolExecutor:
    """The same workers as a `concurrent.futures` executor, for callers that want each task's
    failure (a worker that died included) as its own future's exception."""
    args: tuple[Any, ...] = (threads, initializer, initargs)
    return ProcessPoolExecutor(nj, mp_context=multiprocessing.get_context(START_METHOD),
                               initializer=_start_worker, initargs=args)
