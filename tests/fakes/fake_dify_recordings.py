"""Read the real Dify HTTP recordings in tests/data/dify-0.15.3 and tests/data/dify-1.12.1.

Each file holds the request (method, URL, curl arguments) and the raw response (status line, CRLF headers,
body; the recorder appended one "\\n"). Useful for tests of SSE parsing and for checking the fake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DATA = Path(__file__).resolve().parent.parent / "data"
DIRS = {"0.15": DATA / "dify-0.15.3", "1.12": DATA / "dify-1.12.1"}


@dataclass
class Recording:
    name: str
    method: str
    path: str  # relative to /v1, with query string
    headers: dict[str, str]
    data: str | None  # curl -d body
    form: list[str] = field(default_factory=list)  # curl -F arguments
    status: int = 0
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_json(self) -> Any:
        return json.loads(self.data) if self.data else None

    def events(self) -> list[dict[str, Any]]:
        """SSE events of a stream body; an `event: ping` block becomes {"event": "ping"}."""
        out: list[dict[str, Any]] = []
        for block in self.body.decode().split("\n\n"):
            block = block.strip("\n")
            if block.startswith("data: "):
                out.append(json.loads(block[6:]))
            elif block == "event: ping":
                out.append({"event": "ping"})
        return out


def load_recording(version: str, number: int) -> Recording:
    """The recording whose file name starts with the two-digit `number`."""
    (path,) = DIRS[version].glob(f"{number:02d}-*.txt")
    raw = path.read_bytes()
    request_part, _, response_part = raw.partition(b"### RESPONSE")
    lines = request_part.decode().splitlines()
    method, url = lines[1].split(" ", 1)
    args = [line.split("curl-arg: ", 1)[1] for line in lines[2:] if "curl-arg: " in line]
    rec = Recording(name=path.name, method=method, path=_relative(url), headers={}, data=None)
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "-H":
            key, _, val = value.partition(": ")
            rec.headers[key] = val
        elif flag == "-d":
            rec.data = value
        elif flag == "-F":
            rec.form.append(value)
    response = response_part.split(b"\n", 1)[1]
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    rec.status = int(status_line.split()[1])
    rec.reason = status_line.split(" ", 2)[2]
    rec.response_headers = dict(line.split(": ", 1) for line in header_lines)
    rec.body = body[:-1] if body.endswith(b"\n") else body
    return rec


def _relative(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path[3:] if parts.path.startswith("/v1") else parts.path
    return path + (f"?{parts.query}" if parts.query else "")
