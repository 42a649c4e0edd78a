"""`bot.app`: start-up leaves the long-lived heap out of the cyclic GC's full collections."""

from __future__ import annotations

import gc
import weakref

import bot.app
from tests.bot.conftest import prepared_bot


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_startup_heap_collects_garbage_then_freezes_what_is_alive() -> None:
    garbage_a, garbage_b = _Node(), _Node()
    garbage_a.other, garbage_b.other = garbage_b, garbage_a  # a cycle only the GC can free
    dead = weakref.ref(garbage_a)
    del garbage_a, garbage_b
    alive = _Node()
    alive.other = alive
    try:
        bot.app.freeze_startup_heap()
        assert dead() is None  # collected first, not frozen forever
        assert gc.get_freeze_count() > 0
        assert not any(obj is alive for obj in gc.get_objects())  # out of every generation
    finally:
        gc.unfreeze()
    assert any(obj is alive for obj in gc.get_objects())


async def test_setup_hook_freezes_the_heap_after_loading_extensions(
    bot_settings, tiny_classifier, monkeypatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(bot.app, "freeze_startup_heap", lambda: calls.append("frozen"))
    chat_bot = await prepared_bot(bot_settings, tiny_classifier, extensions=[])
    try:
        await chat_bot.setup_hook()
    finally:
        await chat_bot.shutdown_services()
    assert calls == ["frozen"]
