"""GreedyBatcher: batches form from what queued while the model was busy; waits only when idle."""

import asyncio

import pytest

from debias.serving.batching import GreedyBatcher


class Model:
    """A batch function that records its batches and takes ``delay`` seconds per call."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[int]] = []
        self.running = 0
        self.max_running = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.batches.append(list(items))
        try:
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in items:
                raise ValueError(f"bad item {self.fail_on}")
            return [10 * x for x in items]
        finally:
            self.running -= 1


def run(coro):
    return asyncio.run(coro)


def test_results_go_back_to_their_own_callers():
    async def main():
        m = Model(delay=0.01)
        b = GreedyBatcher(m, max_batch_size=4)
        return await asyncio.gather(*(b.submit(i) for i in range(10))), m

    out, m = run(main())
    assert out == [10 * i for i in range(10)]
    assert sorted(x for batch in m.batches for x in batch) == list(range(10))
    assert all(len(batch) <= 4 for batch in m.batches)
    assert m.max_running == 1  # one batch at a time


def test_next_batch_is_everything_queued_while_the_model_was_busy():
    async def main():
        m = Model(delay=0.05)
        b = GreedyBatcher(m, max_batch_size=32, wait_s=0.0)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.01)  # the model is now busy with [0]
        rest = [asyncio.ensure_future(b.submit(i)) for i in range(1, 8)]
        await asyncio.gather(first, *rest)
        return m

    m = run(main())
    # [0] ran alone (no wait); the 7 that arrived during it went together, without waiting.
    assert m.batches == [[0], [1, 2, 3, 4, 5, 6, 7]]


def test_an_idle_model_waits_up_to_wait_s_for_company():
    async def main():
        m = Model()
        b = GreedyBatcher(m, max_batch_size=8, wait_s=0.2)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)  # inside the wait window
        second = asyncio.ensure_future(b.submit(1))
        await asyncio.gather(first, second)
        return m

    assert run(main()).batches == [[0, 1]]


def test_a_full_batch_does_not_wait():
    async def main():
        m = Model()
        b = GreedyBatcher(m, max_batch_size=3, wait_s=30.0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(*(b.submit(i) for i in range(3)))
        return m, loop.time() - t0

    m, elapsed = run(main())
    assert m.batches == [[0, 1, 2]]
    assert elapsed < 10  # far below wait_s: the batch ran when full


def test_a_lone_request_runs_after_wait_s():
    async def main():
        m = Model()
        b = GreedyBatcher(m, max_batch_size=8, wait_s=0.05)
        return await b.submit(7), m

    out, m = run(main())
    assert out == 70 and m.batches == [[7]]


def test_a_failing_batch_fails_its_requests_only():
    async def main():
        m = Model(delay=0.02, fail_on=3)
        b = GreedyBatcher(m, max_batch_size=2)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.005)
        bad = [asyncio.ensure_future(b.submit(i)) for i in (3, 4)]
        results = await asyncio.gather(first, *bad, return_exceptions=True)
        after = await b.submit(5)  # the batcher still works
        return results, after

    results, after = run(main())
    assert results[0] == 0
    assert all(isinstance(r, ValueError) and "bad item 3" in str(r) for r in results[1:])
    assert after == 50


def test_wrong_result_count_is_an_error_for_the_batch():
    async def bad(items):
        return items[:-1]

    async def main():
        b = GreedyBatcher(bad, max_batch_size=4)
        return await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)

    out = run(main())
    assert all(isinstance(r, RuntimeError) and "returned 1 results for 2 items" in str(r) for r in out)


def test_cancelled_requests_are_not_scored():
    async def main():
        m = Model(delay=0.05)
        b = GreedyBatcher(m, max_batch_size=8)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(b.submit(1))
        kept = asyncio.ensure_future(b.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(first, kept)
        return m

    assert run(main()).batches == [[0], [2]]


@pytest.mark.parametrize("kw, msg", [({"max_batch_size": 0}, "max_batch_size must be >= 1"),
                                     ({"max_batch_size": 2, "wait_s": -1}, "wait_s must be >= 0")])
def test_bad_settings(kw, msg):
    async def f(items):
        return items

    with pytest.raises(ValueError, match=msg):
        GreedyBatcher(f, **kw)
