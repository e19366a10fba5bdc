"""The one aiohttp server: health, readiness, metrics and the adapters' routes.

Shutdown on SIGTERM/SIGINT: stop taking work (adapters answer 503 so platforms redeliver later),
give running answers a grace period, finish the rest as interrupted, then close everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .app import Bridge

log = logging.getLogger("bots.server")

BRIDGE_KEY = web.AppKey("bridge", Bridge)
# Slack retries for about 5 minutes and Telegram keeps updates for 24 hours: a week of claims is plenty.
CLAIM_RETENTION = timedelta(days=7)
HOUSEKEEPING_INTERVAL = 3600.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE_KEY]
    ok = await bridge.repo.ping()
    accepting = bridge.engine.accepting
    adapters = {a.name: bool(getattr(a, "is_ready", True)) for a in bridge.adapters}
    status = 200 if ok and accepting and all(adapters.values()) else 503
    return web.json_response(
        {"status": "ready" if status == 200 else "not ready", "database": ok, "accepting": accepting,
         "adapters": adapters},
        status=status,
    )


async def metrics(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE_KEY]
    body = generate_latest(bridge.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_web_app(bridge: Bridge) -> web.Application:
    app = web.Application(client_max_size=25 * 1024 * 1024)
    app[BRIDGE_KEY] = bridge
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    for adapter in bridge.adapters:
        app.add_routes(adapter.routes())
    return app


class Server:
    """Runs a `Bridge` behind the HTTP server until `stop()` (or a signal)."""

    def __init__(self, bridge: Bridge, host: str, port: int) -> None:
        self.bridge = bridge
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    @property
    def bound_port(self) -> int:
        assert self._runner is not None
        for site in self._runner.sites:
            server = getattr(site, "_server", None)
            if server and server.sockets:
                return server.sockets[0].getsockname()[1]
        return self.port

    async def start(self) -> None:
        self._runner = web.AppRunner(build_web_app(self.bridge), handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        for adapter in self.bridge.adapters:
            await adapter.start()
        self._housekeeping = asyncio.create_task(self._housekeep(), name="housekeeping")
        log.info("dify-bridge listening on %s:%s (%s)", self.host, self.bound_port,
                 ", ".join(a.name for a in self.bridge.adapters) or "no adapters")
        self.started.set()

    def stop(self) -> None:
        self._stopping.set()

    async def housekeep_once(self) -> int:
        """Forget delivery claims old enough that no platform will redeliver them."""
        pruned = await self.bridge.repo.prune_claims(CLAIM_RETENTION)
        if pruned:
            log.info("pruned %d old delivery claims", pruned)
        return pruned

    async def _housekeep(self) -> None:
        while True:
            try:
                await self.housekeep_once()
            except Exception:
                log.exception("housekeeping failed; will try again")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await self.start()
            await self._stopping.wait()
            log.info("shutting down: finishing %d answer(s)", self.bridge.engine.in_flight)
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        bridge = self.bridge
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await bridge.engine.drain(bridge.settings.shutdown_grace_seconds)
        for adapter in reversed(bridge.adapters):
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s did not stop cleanly", adapter.name)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await bridge.aclose()
        log.info("stopped")
