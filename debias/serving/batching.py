"""Dynamic batching that forms a batch when the model is free (greedy batching).

``@serve.batch`` closes a batch ``batch_wait_timeout_s`` after its first request arrives, or
when it is full, whether or not the model is still busy with the previous batch; under load
the next batch therefore holds only what arrived in that window and then waits for the
model anyway: a short wait gives tiny batches, a long one full batches but an idle model while
they fill (docs/BENCHMARKS.md has the measurement).

:class:`GreedyBatcher` waits only when the model is idle: the first request after an idle
spell waits up to ``wait_s`` for company (as ``@serve.batch`` does); while a batch runs, new
requests queue, and the moment it finishes everything queued (up to ``max_batch_size``) goes
as the next batch, without waiting. Batch size thus follows the load: one request at a time
when traffic is light (no added latency beyond ``wait_s``), full batches when it is heavy.
This is the scheduling Triton's dynamic batcher and vLLM's continuous batching use.

Pure asyncio, no Ray: a unit test drives it with a plain coroutine.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GreedyBatcher(Generic[T, R]):
    """Run ``fn`` on batches of submitted items, one batch at a time.

    Parameters
    ----------
    fn
        ``async fn(items) -> results``, one result per item, in order.
    max_batch_size
        Most items in one call of ``fn``.
    wait_s
        How long the first request after an idle spell waits for more before running alone.
        Never applied while requests are queued behind a running batch.

    Notes
    -----
    Items whose caller was cancelled (a client that went away) are dropped before the batch
    runs. An exception from ``fn`` fails every request of that batch and not the batcher: the
    next batch runs normally.
    """

    def __init__(self, fn: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch_size: int,
                 wait_s: float = 0.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1; found {max_batch_size}")
        if wait_s < 0:
            raise ValueError(f"wait_s must be >= 0; found {wait_s}")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._queue: deque[tuple[T, asyncio.Future]] = deque()
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        """Queue one item; returns its result once its batch has run."""
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._arrived = asyncio.Event()
            self._worker = loop.create_task(self._run())
        fut: asyncio.Future = loop.create_future()
        self._queue.append((item, fut))
        self._arrived.set()
        return await fut

    def _take(self) -> list[tuple[T, asyncio.Future]]:
        batch: list[tuple[T, asyncio.Future]] = []
        while self._queue and len(batch) < self.max_batch_size:
            item, fut = self._queue.popleft()
            if not fut.done():  # cancelled callers are not scored
                batch.append((item, fut))
        return batch

    async def _wait_for_company(self) -> None:
        """The model is idle and a request came: wait up to ``wait_s`` for the batch to fill."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while len(self._queue) < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self) -> None:
        idle = True  # started by a request: the model was idle
        while True:
            if not self._queue:  # idle: sleep until a request comes
                self._arrived.clear()
                await self._arrived.wait()
                idle = True
            if idle and self.wait_s > 0:  # let the batch fill; never while requests queue behind a batch
                await self._wait_for_company()
            batch = self._take()
            idle = not batch
            if not batch:
                continue
            items = [item for item, _ in batch]
            try:
                results = await self.fn(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for "
                                       f"{len(items)} items")
            except asyncio.CancelledError:  # the batcher itself is being torn down
                for _, fut in batch:
                    fut.cancel()
                raise
            except Exception as e:  # noqa: BLE001 - the requests of this batch get the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
            else:
                for (_, fut), r in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(r)
