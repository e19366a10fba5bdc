"""Byte-level wire format of Dify 0.15.3 and 1.12.1, as seen in tests/data/dify-*/ recordings.

- API JSON answers end with "\\n". 0.15: ``json.dumps`` (spaces). 1.12: compact, "/" escaped as "\\/".
- SSE: ``data: {json}\\n\\n`` and ``event: ping\\n\\n``, no [DONE]. 0.15: ``json.dumps`` (ASCII escapes);
  1.12: orjson (compact, raw UTF-8, "/" not escaped).
- Blocking chat answers: ``json.dumps`` without newline in both versions (1.12 adds ``charset=utf-8``).
- Errors: ``{"code", "message", "status"}``; 0.15 reqparse errors are ``{"code", "message", "params"}``;
  1.12 validation errors carry pydantic's text; 1.12 404 messages get flask-restx's "did you mean" help.
"""

from __future__ import annotations

import asyncio
import difflib
import http
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from tests.fakes.fake_dify import FakeDify

HTML_404 = (
    '<!DOCTYPE html><html lang="en-US"><head><meta charSet="utf-8"/><title>404: This page could not be found.'
    "</title></head><body><div><h1>404</h1><h2>This page could not be found.</h2></div></body></html>"
)
HTML_HOME = (
    '<!DOCTYPE html><html lang="en-US"><head><meta charSet="utf-8"/><title>Dify</title></head>'
    '<body><div id="__next">Loading...</div></body></html>'
)
NOT_FOUND_URL = (
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try"
    " again."
)
_RE_RULES = re.compile("(<.*>)")  # flask-restx strips converters this greedily before matching
_V1_RULES = """/ /info /parameters /meta /site /files/upload /files/<uuid:file_id>/preview /audio-to-text
/text-to-audio /completion-messages /completion-messages/<string:task_id>/stop /chat-messages
/chat-messages/<string:task_id>/stop /messages /messages/<uuid:message_id>/feedbacks
/messages/<uuid:message_id>/suggested /app/feedbacks /conversations /conversations/<uuid:c_id>
/conversations/<uuid:c_id>/name /conversations/<uuid:c_id>/variables
/conversations/<uuid:c_id>/variables/<uuid:variable_id> /workflows/run /workflows/run/<string:workflow_run_id>
/workflows/<string:workflow_id>/run /workflows/tasks/<string:task_id>/stop /workflows/logs
/apps/annotation-reply/<string:action> /apps/annotation-reply/<string:action>/status/<uuid:job_id>
/apps/annotations /apps/annotations/<uuid:annotation_id> /end-users/<uuid:end_user_id> /datasets
/datasets/<uuid:dataset_id> /datasets/<uuid:dataset_id>/retrieve /datasets/<uuid:dataset_id>/hit-testing
/datasets/<uuid:dataset_id>/document/create_by_text /datasets/<uuid:dataset_id>/document/create-by-text
/datasets/<uuid:dataset_id>/document/create_by_file /datasets/<uuid:dataset_id>/document/create-by-file
/datasets/<uuid:dataset_id>/documents/<uuid:document_id>/update_by_text
/datasets/<uuid:dataset_id>/documents/<uuid:document_id>/update-by-text
/datasets/<uuid:dataset_id>/documents/<uuid:document_id>/update_by_file
/datasets/<uuid:dataset_id>/documents/<uuid:document_id>/update-by-file
/datasets/<uuid:dataset_id>/documents/<uuid:document_id> /datasets/<uuid:dataset_id>/documents
/datasets/<uuid:dataset_id>/documents/<string:batch>/indexing-status
/datasets/<uuid:dataset_id>/documents/<uuid:document_id>/segments
/datasets/<uuid:dataset_id>/documents/<uuid:document_id>/segments/<uuid:segment_id>
/datasets/<uuid:dataset_id>/documents/status/<string:action> /datasets/<uuid:dataset_id>/metadata
/datasets/<uuid:dataset_id>/metadata/<uuid:metadata_id> /datasets/<uuid:dataset_id>/metadata/built-in
/datasets/<uuid:dataset_id>/metadata/built-in/<string:action> /datasets/<uuid:dataset_id>/documents/metadata
/datasets/tags /datasets/tags/binding /datasets/tags/unbinding /datasets/<uuid:dataset_id>/tags
/workspaces/current/models/model-types/<string:model_type>"""
_WEB_RULES = """/parameters /meta /site /files/upload /audio-to-text /text-to-audio /completion-messages
/completion-messages/<string:task_id>/stop /chat-messages /chat-messages/<string:task_id>/stop /conversations
/conversations/<uuid:c_id> /conversations/<uuid:c_id>/name /conversations/<uuid:c_id>/pin
/conversations/<uuid:c_id>/unpin /messages /messages/<uuid:message_id>/feedbacks
/messages/<uuid:message_id>/more-like-this /messages/<uuid:message_id>/suggested-questions /saved-messages
/saved-messages/<uuid:message_id> /workflows/run /workflows/tasks/<string:task_id>/stop /passport /login
/system-features /remote-files/upload"""
_RULES = {
    _RE_RULES.sub("", rule): rule
    for rule in ["/v1" + r for r in _V1_RULES.split()] + ["/api" + r for r in _WEB_RULES.split()]
}


def help_on_404(path: str, message: str) -> str:
    """flask-restx's ERROR_404_HELP text, computed with difflib over (most of) Dify 1.12's URL rules."""
    matches = difflib.get_close_matches(path, _RULES.keys())
    if not matches:
        return message
    prefix = (message.rstrip(".") + ". ") if message else ""
    return f"{prefix}You have requested this URI [{path}] but did you mean {' or '.join(_RULES[m] for m in matches)} ?"


