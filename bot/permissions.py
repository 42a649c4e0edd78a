"""Server-side permission checks for interactions.

`@app_commands.default_permissions(...)` only hides a command by default: a server admin can
override it per role/member/channel in Integrations settings. So every privileged callback
checks again here, from the permissions Discord resolved for this user in this channel
(`interaction.permissions`), and refuses with a clear ephemeral message.
"""

from __future__ import annotations

import discord

ADMIN_REFUSAL = "You need the **Manage Server** permission to use this."
MODERATOR_REFUSAL = "You need the **Manage Messages** permission to do this."
GUILD_ONLY_REFUSAL = "This only works inside a server."


def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server (or Administrator, which implies it) in this channel."""
    permissions = interaction.permissions
    return interaction.guild is not None and (permissions.administrator or permissions.manage_guild)


def is_moderator(interaction: discord.Interaction) -> bool:
    """Manage Messages (or Administrator) in this channel."""
    permissions = interaction.permissions
    return interaction.guild is not None and (permissions.administrator or permissions.manage_messages)


async def reply_ephemeral(interaction: discord.Interaction, content: str, **kwargs: object) -> None:
    """Answer privately whether or not the interaction was already acknowledged."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, **kwargs)  # type: ignore[arg-type]
    else:
        await interaction.response.send_message(content, ephemeral=True, **kwargs)  # type: ignore[arg-type]


async def ensure_guild(interaction: discord.Interaction) -> bool:
    if interaction.guild is None:
        await reply_ephemeral(interaction, GUILD_ONLY_REFUSAL)
        return False
    return True


async def ensure_admin(interaction: discord.Interaction) -> bool:
    """True when the user may change this server's settings; otherwise refuses and returns False."""
    if not await ensure_guild(interaction):
        return False
    if not is_admin(interaction):
        await reply_ephemeral(interaction, ADMIN_REFUSAL)
        return False
    return True


async def ensure_moderator(interaction: discord.Interaction) -> bool:
    """True when the user may judge predictions; otherwise refuses and returns False."""
    if not await ensure_guild(interaction):
        return False
    if not is_moderator(interaction):
        await reply_ephemeral(interaction, MODERATOR_REFUSAL)
        return False
    return True
