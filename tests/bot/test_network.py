"""Real network behaviour against a small Discord stand-in on 127.0.0.1 (aiohttp).

The stand-in speaks Discord's REST API (answered by simcord's in-memory backend, reused via its
route table) and gateway protocol (HELLO / IDENTIFY / READY / heartbeats / RESUME / RESUMED)
over a real websocket, so discord.py's HTTP client, rate limiter and reconnect logic all run
unmodified. Checked here:

- a REST 429 (with `Via` and a JSON `retry_after`, as Discord sends them) is retried and the
  call succeeds;
- the gateway dropping the connection makes the bot RESUME its session, and the message
  posted while it was disconnected (never replayed) is backfilled exactly once;
- an invalidated session makes it re-IDENTIFY, and the READY backfill catches up again.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
import yarl
from aiohttp import WSMsgType, web
from simcord.backend import Backend, serializers
from simcord.backend.errors import BackendError
from simcord.http.router import dispatch as simcord_dispatch
from sqlalchemy import select

from bot.app import create_bot
from bot.db.models import MessageRecord

from .conftest import make_settings

TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAw.Fake.network-test-token-0000000000000"
HISTORY = re.compile(r"^/channels/\d+/messages$")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json.
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeDiscord:
    """REST + gateway stand-in. The test drives it; it records what the bot did."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.port = 0
        self.session_id = "session-1"
        self.seq = 0
        self.ws: web.WebSocketResponse | None = None
        self.can_connect = asyncio.Event()
        self.can_connect.set()
        self.invalidate_next_resume = False
        self.rate_limit_history = 1  # the next N history requests get a 429 first
        self.rest_log: list[tuple[int, str, str]] = []  # (status, method, path)
        self.ops: list[tuple[int, Any]] = []  # gateway ops received from the bot
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        backend.subscribers.append(self._forward)

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self.gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------- REST
    async def rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        if request.method == "GET" and HISTORY.match(path) and self.rate_limit_history > 0:
            self.rate_limit_history -= 1
            self.rest_log.append((429, request.method, path))
            return json_response(
                {"message": "You are being rate limited.", "retry_after": 0.05, "global": False},
                status=429,
                headers={"Via": "1.1 google", "X-RateLimit-Scope": "user"},
            )
        body = None
        if request.can_read_body and request.content_type == "application/json":
            body = await request.json()
        try:
            result = simcord_dispatch(
                self.backend, request.method, path, json=body, params=dict(request.query)
            )
        except BackendError as exc:
            self.rest_log.append((exc.status, request.method, path))
            return json_response({"code": exc.code, "message": str(exc)}, status=exc.status)
        self.rest_log.append((200, request.method, path))
        if result is None:
            return web.Response(status=204)
        return json_response(result)

    # ------------------------------------------------------------- gateway
    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        await self.can_connect.wait()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41_250}}))
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            op, data = payload["op"], payload.get("d")
            self.ops.append((op, data))
            if op == 1:  # heartbeat
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:  # IDENTIFY
                assert data["token"] == TOKEN
                self.ws = ws
                self.seq = 0
                self.session_id = f"session-{sum(o == 2 for o, _ in self.ops)}"
                await self.send(
                    "READY",
                    {
                        "v": 10,
                        "user": dict(serializers.user_payload(self.backend.bot_user)),
                        "guilds": [{"id": str(g), "unavailable": True} for g in self.backend.guilds],
                        "session_id": self.session_id,
                        "resume_gateway_url": self.gateway_url,
                        "application": {"id": str(self.backend.application_id), "flags": 0},
                    },
                )
                for guild in self.backend.guilds.values():
                    await self.send("GUILD_CREATE", serializers.guild_create_payload(self.backend, guild))
            elif op == 6:  # RESUME
                if self.invalidate_next_resume or data["session_id"] != self.session_id:
                    self.invalidate_next_resume = False
                    await ws.send_str(json.dumps({"op": 9, "d": False}))
                    continue
                self.ws = ws
                await self.send("RESUMED", {})
        if self.ws is ws:
            self.ws = None
        return ws

    async def send(self, event: str, data: Any) -> None:
        assert self.ws is not None
        self.seq += 1
        await self.ws.send_str(json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}))

    def _forward(self, event: str, payload: Any) -> None:
        """Backend events (a user posting...) go out over the live websocket."""
        if self.ws is None or self.ws.closed:
            return
        task = asyncio.get_running_loop().create_task(self.send(event, dict(payload)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drop_connection(self) -> None:
        """Close the socket like a Discord-side network failure; block reconnects until allowed."""
        self.can_connect.clear()
        ws, self.ws = self.ws, None
        assert ws is not None
        await ws.close(code=4000, message=b"simulated outage")


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:  # noqa: ASYNC109
    """Poll an async/sync predicate until it is truthy (the bot runs on real time here)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake_discord(monkeypatch):
    backend = Backend()
    # simcord's clock starts on a fixed date; here the bot runs on real time, so start "now"
    # (else every message would look older than the retention window).
    backend.clock._epoch = datetime.now(UTC)
    server = FakeDiscord(backend)
    await server.start()
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{server.port}/api/v10")
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
    yield server
    await server.stop()


async def test_rate_limit_retry_resume_and_reidentify_with_backfill(
    fake_discord, tmp_path, tiny_model_dir, tiny_classifier
):
    backend = fake_discord.backend
    guild = backend.create_guild("Net Guild")
    channel = backend.create_channel(guild.id, "general")
    alice = backend.make_user("alice")
    backend.add_member(guild.id, alice.id)
    before_start = backend.create_message(channel.id, alice.id, "sent before the bot started", broadcast=False)

    settings = make_settings(tmp_path, tiny_model_dir, discord_token=TOKEN)
    bot = create_bot(settings, classifier=tiny_classifier)
    bot._connection.guild_ready_timeout = 0.2  # no stragglers to wait for (default 2 s)
    runner = asyncio.create_task(bot.start(TOKEN))

    async def stored_ids() -> set[int]:
        if not getattr(bot, "_prepared", False):
            return set()
        await bot.writer.flush()
        async with bot.sessionmaker() as session:
            return set(await session.scalars(select(MessageRecord.message_id)))

    async def has(*ids: int) -> bool:
        return set(ids) <= await stored_ids()

    try:
        # 1. READY → backfill; its first history request is rate limited, retried, and succeeds.
        await eventually(lambda: has(before_start.id))
        history_calls = [(s, p) for s, m, p in fake_discord.rest_log if HISTORY.match(p)]
        assert history_calls[0] == (429, f"/channels/{channel.id}/messages")
        assert history_calls[1] == (200, f"/channels/{channel.id}/messages")

        # 2. Live message over the real websocket.
        live = backend.create_message(channel.id, alice.id, "live while connected")
        await eventually(lambda: has(live.id))

        # 3. The connection drops; a message is posted meanwhile and never replayed.
        first_session = fake_discord.session_id
        await fake_discord.drop_connection()
        await eventually(lambda: not bot.health()["connected"], timeout=10)
        missed = backend.create_message(channel.id, alice.id, "posted during the outage", broadcast=False)
        fake_discord.can_connect.set()
        resume = await eventually(lambda: [d for op, d in fake_discord.ops if op == 6], timeout=15)
        assert resume[0]["session_id"] == first_session and resume[0]["seq"] >= 3
        await eventually(lambda: has(missed.id))
        assert bot.health()["connected"]

        # 4. The next resume is refused (invalid session): the bot re-IDENTIFYs, READY backfills.
        fake_discord.invalidate_next_resume = True
        await fake_discord.drop_connection()
        missed_again = backend.create_message(channel.id, alice.id, "second outage", broadcast=False)
        fake_discord.can_connect.set()
        await eventually(lambda: sum(op == 2 for op, _ in fake_discord.ops) == 2, timeout=15)
        await eventually(lambda: has(missed_again.id))

        assert await stored_ids() == {before_start.id, live.id, missed.id, missed_again.id}
        assert bot.metrics.backfill_messages._value.get() == 3
    finally:
        await bot.close()
        await asyncio.wait_for(runner, 10)


async def test_sync_command_pushes_the_tree_over_rest(fake_discord, tmp_path, tiny_model_dir, tiny_classifier):
    """What `python -m bot sync` does: log in (cogs register commands), PUT them, no gateway."""
    from bot.exts.owner import sync_commands

    guild = fake_discord.backend.create_guild("Sync Guild")
    settings = make_settings(tmp_path, tiny_model_dir, discord_token=TOKEN, guild_ids_for_sync=[guild.id])
    bot = create_bot(settings, classifier=tiny_classifier)
    async with bot:
        await bot.login(TOKEN)
        lines = await sync_commands(bot, settings.guild_ids_for_sync)
    puts = [p for s, m, p in fake_discord.rest_log if m == "PUT"]
    assert puts == [f"/applications/{fake_discord.backend.application_id}/guilds/{guild.id}/commands"]
    assert lines and lines[0].startswith("synced ") and str(guild.id) in lines[0]
    assert not [op for op, _ in fake_discord.ops]  # never touched the gateway
