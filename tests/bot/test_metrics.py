"""Prometheus metrics on a private registry, and the /metrics + /healthz endpoints."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from bot.metrics import BotMetrics, MetricsServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bot_settings_overrides():
    return {"metrics_port": free_port(), "metrics_host": "127.0.0.1"}


def test_each_bot_has_its_own_registry():
    first, second = BotMetrics(), BotMetrics()  # no "Duplicated timeseries" error
    first.messages_classified.labels(label="spam", source="live").inc()
    assert b'chatlabel_messages_classified_total{label="spam",source="live"} 1.0' in first.render()
    assert b'label="spam"' not in second.render()


async def test_health_endpoint_reports_503_when_unhealthy():
    state = {"ok": False, "connected": False, "model_loaded": True}
    server = MetricsServer(BotMetrics(), lambda: state, "127.0.0.1", 0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 503
                assert await response.json() == state
            state["ok"] = True
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        await server.stop()


async def test_running_bot_serves_metrics_and_health(sim):
    msg = await sim.send(sim.alice, sim.general, "how do I read a file line by line?")
    await sim.send(sim.bob, sim.general, "", attachments=[("a.png", b"png")])
    row = await sim.row(msg.id)
    port = sim.bot.settings.metrics_port
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            health = await response.json()
        assert health["ok"] and health["connected"] and health["model_loaded"]
        assert health["model_version"] == sim.bot.classifier.version

        await sim.dispatch("disconnect")  # the gateway connection dropped
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503
            assert (await response.json())["connected"] is False

    assert f'chatlabel_messages_classified_total{{label="{row.label}",source="live"}} 1.0' in text
    assert "chatlabel_attachment_only_messages_total 1.0" in text
    assert "chatlabel_classification_latency_seconds_count 1.0" in text
    assert "chatlabel_classifier_queue_depth 0.0" in text
    assert "chatlabel_db_write_latency_seconds_count" in text
    assert 'chatlabel_messages_skipped_total{reason="system"}' in text  # THREAD_CREATED notice
