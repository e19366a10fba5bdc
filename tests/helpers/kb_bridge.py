"""A running bridge whose knowledge base polls Dify every few milliseconds (for the /kb tests)."""

from __future__ import annotations

from pathlib import Path

from bots.app import Bridge, build_adapters
from bots.config import load_settings
from bots.dify import DifyClient
from bots.kb import KnowledgeBase
from bots.server import Server
from tests.fakes.fake_dify import FakeDify


async def start_fast_kb_bridge(env: dict[str, str], dify: FakeDify, tmp_dir: Path | None,
                               port: int = 0) -> tuple[Bridge, Server]:
    """Settings from `env`, a Dify client with the dataset key, a fast-polling KnowledgeBase with its
    own temp folder, then the adapters and the HTTP server on 127.0.0.1:`port`."""
    settings = load_settings(env, env_file=None)
    client = DifyClient(dify.url, dify.app_key, dataset_api_key=dify.dataset_key, backoff=0.01, max_attempts=2)
    bridge = await Bridge.create(settings, dify=client, with_adapters=False)
    bridge.kb = KnowledgeBase(client, bridge.repo, settings, tmp_dir=tmp_dir, poll_initial=0.005, poll_max=0.02)
    bridge.adapters = build_adapters(bridge)
    server = Server(bridge, "127.0.0.1", port)
    await server.start()
    return bridge, server
