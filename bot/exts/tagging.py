"""Automatic tagging and moderator alerts, driven by `on_message_classified`.

Per channel mode (a thread or forum post uses its parent channel's mode unless it has its own):
- off:    nothing;
- react:  add the label's emoji when the confidence clears the label's threshold;
- forum:  a new forum post (the starter message of a thread in a forum channel) gets the
          forum tags matching its labels; missing tags are created when the bot has Manage
          Channels and the forum has fewer than 20; never more than 5 tags on a post;
- shadow: nothing visible; what would have been done is recorded in `tag_actions` with
          applied=False (the weekly summary reports it).

Edits are not re-tagged (a reaction/tag on a message that was edited stays as it was) but
ARE checked for alerts: posting something harmless and editing spam in is a known trick.
Alerts are independent of the channel's tagging mode: they go to the guild's alert channel
for the labels the admins chose, once per message and label. Every visible action goes
through the rate-limited `ActionQueue`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands
from prometheus_client import Counter
from sqlalchemy import select

from bot.db.models import TagAction
from bot.ratelimit import ActionQueue
from bot.views import AlertVerdictButton, alert_view

if TYPE_CHECKING:
    from bot.app import ChatLabelBot
    from bot.guild_config import GuildConfig
    from classifier import Prediction

log = logging.getLogger(__name__)

DEFAULT_EMOJI: Mapping[str, str | None] = {
    "question": "❓",
    "answer": "💡",
    "bug_report": "🐛",
    "suggestion": "💭",
    "spam": "🚫",
    "toxic": "⚠️",
    "comment": None,
}
NO_EMOJI = frozenset({"", "none", "off", "-"})
DEFAULT_THRESHOLD = 0.5
MAX_TAGS_PER_POST = 5
MAX_TAGS_PER_FORUM = 20
MAX_TAG_NAME = 20
EXCERPT_CHARS = 200
# Extra forum-tag names that mean the same as a label (after normalisation).
TAG_SYNONYMS: Mapping[str, frozenset[str]] = {
    "bug_report": frozenset({"bug", "bugs", "bug report", "bug reports"}),
    "suggestion": frozenset({"suggestion", "suggestions", "idea", "ideas", "feature request"}),
    "question": frozenset({"question", "questions", "help"}),
    "answer": frozenset({"answer", "answers", "solved"}),
}


# ------------------------------------------------------------------------ pure rules


def emoji_for(label: str, emoji_map: Mapping[str, str]) -> str | None:
    """The guild's emoji for a label, else the default; None means "no reaction"."""
    if label in emoji_map:
        value = str(emoji_map[label]).strip()
        return None if value.lower() in NO_EMOJI else value
    return DEFAULT_EMOJI.get(label)


def effective_threshold(label: str, guild: Mapping[str, float], model: Mapping[str, float]) -> float:
    """Guild thresholds override the model's; unknown labels use 0.5."""
    if label in guild:
        return float(guild[label])
    return float(model.get(label, DEFAULT_THRESHOLD))


def confident_labels(
    prediction: Prediction,
    guild_thresholds: Mapping[str, float],
    model_thresholds: Mapping[str, float],
    *,
    multi_label: bool,
) -> list[str]:
    """Labels to act on, best first.

    Single-label: the predicted label when its confidence clears its threshold. Multi-label:
    every label whose score clears its own threshold.
    """
    if multi_label:
        ranked = sorted(prediction.scores.items(), key=lambda item: -item[1])
        return [
            label
            for label, score in ranked
            if score >= effective_threshold(label, guild_thresholds, model_thresholds)
        ]
    label = prediction.label
    if prediction.confidence >= effective_threshold(label, guild_thresholds, model_thresholds):
        return [label]
    return []


def normalize_tag_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()


def tag_matches(tag_name: str, label: str) -> bool:
    """`bug_report` matches "Bug report", "bug-report", "Bugs", "bug" (case-insensitive)."""
    tag, wanted = normalize_tag_name(tag_name), normalize_tag_name(label)
    return tag in (wanted, f"{wanted}s") or tag in TAG_SYNONYMS.get(label, ())


def tag_name_for(label: str) -> str:
    return normalize_tag_name(label).capitalize()[:MAX_TAG_NAME]


def find_tag(tags: Iterable[discord.ForumTag], label: str) -> discord.ForumTag | None:
    for tag in tags:
        if tag_matches(tag.name, label):
            return tag
    return None


def is_forum_starter(message: discord.Message) -> bool:
    """The opening message of a forum post: it shares its thread's id."""
    channel = message.channel
    return (
        isinstance(channel, discord.Thread)
        and isinstance(channel.parent, discord.ForumChannel)
        and message.id == channel.id
    )


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, inert preview for moderators (shown in the alert, never stored)."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(flat))


