"""The app's `inputs`: configured values over the defaults `/parameters` declares."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .dify import DifyClient, DifyError

log = logging.getLogger("bots.inputs")


def form_fields(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten `user_input_form` (a list of `{"text-input": {...}}` objects) into field dicts."""
    fields = []
    for item in parameters.get("user_input_form") or []:
        if isinstance(item, dict):
            for kind, spec in item.items():
                if isinstance(spec, dict) and spec.get("variable"):
                    fields.append({"type": kind, **spec})
    return fields


def merge_inputs(parameters: dict[str, Any], configured: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return (inputs to send, names of required inputs that have no value)."""
    inputs: dict[str, Any] = {}
    missing = []
    for spec in form_fields(parameters):
        default = spec.get("default")
        if default not in (None, ""):
            inputs[spec["variable"]] = default
    inputs.update(configured)
    for spec in form_fields(parameters):
        if spec.get("required") and inputs.get(spec["variable"]) in (None, ""):
            missing.append(spec["variable"])
    return inputs, missing


class InputsResolver:
    """Caches `/parameters` for `ttl` seconds; a failing call falls back to configured values."""

    def __init__(self, client: DifyClient, configured: dict[str, Any], ttl: float = 300.0) -> None:
        self._client = client
        self._configured = dict(configured)
        self._ttl = ttl
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def parameters(self) -> dict[str, Any] | None:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self._ttl:
            return self._cached[1]
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
            try:
                params = await self._client.parameters()
            except DifyError as exc:
                log.warning("could not read the app's /parameters (%s); sending configured inputs only", exc.kind)
                return None
            self._cached = (time.monotonic(), params)
            return params

    async def resolve(self) -> tuple[dict[str, Any], list[str]]:
        params = await self.parameters()
        if params is None:
            return dict(self._configured), []
        return merge_inputs(params, self._configured)
