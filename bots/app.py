"""Composition root: settings + overrides in, a wired `Bridge` out. No module-level singletons."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from storage import Repository

from .config import Settings
from .dify import DifyClient
from .engine import DifyApp, Engine
from .kb import KnowledgeBase
from .metrics import Metrics

log = logging.getLogger("bots.app")


class Adapter(Protocol):
    """A chat platform plugged into the bridge.

    An adapter may also have an `is_ready` property (False while it cannot take events yet,
    e.g. before its webhook is set); `/readyz` reports it.
    """

    name: str

    def routes(self) -> list[web.RouteDef]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def make_dify_client(settings: Settings, **overrides: Any) -> DifyClient:
    options: dict[str, Any] = {
        "dataset_api_key": (
            settings.dify_dataset_api_key.get_secret_value() if settings.dify_dataset_api_key else None
        ),
        "connect_timeout": settings.dify_connect_timeout,
        "read_timeout": settings.dify_read_timeout,
        "max_attempts": settings.dify_max_attempts,
    }
    options.update(overrides)
    key = settings.dify_api_key.get_secret_value() if settings.dify_api_key else ""
    return DifyClient(settings.dify_api_url, key, **options)


@dataclass
class Bridge:
    settings: Settings
    repo: Repository
    dify: DifyClient
    engine: Engine
    metrics: Metrics
    kb: KnowledgeBase
    adapters: list[Adapter] = field(default_factory=list)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        repo: Repository | None = None,
        dify: DifyClient | None = None,
        with_adapters: bool = True,
    ) -> Bridge:
        repo = repo or await Repository.open(settings.database_url)
        dify = dify or make_dify_client(settings)
        metrics = Metrics()
        engine = Engine(
            repo=repo,
            apps={"default": DifyApp("default", dify, dict(settings.dify_inputs))},
            metrics=metrics,
        )
        kb = KnowledgeBase(dify, repo, settings)  # the same client carries the dataset key
        bridge = cls(settings, repo, dify, engine, metrics, kb)
        if with_adapters:
            bridge.adapters = build_adapters(bridge)
        return bridge

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.dify.aclose()
        await self.repo.close()


def build_adapters(bridge: Bridge) -> list[Adapter]:
    """Every adapter the settings enable (imported lazily so the core stays platform-free)."""
    adapters: list[Adapter] = []
    settings = bridge.settings
    if settings.slack_enabled:
        from adapters.slack import SlackAdapter

        adapters.append(SlackAdapter.from_settings(bridge))
    if settings.telegram_enabled:
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter.from_settings(bridge))
    return adapters
