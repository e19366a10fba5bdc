"""Replay real Dify HTTP recordings (tests/data/dify-*/NN-*.txt) byte for byte over loopback."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

DATA = Path(__file__).resolve().parent.parent / "data"
VERSIONS = {"0.15": DATA / "dify-0.15.3", "1.12": DATA / "dify-1.12.1"}
_SKIP_HEADERS = {"content-length", "transfer-encoding", "connection", "date", "server"}


@dataclass
class Recording:
    name: str
    method: str
    path: str
    request_json: dict | None
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.headers if k.lower() == "content-type"), "")

    def events(self) -> list[dict]:
        out = []
        for line in self.body.decode().split("\n"):
            if line.startswith("data:"):
                out.append(json.loads(line[5:]))
        return out


def load(version: str, number: str) -> Recording:
    path = next(VERSIONS[version].glob(f"{number}-*.txt"))
    text = path.read_bytes()
    head, _, rest = text.partition(b"### RESPONSE")
    request_lines = head.decode().splitlines()
    method, url = request_lines[1].split(" ", 1)
    request_json = None
    for i, line in enumerate(request_lines):
        if line.strip() == "curl-arg: -d" and i + 1 < len(request_lines):
            request_json = json.loads(request_lines[i + 1].split("curl-arg: ", 1)[1])
    raw = rest.split(b"\n", 1)[1]
    header_block, _, body = raw.partition(b"\r\n\r\n")  # raw HTTP: headers end in CRLF CRLF
    lines = header_block.decode().splitlines()
    status = int(lines[0].split()[1])
    headers = [tuple(h.split(": ", 1)) for h in lines[1:] if ": " in h]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
    if status == 204:
        body = b""
    elif length is not None:
        body = body[:length]  # the recording file adds a newline after the body
    return Recording(path.name, method, url.split("/v1", 1)[1], request_json, status, headers, body)  # type: ignore[arg-type]


class ReplayServer:
    """Answers every request with `self.recording`, writing the body in small chunks."""

    def __init__(self, chunk: int = 7) -> None:
        self.recording: Recording | None = None
        self.chunk = chunk
        self.requests: list[tuple[str, str, dict | None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path, json.loads(body) if body[:1] == b"{" else None))
        rec = self.recording
        assert rec is not None, "set ReplayServer.recording first"
        headers = [(k, v) for k, v in rec.headers if k.lower() not in _SKIP_HEADERS]
        if not rec.body:  # e.g. 204 No Content
            return web.Response(status=rec.status, headers=[(k, v) for k, v in headers if k.lower() != "content-type"])
        response = web.StreamResponse(status=rec.status)
        for key, value in headers:
            response.headers.add(key, value)
        await response.prepare(request)
        try:
            for i in range(0, len(rec.body), self.chunk):
                await response.write(rec.body[i : i + self.chunk])
                await asyncio.sleep(0)
            await response.write_eof()
        except ConnectionResetError:  # the client stopped reading (an abandoned stream)
            pass
        return response

    async def __aenter__(self) -> ReplayServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