def reason(status: int) -> str:
    """Werkzeug's upper-case reason phrase ("404 NOT FOUND")."""
    return http.HTTPStatus(status).phrase.upper()


class Wire:
    """Serialises answers the way one Dify version does ("0.15" or "1.12")."""

    def __init__(self, version: str) -> None:
        if version not in ("0.15", "1.12"):
            raise ValueError(f"unknown Dify version {version!r}; use '0.15' or '1.12'")
        self.version = version
        self.v1 = version == "1.12"

    # ---- serialisation -----------------------------------------------------------------

    def api_text(self, obj: Any) -> str:
        if self.v1:
            return json.dumps(obj, separators=(",", ":")).replace("/", "\\/") + "\n"
        return json.dumps(obj) + "\n"

    def sse(self, obj: dict[str, Any]) -> bytes:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False) if self.v1 else json.dumps(obj)
        return f"data: {text}\n\n".encode()

    @staticmethod
    def ping() -> bytes:
        return b"event: ping\n\n"

    def headers(self) -> dict[str, str]:
        hdrs = {"Server": "gunicorn", "Access-Control-Allow-Origin": "*"}
        if self.v1:
            hdrs["Access-Control-Expose-Headers"] = "X-Env, X-Trace-Id, X-Version"
        hdrs["X-Version"] = "1.12.1" if self.v1 else "0.15.3"
        hdrs["X-Env"] = "PRODUCTION"
        return hdrs

    # ---- responses ---------------------------------------------------------------------

    def json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        hdrs = {**self.headers(), **(headers or {})}
        body = self.api_text(obj).encode()
        return web.Response(status=status, reason=reason(status), body=body, content_type="application/json",
                            headers=hdrs)

    def error(self, status: int, code: str, message: str, path: str | None = None, **headers: str) -> web.Response:
        """The {"code","message","status"} envelope; 1.12 404s get the "did you mean" help when `path` is given."""
        if self.v1 and status == 404 and path is not None:
            message = help_on_404(path, message)
        hdrs = dict(headers)
        if self.v1 and status == 401:
            hdrs["WWW-Authenticate"] = 'Bearer realm="api"'
        return self.json({"code": code, "message": message, "status": status}, status, hdrs)

    def reqparse_error(self, message: str, param: str) -> web.Response:
        """0.15 flask-restful reqparse failure (note: no "status" key, a "params" key instead)."""
        return self.json({"code": "invalid_param", "message": message, "params": param}, 400)

    def invalid(self, message: str) -> web.Response:
        return self.error(400, "invalid_param", message)

    def not_found_route(self, path: str) -> web.Response:
        return self.error(404, "not_found", NOT_FOUND_URL, path)

    def method_not_allowed(self) -> web.Response:
        return self.error(405, "method_not_allowed", "The method is not allowed for the requested URL.")

    def blocking(self, obj: dict[str, Any]) -> bytes:
        return json.dumps(obj).encode()

    @property
    def blocking_type(self) -> str:
        return "application/json; charset=utf-8" if self.v1 else "application/json"

    def no_content(self) -> web.Response:
        headers = {**self.headers(), "Content-Type": "application/json"}
        return web.Response(status=204, reason=reason(204), headers=headers)

    def success(self) -> web.Response:
        return self.json({"result": "success"})

    @staticmethod
    def html(status: int, body: str, server: str | None = "nginx") -> web.Response:
        headers = {"Server": server} if server else {}
        return web.Response(status=status, body=body.encode(), content_type="text/html", headers=headers)

    @staticmethod
    def nginx_page(status: int) -> str:
        title = f"{status} {http.HTTPStatus(status).phrase}"
        return (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx/1.27.4</center>\r\n</body>\r\n</html>\r\n"
        )


def validation_message(model: type[BaseModel], data: Any, pydantic_version: str = "2.11") -> str | None:
    """pydantic's ValidationError text for `data` (None when valid), with the docs URL of the server's pydantic."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return re.sub(r"errors\.pydantic\.dev/[\d.]+/", f"errors.pydantic.dev/{pydantic_version}/", str(exc))
    return None


class StreamWriter:
    """Writes a streamed body like gunicorn: headers go out with the first chunk; optional tiny writes."""

    def __init__(self, request: web.Request, response: web.StreamResponse, split: int | None = None) -> None:
        self.request, self.response, self.split = request, response, split
        self.started = False

    async def write(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self.response.prepare(self.request)
        if not self.split or self.split <= 0:
            await self.response.write(data)
            return
        for i in range(0, len(data), self.split):
            await self.response.write(data[i : i + self.split])
            await asyncio.sleep(0)  # let each piece reach the socket (and a same-loop reader) on its own

    async def finish(self) -> web.StreamResponse:
        if not self.started:
            self.started = True
            await self.response.prepare(self.request)
        await self.response.write_eof()
        return self.response

    def abort(self) -> None:
        """Cut the TCP connection without finishing the chunked body; the handler must then raise CancelledError."""
        if self.request.transport is not None:
            self.request.transport.abort()


@dataclass
class Ctx:
    """One routed API request: parsed body parts, route parameters and the version's wire format."""

    fake: FakeDify
    request: web.Request
    wire: Wire
    path: str  # full path, e.g. "/v1/chat-messages"
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    file_count: int = 0
    query: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else {}
