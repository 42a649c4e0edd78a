"""Prometheus metrics and the `/metrics` + `/healthz` HTTP endpoints.

Each bot owns a private `CollectorRegistry` (never the process-global one), so several bots
(tests, replays) can live in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BotMetrics:
    """All of the bot's metrics, registered on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_classified = Counter(
            "chatlabel_messages_classified",
            "Messages classified, by predicted label and source (live, edit, backfill, replay).",
            ["label", "source"],
            registry=r,
        )
        self.messages_skipped = Counter(
            "chatlabel_messages_skipped",
            "Messages not classified, by reason (bot, webhook, system, empty, ignored, opted_out).",
            ["reason"],
            registry=r,
        )
        self.attachment_only = Counter(
            "chatlabel_attachment_only_messages",
            "Attachment-only messages recorded without a label.",
            registry=r,
        )
        self.classification_errors = Counter(
            "chatlabel_classification_errors",
            "Messages whose classification failed (logged with the message id).",
            registry=r,
        )
        self.classification_latency = Histogram(
            "chatlabel_classification_latency_seconds",
            "Time from handing text to the micro-batcher to getting its prediction.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "chatlabel_classifier_queue_depth",
            "Texts waiting in the micro-batcher.",
            registry=r,
        )
        self.writer_pending = Gauge(
            "chatlabel_db_writer_pending_ops",
            "Row upserts/deletes queued in the DB writer, not yet committed.",
            registry=r,
        )
        self.db_write_latency = Histogram(
            "chatlabel_db_write_latency_seconds",
            "Time to commit one batch of writes.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_write_retries = Counter(
            "chatlabel_db_write_retries",
            "Batches retried because the database was locked or unavailable.",
            registry=r,
        )
        self.backfill_messages = Counter(
            "chatlabel_backfill_messages",
            "Messages classified by backfill after a start-up or reconnect.",
            registry=r,
        )

    def bind_queue_depth(self, read: Callable[[], float]) -> None:
        self.queue_depth.set_function(read)

    def bind_writer_pending(self, read: Callable[[], float]) -> None:
        self.writer_pending.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


HealthCheck = Callable[[], dict[str, Any]]


class MetricsServer:
    """A tiny aiohttp app: `/metrics` (Prometheus text) and `/healthz` (JSON, 200 or 503)."""

    def __init__(self, metrics: BotMetrics, health: HealthCheck, host: str, port: int) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics_view)
        app.router.add_get("/healthz", self._health_view)
        return app

    async def start(self) -> int:
        """Serve; returns the bound port (an ephemeral one when constructed with port 0)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("metrics: serving /metrics and /healthz on %s:%s", self._host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics_view(self, _request: web.Request) -> web.Response:
        body = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health_view(self, _request: web.Request) -> web.Response:
        try:
            state = self._health()
        except Exception as exc:  # a broken health check is itself unhealthy
            state = {"ok": False, "error": type(exc).__name__}
        status = 200 if state.get("ok") else 503
        return web.Response(
            status=status, text=json.dumps(state), content_type="application/json"
        )
