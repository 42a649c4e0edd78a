"""Token-bucket queues in front of the bot's own Discord writes (reactions, alert posts).

A busy channel must never turn into a burst of reactions: every visible action is queued
per channel and only runs when both the channel's bucket and the guild's bucket have a
token. discord.py's own 429 handling still sits underneath; this just keeps us well clear
of it. When a channel's queue is huge the OLDEST pending action is dropped (a reaction on a
message from a minute ago is worth less than one on the newest) and counted.

The clock and the sleep function are injectable so tests can use a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import discord

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
Action = Callable[[], Awaitable[Any]]


@dataclass
class TokenBucket:
    """Classic token bucket: `rate` tokens per second, at most `capacity` stored."""

    rate: float
    capacity: float
    clock: Clock
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.tokens = float(self.capacity)
        self.updated = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated = now

    def delay(self) -> float:
        """Seconds until one token is available (0.0 when one is available now)."""
        self._refill()
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        """Consume one token; call only right after `delay()` returned 0."""
        self._refill()
        self.tokens -= 1.0


@dataclass(frozen=True)
class RateLimits:
    """Defaults: ≤ 4 actions/s per channel (one per 0.25 s, no burst), ≤ 10/s per guild."""

    channel_rate: float = 4.0
    channel_burst: int = 1
    guild_rate: float = 10.0
    guild_burst: int = 5
    max_pending_per_channel: int = 200


@dataclass
class _Pending:
    name: str
    action: Action


class ActionQueue:
    """Per-channel FIFO queues drained by one worker task per busy channel."""

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits or RateLimits()
        # Looked up at call time (not bound at import) so a patched clock, e.g. a test
        # harness's virtual time, is the same one asyncio.sleep follows.
        self._clock: Clock = clock or (lambda: time.monotonic())
        self._sleep: Sleep = sleep or (lambda seconds: asyncio.sleep(seconds))
        self._on_drop = on_drop
        self._queues: dict[int, deque[_Pending]] = {}
        self._channel_buckets: dict[int, TokenBucket] = {}
        self._guild_buckets: dict[int, TokenBucket] = {}
        self._channel_guild: dict[int, int] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._closed = False
        self.dropped = 0
        self.completed = 0
        self.failed = 0

    def pending(self, channel_id: int | None = None) -> int:
        """Queued (not yet started) actions for one channel, or in total."""
        if channel_id is not None:
            return len(self._queues.get(channel_id, ()))
        return sum(len(q) for q in self._queues.values())

    def submit(self, guild_id: int, channel_id: int, action: Action, *, name: str = "action") -> bool:
        """Queue `action` for `channel_id`; returns False when the queue is closed."""
        if self._closed:
            return False
        queue = self._queues.setdefault(channel_id, deque())
        self._channel_guild[channel_id] = guild_id
        while len(queue) >= self.limits.max_pending_per_channel:
            dropped = queue.popleft()
            self.dropped += 1
            log.warning("rate limit queue full in channel %s: dropped %s", channel_id, dropped.name)
            if self._on_drop is not None:
                self._on_drop(dropped.name)
        queue.append(_Pending(name, action))
        worker = self._workers.get(channel_id)
        if worker is None or worker.done():
            self._workers[channel_id] = asyncio.get_running_loop().create_task(
                self._drain_channel(channel_id), name=f"ratelimit-{channel_id}"
            )
        return True

    def _bucket(self, buckets: dict[int, TokenBucket], key: int, rate: float, burst: int) -> TokenBucket:
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = TokenBucket(rate, burst, self._clock)
        return bucket

    async def _wait_for_tokens(self, channel_id: int) -> None:
        guild_id = self._channel_guild[channel_id]
        limits = self.limits
        channel = self._bucket(self._channel_buckets, channel_id, limits.channel_rate, limits.channel_burst)
        guild = self._bucket(self._guild_buckets, guild_id, limits.guild_rate, limits.guild_burst)
        while True:
            wait = max(channel.delay(), guild.delay())
            if wait <= 0:
                # No await between the check and the take: the shared guild bucket
                # cannot be raced by another channel's worker.
                channel.take()
                guild.take()
                return
            await self._sleep(wait)

    async def _drain_channel(self, channel_id: int) -> None:
        queue = self._queues[channel_id]
        try:
            while queue:
                await self._wait_for_tokens(channel_id)
                if not queue:  # everything was dropped while we waited
                    break
                pending = queue.popleft()
                try:
                    await pending.action()
                    self.completed += 1
                except discord.HTTPException as exc:
                    self.failed += 1
                    log.warning("%s in channel %s failed: %s", pending.name, channel_id, exc)
                except Exception:
                    self.failed += 1
                    log.exception("%s in channel %s raised", pending.name, channel_id)
        finally:
            if self._workers.get(channel_id) is asyncio.current_task():
                del self._workers[channel_id]

    async def join(self) -> None:
        """Wait until every queued action has run (or been dropped)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def close(self) -> None:
        """Stop accepting work and cancel what is still queued."""
        self._closed = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        self._queues.clear()
