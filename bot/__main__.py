"""`python -m bot [run|migrate|sync|replay FILE...]`.

Configuration problems (no token, unreadable model, unwritable database, bad setting) end
start-up with ONE line saying what to fix, and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import discord
from pydantic import ValidationError

from bot.app import configure_logging, create_bot, load_classifier
from bot.db.engine import DatabaseError, ensure_writable
from bot.settings import Settings

log = logging.getLogger("bot")

EXIT_CONFIG = 2


class ConfigError(Exception):
    """A start-up problem the operator must fix; the message says how."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise ConfigError(
            f"invalid setting {field.upper()}: {first.get('msg')} (see .env.example)"
        ) from None


def require_token(settings: Settings) -> str:
    token = settings.token_value
    if token is None:
        raise ConfigError(
            "DISCORD_TOKEN is not set: put your bot token in .env or the environment "
            "(see .env.example)"
        )
    return token


def prepare_database(settings: Settings) -> None:
    """Create/verify the database file and migrate it to head (before any event loop)."""
    try:
        ensure_writable(settings.database_url)
    except DatabaseError as exc:
        raise ConfigError(str(exc)) from None
    from bot.db.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except Exception as exc:
        raise ConfigError(
            f"migrating the database {settings.database_url} failed: {exc}"
        ) from None


def load_model(settings: Settings):
    model_dir = settings.model_dir
    if not model_dir.is_dir():
        raise ConfigError(
            f"model directory {model_dir} does not exist: build one with `make model` "
            "(or `python -m training.tiny models/tiny` for a toy model) and set MODEL_DIR"
        )
    try:
        return load_classifier(settings)
    except Exception as exc:  # ModelLoadError (a ValueError) names the file; anything else too
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot load the model from {model_dir}: {reason}") from None


# ---------------------------------------------------------------------- commands
def cmd_run(settings: Settings) -> int:
    token = require_token(settings)
    prepare_database(settings)
    model = load_model(settings)
    bot = create_bot(settings, classifier=model)
    try:
        asyncio.run(_run_bot(bot, token))
    except discord.LoginFailure:
        raise ConfigError(
            "Discord rejected DISCORD_TOKEN: copy a fresh token from the developer portal "
            "(Applications > your app > Bot > Reset Token)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "the Message Content intent is not enabled: developer portal > your app > Bot > "
            "Privileged Gateway Intents > MESSAGE CONTENT INTENT"
        ) from None
    return 0


async def _run_bot(bot, token: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with bot:
        runner = asyncio.create_task(bot.start(token), name="discord-client")
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("shutting down: flushing queued rows")
        else:
            stopper.cancel()
        await bot.close()
        if runner.done():
            runner.result()  # re-raise LoginFailure & co.
        else:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)


def cmd_migrate(settings: Settings) -> int:
    prepare_database(settings)
    from bot.db.migrate import current_revision

    print(f"database {settings.database_url} is at revision {current_revision(settings.database_url)}")
    return 0


def cmd_sync(settings: Settings) -> int:
    token = require_token(settings)
    prepare_database(settings)
    model = load_model(settings)
    bot = create_bot(settings, classifier=model)

    async def sync() -> list[str]:
        from bot.exts.owner import sync_commands

        async with bot:
            await bot.login(token)  # runs setup_hook: every cog registers its commands
            return await sync_commands(bot, settings.guild_ids_for_sync)

    try:
        lines = asyncio.run(sync())
    except discord.LoginFailure:
        raise ConfigError("Discord rejected DISCORD_TOKEN: copy a fresh token from the developer portal") from None
    for line in lines:
        print(line)
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from bot.replay import ReplayError, replay_main

    prepare_database(settings)
    model = load_model(settings)
    try:
        return asyncio.run(replay_main(settings, args.files, guild_id=args.guild_id, classifier=model))
    except ReplayError as exc:
        raise ConfigError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="connect to Discord and classify messages (the default)")
    sub.add_parser("migrate", help="bring the database to the newest schema and exit")
    sub.add_parser("sync", help="sync slash commands (globally or to GUILD_IDS_FOR_SYNC) and exit")
    replay = sub.add_parser("replay", help="classify DiscordChatExporter JSON exports into the DB")
    replay.add_argument("files", nargs="+", help="export .json files or directories of them")
    replay.add_argument("--guild-id", type=int, default=None, help="override the export's guild id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        command = args.command or "run"
        if command == "run":
            return cmd_run(settings)
        if command == "migrate":
            return cmd_migrate(settings)
        if command == "sync":
            return cmd_sync(settings)
        return cmd_replay(settings, args)
    except ConfigError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