def build_alert_embed(message: discord.Message, label: str, score: float) -> discord.Embed:
    embed = discord.Embed(
        title=f"Possible {label.replace('_', ' ')}",
        colour=discord.Colour.red(),
        timestamp=message.created_at,
    )
    if message.content:
        embed.description = f"> {excerpt(message.content)}"
    embed.add_field(name="Label", value=label)
    embed.add_field(name="Confidence", value=f"{score:.0%}")
    embed.add_field(name="Channel", value=getattr(message.channel, "mention", str(message.channel.id)))
    embed.add_field(name="Author", value=message.author.mention)
    embed.add_field(name="Message", value=f"[Jump to message]({message.jump_url})", inline=False)
    embed.set_footer(text=f"message {message.id} · judge it with the buttons below")
    return embed


# ------------------------------------------------------------------------ the cog


class Tagging(commands.Cog):
    """Reacts, forum tags, shadow records and moderator alerts for classified messages."""

    RECENT_ALERTS = 10_000

    def __init__(self, bot: ChatLabelBot, *, actions: ActionQueue | None = None) -> None:
        self.bot = bot
        registry = bot.metrics.registry
        self.dropped_counter = Counter(
            "chatlabel_tagging_actions_dropped",
            "Reactions/alerts/forum tags dropped because a channel's rate-limit queue was full.",
            registry=registry,
        )
        self.actions_counter = Counter(
            "chatlabel_tag_actions",
            "Tagging actions by action (react, forum_tag, alert) and whether applied (shadow: no).",
            ["action", "applied"],
            registry=registry,
        )
        self.actions = actions or ActionQueue(on_drop=lambda _name: self.dropped_counter.inc())
        self._forum_locks: dict[int, asyncio.Lock] = {}
        # Tags we created whose CHANNEL_UPDATE may not have reached the cache yet.
        self._created_tags: dict[int, list[discord.ForumTag]] = {}
        self._alerted: OrderedDict[tuple[int, str], None] = OrderedDict()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AlertVerdictButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AlertVerdictButton)
        await self.actions.close()
        for counter in (self.dropped_counter, self.actions_counter):
            try:
                self.bot.metrics.registry.unregister(counter)
            except KeyError:
                pass

    # -------------------------------------------------------------------- listener

    @commands.Cog.listener()
    async def on_message_classified(
        self, message: discord.Message, prediction: Prediction, is_edit: bool
    ) -> None:
        if message.guild is None:
            return
        config = await self.bot.guild_configs.get(message.guild.id)
        channel = message.channel
        parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
        mode = config.tagging_mode(channel.id, parent_id)
        model = self.bot.classifier
        labels = confident_labels(
            prediction,
            config.thresholds,
            getattr(model, "thresholds", {}) or {},
            multi_label=bool(getattr(model, "multi_label", False)),
        )
        if not labels:
            return
        if mode != "off" and not is_edit:
            await self._tag(message, labels, mode, config)
        await self._alert(message, prediction, labels, mode, config, is_edit=is_edit)

    # -------------------------------------------------------------------- tagging

    async def _tag(self, message: discord.Message, labels: Sequence[str], mode: str, config: GuildConfig) -> None:
        starter = is_forum_starter(message)
        if mode == "shadow":
            if starter:
                would = [("forum_tag", label) for label in labels[:MAX_TAGS_PER_POST]]
            else:
                would = [("react", label) for label in labels if emoji_for(label, config.emoji_map)]
            await self._record(message, mode, would, applied=False)
        elif mode == "react":
            for label in labels:
                emoji = emoji_for(label, config.emoji_map)
                if emoji is not None:
                    self._queue_reaction(message, label, emoji)
        elif mode == "forum" and starter:
            thread = message.channel
            assert isinstance(thread, discord.Thread)
            self.actions.submit(
                message.guild.id,  # type: ignore[union-attr]
                thread.id,
                lambda: self._apply_forum_tags(message, thread, list(labels)),
                name=f"forum_tag:{thread.id}",
            )

    def _queue_reaction(self, message: discord.Message, label: str, emoji: str) -> None:
        guild = message.guild
        assert guild is not None
        permissions = message.channel.permissions_for(guild.me)  # type: ignore[union-attr,arg-type]
        if not (permissions.add_reactions and permissions.read_message_history):
            log.debug("no permission to react in channel %s", message.channel.id)
            return

        async def react() -> None:
            await message.add_reaction(emoji)
            await self._record(message, "react", [("react", label)], applied=True)

        self.actions.submit(guild.id, message.channel.id, react, name=f"react:{label}")

    def _forum_lock(self, forum_id: int) -> asyncio.Lock:
        return self._forum_locks.setdefault(forum_id, asyncio.Lock())

    async def _apply_forum_tags(self, message: discord.Message, thread: discord.Thread, labels: list[str]) -> None:
        forum = thread.parent
        if not isinstance(forum, discord.ForumChannel):
            return
        guild = forum.guild
        async with self._forum_lock(forum.id):
            known = {tag.id: tag for tag in forum.available_tags}
            for tag in self._created_tags.get(forum.id, []):
                known.setdefault(tag.id, tag)
            can_create = forum.permissions_for(guild.me).manage_channels
            chosen: list[tuple[str, discord.ForumTag]] = []
            for label in labels:
                tag = find_tag(known.values(), label)
                if tag is None and can_create and len(known) < MAX_TAGS_PER_FORUM:
                    tag = await forum.create_tag(name=tag_name_for(label), reason="chatlabel: label tag")
                    known[tag.id] = tag
                    self._created_tags.setdefault(forum.id, []).append(tag)
                if tag is not None and all(tag.id != other.id for _, other in chosen):
                    chosen.append((label, tag))
            applied_ids = {tag.id for tag in thread.applied_tags}
            room = MAX_TAGS_PER_POST - len(applied_ids)
            new = [(label, tag) for label, tag in chosen if tag.id not in applied_ids][: max(0, room)]
            if not new:
                return
            await thread.add_tags(*(tag for _, tag in new), reason="chatlabel: classified post")
        await self._record(message, "forum", [("forum_tag", label) for label, _ in new], applied=True)

    # -------------------------------------------------------------------- alerts

    async def _alert(
        self,
        message: discord.Message,
        prediction: Prediction,
        labels: Sequence[str],
        mode: str,
        config: GuildConfig,
        *,
        is_edit: bool,
    ) -> None:
        if config.alert_channel_id is None:
            return
        guild = message.guild
        assert guild is not None
        target = guild.get_channel(config.alert_channel_id)
        if not isinstance(target, discord.TextChannel | discord.Thread):
            return
        for label in labels:
            if label not in config.alert_labels:
                continue
            key = (message.id, label)
            if key in self._alerted or (is_edit and await self._already_alerted(message.id, label)):
                continue
            self._remember_alert(key)
            permissions = target.permissions_for(guild.me)
            if not (permissions.send_messages and permissions.embed_links):
                log.warning("cannot post alerts in channel %s (missing permissions)", target.id)
                return
            score = float(prediction.scores.get(label, prediction.confidence))
            embed = build_alert_embed(message, label, score)
            view = alert_view(message.channel.id, message.id, label)

            async def post(embed: discord.Embed = embed, view: discord.ui.View | None = view, label: str = label) -> None:
                kwargs: dict[str, Any] = {"embed": embed, "allowed_mentions": discord.AllowedMentions.none()}
                if view is not None:
                    kwargs["view"] = view
                await target.send(**kwargs)
                await self._record(message, mode, [("alert", label)], applied=True)

            self.actions.submit(guild.id, target.id, post, name=f"alert:{label}")

    def _remember_alert(self, key: tuple[int, str]) -> None:
        self._alerted[key] = None
        while len(self._alerted) > self.RECENT_ALERTS:
            self._alerted.popitem(last=False)

    async def _already_alerted(self, message_id: int, label: str) -> bool:
        async with self.bot.sessionmaker() as session:
            found = await session.scalar(
                select(TagAction.id).where(
                    TagAction.message_id == message_id,
                    TagAction.action == "alert",
                    TagAction.label == label,
                ).limit(1)
            )
        return found is not None

    # -------------------------------------------------------------------- records

    async def _record(
        self, message: discord.Message, mode: str, actions: Sequence[tuple[str, str]], *, applied: bool
    ) -> None:
        if not actions:
            return
        assert message.guild is not None
        now = discord.utils.utcnow()
        async with self.bot.sessionmaker.begin() as session:
            session.add_all(
                TagAction(
                    guild_id=message.guild.id,
                    channel_id=message.channel.id,
                    message_id=message.id,
                    mode=mode,
                    action=action,
                    label=label,
                    applied=applied,
                    created_at=now,
                )
                for action, label in actions
            )
        for action, _label in actions:
            self.actions_counter.labels(action=action, applied=str(applied).lower()).inc()


async def setup(bot: ChatLabelBot) -> None:
    await bot.add_cog(Tagging(bot))
