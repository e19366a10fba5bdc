"""The Dify Service API client: one pooled `httpx.AsyncClient`, typed events, typed errors.

Layers, each with one job:
    stream_chat   → reads the open stream, turns SSE frames into typed events, maps in-stream errors
    _open_stream  → retry policy *before the first byte* (connection errors, 5xx, too_many_requests)
    _send         → one HTTP exchange; maps status + body onto DifyError types
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ._errors import (
    DifyBusy,
    DifyError,
    DifyServerError,
    DifyTimeout,
    DifyTransportError,
    DifyWorkflowFailed,
    DifyWrongBaseURL,
    error_from_envelope,
)
from ._events import (
    AgentMessageEvent,
    ErrorEvent,
    MessageEvent,
    MessageReplaceEvent,
    StreamEvent,
    WorkflowFinishedEvent,
    parse_event,
)
from ._knowledge import KnowledgeMixin

log = logging.getLogger("bots.dify")

DEFAULT_BASE_URL = "https://api.dify.ai/v1"
# Dify stops a generation after APP_MAX_EXECUTION_TIME (default 1200 s); never cut earlier.
DEFAULT_TOTAL_TIMEOUT = 1260.0


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (DifyTransportError, DifyServerError, DifyBusy))


class DifyClient(KnowledgeMixin):
    """Async client for one Dify app (and, optionally, the workspace's knowledge API).

    Pass `http` to share a pool, or `transport` to route requests elsewhere in tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        dataset_api_key: str | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_connections: int = 1000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._dataset_api_key = dataset_api_key
        self._total_timeout = total_timeout
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=30.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=100),
            follow_redirects=False,
            headers={"User-Agent": "dify-bridge"},
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> DifyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ plumbing

    def _headers(self, key: str) -> dict[str, str]:
        token = self._dataset_api_key if key == "dataset" else self._api_key
        return {"Authorization": f"Bearer {token or ''}"}

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DifyError) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_backoff)
        delay = self._backoff * (2 ** (state.attempt_number - 1))
        return min(self._max_backoff, delay) * (0.5 + random.random() / 2)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )

    async def _error_for(self, response: httpx.Response, endpoint: str) -> DifyError:
        """Map a non-success answer onto its typed error (reads and closes the body)."""
        body = await response.aread()
        await response.aclose()
        ctype = response.headers.get("Content-Type", "")
        if response.is_redirect:
            where = response.headers.get("Location", "")
            return DifyWrongBaseURL(
                f"Dify answered a redirect to {where!r}; set DIFY_API_URL to the final URL ending in /v1",
                status=response.status_code,
            )
        payload: Any = None
        if "json" in ctype:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        if not isinstance(payload, dict) or ("code" not in payload and "message" not in payload):
            if response.status_code >= 500 and "html" not in ctype:
                return DifyServerError(
                    f"Dify answered HTTP {response.status_code}", status=response.status_code
                )
            return DifyWrongBaseURL(_wrong_base_url_text(self.base_url, response), status=response.status_code)
        return error_from_envelope(
            response.status_code, payload, endpoint=endpoint, retry_after=_retry_after(response)
        )

    async def _send(
        self,
        method: str,
        endpoint: str,
        *,
        key: str = "app",
        stream: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One HTTP exchange. Returns a successful response (open if `stream`), else raises."""
        url = f"{self.base_url}/{endpoint}"
        request = self._http.build_request(method, url, headers={**self._headers(key), **(headers or {})}, **kwargs)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise DifyTimeout(f"Dify did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise DifyTransportError(f"cannot reach Dify at {self.base_url}: {type(exc).__name__}") from exc
        if not response.is_success:
            raise await self._error_for(response, endpoint)
        if not stream:
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise DifyTransportError(f"Dify answer was cut: {type(exc).__name__}") from exc
            finally:
                await response.aclose()
        return response

    async def _json(
        self, method: str, endpoint: str, *, key: str = "app", retry: bool = False, **kwargs: Any
    ) -> Any:
        async def once() -> Any:
            response = await self._send(method, endpoint, key=key, **kwargs)
            if response.status_code == 204 or not response.content:
                return {}
            try:
                return response.json()
            except ValueError as exc:
                raise DifyWrongBaseURL(_wrong_base_url_text(self.base_url, response)) from exc

        if not retry:
            return await once()
        async for attempt in self._retrying():
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ chat

    async def _open_stream(self, body: dict[str, Any]) -> httpx.Response:
        async for attempt in self._retrying():
            with attempt:
                response = await self._send("POST", "chat-messages", json=body, stream=True)
                ctype = response.headers.get("Content-Type", "")
                if "text/event-stream" not in ctype:
                    await response.aread()
                    await response.aclose()
                    raise DifyWrongBaseURL(_wrong_base_url_text(self.base_url, response))
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream_chat(
        self,
        *,
        query: str,
        user: str,
        conversation_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        files: list[dict[str, Any]] | None = None,
        auto_generate_name: bool = True,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one answer as typed events (pings and empty frames skipped).

        Raises a `DifyError` before the first event (after retries) or during the stream
        (`mid_stream=True`, with `partial_answer`); never retries once the stream has started.
        Close the iterator (`contextlib.aclosing`) to abandon an answer early.
        """
        body = _chat_body(query, user, conversation_id, inputs, files, "streaming")
        body["auto_generate_name"] = auto_generate_name
        response = await self._open_stream(body)
        deadline = time.monotonic() + self._total_timeout
        partial = ""
        try:
            async for sse in EventSource(response).aiter_sse():
                if sse.event == "ping" or not sse.data:
                    continue
                if time.monotonic() > deadline:
                    raise DifyTimeout("the answer took longer than Dify's own limit", partial_answer=partial, mid_stream=True)
                try:
                    obj = json.loads(sse.data)
                except ValueError:
                    log.warning("skipping a malformed Dify stream frame")
                    continue
                if not isinstance(obj, dict):
                    continue
                event = parse_event(obj)
                if isinstance(event, (MessageEvent, AgentMessageEvent)):
                    partial += event.answer
                elif isinstance(event, MessageReplaceEvent):
                    partial = event.answer
                elif isinstance(event, ErrorEvent):
                    raise error_from_envelope(
                        event.status, obj, endpoint="chat-messages/stream", partial_answer=partial, mid_stream=True
                    )
                elif isinstance(event, WorkflowFinishedEvent) and event.status == "failed":
                    raise DifyWorkflowFailed(
                        event.error or "the chatflow failed",
                        code="workflow_failed",
                        partial_answer=partial,
                        mid_stream=True,
                    )
                yield event
        except httpx.TimeoutException as exc:
            raise DifyTimeout(
                "Dify went silent for too long", partial_answer=partial, mid_stream=True
            ) from exc
        except (httpx.TransportError, SSEError) as exc:
            raise DifyTransportError(
                f"the Dify stream broke: {type(exc).__name__}", partial_answer=partial, mid_stream=True
            ) from exc
        finally:
            await response.aclose()

    async def chat_blocking(
        self,
        *,
        query: str,
        user: str,
        conversation_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        body = _chat_body(query, user, conversation_id, inputs, files, "blocking")
        return await self._json("POST", "chat-messages", json=body, retry=True)

    async def stop(self, task_id: str, user: str) -> dict[str, Any]:
        return await self._json("POST", f"chat-messages/{task_id}/stop", json={"user": user})

    # ------------------------------------------------------------------ app metadata

    async def parameters(self) -> dict[str, Any]:
        return await self._json("GET", "parameters", retry=True)

    async def info(self) -> dict[str, Any]:
        return await self._json("GET", "info", retry=True)

    async def meta(self) -> dict[str, Any]:
        return await self._json("GET", "meta", retry=True)

    # ------------------------------------------------------------------ files, messages, conversations

    async def upload_file(
        self, *, user: str, filename: str, content: Any, mime_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        return await self._json(
            "POST", "files/upload", data={"user": user}, files={"file": (filename, content, mime_type)}
        )

    async def feedback(
        self, message_id: str, *, user: str, rating: str | None, content: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"rating": rating, "user": user}
        if content:
            body["content"] = content
        return await self._json("POST", f"messages/{message_id}/feedbacks", json=body)

    async def suggested(self, message_id: str, *, user: str) -> list[str]:
        data = await self._json("GET", f"messages/{message_id}/suggested", params={"user": user}, retry=True)
        return list(data.get("data") or [])

    async def messages(
        self, conversation_id: str, *, user: str, first_id: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"conversation_id": conversation_id, "user": user, "limit": limit}
        if first_id:
            params["first_id"] = first_id
        return await self._json("GET", "messages", params=params, retry=True)

    async def conversations(self, *, user: str, last_id: str | None = None, limit: int = 20) -> dict[str, Any]:
        params: dict[str, Any] = {"user": user, "limit": limit}
        if last_id:
            params["last_id"] = last_id
        return await self._json("GET", "conversations", params=params, retry=True)

    async def rename_conversation(
        self, conversation_id: str, *, user: str, name: str | None = None, auto_generate: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"user": user, "auto_generate": auto_generate}
        if name is not None:
            body["name"] = name
        return await self._json("POST", f"conversations/{conversation_id}/name", json=body)

    async def delete_conversation(self, conversation_id: str, *, user: str) -> None:
        """Delete; Dify 0.15 answers 200 `{"result":"success"}`, 1.x answers 204."""
        await self._json("DELETE", f"conversations/{conversation_id}", json={"user": user})


def _chat_body(
    query: str,
    user: str,
    conversation_id: str | None,
    inputs: dict[str, Any] | None,
    files: list[dict[str, Any]] | None,
    mode: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "query": query,
        "inputs": inputs or {},
        "response_mode": mode,
        "user": user,
        "conversation_id": conversation_id or "",
    }
    if files:
        body["files"] = files
    return body


def _wrong_base_url_text(base_url: str, response: httpx.Response) -> str:
    ctype = response.headers.get("Content-Type", "") or "no content type"
    if "html" in ctype:
        return (
            f"{base_url} answered an HTML page (HTTP {response.status_code}), so it is the web UI, "
            "not the Service API; use the API base ending in /v1 (e.g. https://your-dify-host/v1)"
        )
    return (
        f"{base_url} did not answer like Dify's Service API (HTTP {response.status_code}, {ctype}); "
        "check DIFY_API_URL (it should end in /v1)"
    )
