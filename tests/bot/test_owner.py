"""Owner-only `!sync`: syncs on demand for owners, silent for everyone else."""

from __future__ import annotations

from discord.ext import commands


async def test_owner_can_sync_and_others_cannot(sim):
    sim.bot.owner_ids = {sim.mod.id}
    puts_before = [r for r in sim.env.http_requests if r.method == "PUT"]

    await sim.send(sim.mod, sim.general, "!sync here")
    reply = sim.general.last_message
    assert reply.author.id == sim.bot.user.id and reply.content.startswith("synced ")
    assert str(sim.guild.id) in reply.content
    puts = [r for r in sim.env.http_requests if r.method == "PUT"]
    assert len(puts) == len(puts_before) + 1 and f"/guilds/{sim.guild.id}/commands" in puts[-1].path

    await sim.send(sim.alice, sim.general, "!sync global")
    assert sim.general.last_message.author.id == sim.alice.id  # no reply to non-owners
    assert [type(e) for e in sim.env.errors] == [commands.NotOwner]
