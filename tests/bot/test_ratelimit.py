"""Token buckets and the per-channel action queue, on a fake clock (no real sleeps)."""

from __future__ import annotations

import asyncio
import itertools

import discord
import pytest

from bot.ratelimit import ActionQueue, RateLimits, TokenBucket


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_token_bucket_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, capacity=1, clock=clock)
    assert bucket.delay() == 0.0
    bucket.take()
    assert bucket.delay() == pytest.approx(0.25)
    clock.now += 0.1
    assert bucket.delay() == pytest.approx(0.15)
    clock.now += 10  # never stores more than its capacity
    bucket.take()
    assert bucket.delay() == pytest.approx(0.25)


def test_token_bucket_rejects_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1, clock=FakeClock())


async def test_actions_in_one_channel_are_spaced_by_the_channel_rate():
    clock = FakeClock()
    queue = ActionQueue(RateLimits(channel_rate=4.0, guild_rate=100, guild_burst=100), clock=clock, sleep=clock.sleep)
    ran_at: list[float] = []

    async def react() -> None:
        ran_at.append(clock.now)

    for _ in range(5):
        assert queue.submit(1, 10, react, name="react")
    await queue.join()

    assert len(ran_at) == 5
    gaps = [b - a for a, b in itertools.pairwise(ran_at)]
    assert all(gap >= 0.25 - 1e-9 for gap in gaps), gaps
    assert ran_at[-1] - ran_at[0] == pytest.approx(1.0)


async def test_the_guild_bucket_limits_many_channels_together():
    clock = FakeClock()
    limits = RateLimits(channel_rate=100, channel_burst=1, guild_rate=2.0, guild_burst=1)
    queue = ActionQueue(limits, clock=clock, sleep=clock.sleep)
    ran_at: list[float] = []

    async def post() -> None:
        ran_at.append(clock.now)

    for channel in (10, 11, 12, 13):
        queue.submit(1, channel, post)
    await queue.join()
    ran_at.sort()
    assert ran_at[-1] - ran_at[0] >= 1.5 - 1e-9  # 4 actions at 2/s in one guild

    # Another guild has its own bucket and is not delayed by the first one.
    other: list[float] = []

    async def post_other() -> None:
        other.append(clock.now)

    start = clock.now
    queue.submit(2, 20, post_other)
    await queue.join()
    assert other == [start]


async def test_a_full_queue_drops_the_oldest_and_counts_it():
    clock = FakeClock()
    dropped_names: list[str] = []
    queue = ActionQueue(
        RateLimits(max_pending_per_channel=3), clock=clock, sleep=clock.sleep, on_drop=dropped_names.append
    )
    ran: list[int] = []

    def action(number: int):
        async def run() -> None:
            ran.append(number)

        return run

    for number in range(6):
        queue.submit(1, 10, action(number), name=f"react-{number}")
    # The worker has not run yet (no await happened): 3 kept, the 3 oldest dropped.
    assert queue.pending(10) == 3
    assert queue.dropped == 3
    assert dropped_names == ["react-0", "react-1", "react-2"]
    await queue.join()
    assert ran == [3, 4, 5]
    assert queue.pending() == 0


async def test_a_failing_action_does_not_stop_the_queue():
    clock = FakeClock()
    queue = ActionQueue(clock=clock, sleep=clock.sleep)
    ran: list[str] = []

    async def forbidden() -> None:
        raise discord.Forbidden(_FakeResponse(), "Missing Permissions")

    async def fine() -> None:
        ran.append("ok")

    queue.submit(1, 10, forbidden)
    queue.submit(1, 10, fine)
    await queue.join()
    assert ran == ["ok"]
    assert queue.failed == 1
    assert queue.completed == 1


async def test_close_cancels_pending_work_and_refuses_more():
    clock = FakeClock()
    queue = ActionQueue(RateLimits(channel_rate=0.001), clock=clock, sleep=asyncio.sleep)
    ran: list[int] = []

    async def action() -> None:
        ran.append(1)

    queue.submit(1, 10, action)
    queue.submit(1, 10, action)  # would wait ~1000 s for a token
    await asyncio.sleep(0)
    await queue.close()
    assert ran == [1]
    assert queue.submit(1, 10, action) is False


class _FakeResponse:
    status = 403
    reason = "Forbidden"
