"""Neutral types between the knowledge-base pipeline and whoever shows its progress.

A platform gives the pipeline one `ProgressCallback` per file: an async callable taking a
`KbProgress`. It shows `event.text` (or its own rendering) in ONE status message, pacing edits
itself. If the callable has a `location` attribute (a dict: channel, message id…), the pipeline
stores it after every event, so after a restart `resume_unfinished` can rebuild a callback that
edits the same message.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

STATES = ("received", "uploading", "indexing", "completed", "error")


@dataclass(frozen=True, slots=True)
class KbProgress:
    """One step of one upload. `state` is received | uploading | indexing | completed | error.

    `stage` is Dify's indexing_status (waiting, parsing, cleaning, splitting, indexing, paused);
    `sent`/`size` count uploaded bytes; `error` is the one-line reason of a failure.
    """

    name: str
    state: str
    stage: str | None = None
    segments_done: int | None = None
    segments_total: int | None = None
    sent: int | None = None
    size: int | None = None
    error: str | None = None
    upload_id: int | None = None
    document_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "error")

    @property
    def ok(self) -> bool:
        return self.state == "completed"

    @property
    def text(self) -> str:
        """The status line to show (platform-neutral Markdown)."""
        from .format import status_line

        return status_line(self)


ProgressCallback = Callable[[KbProgress], Awaitable[None]]


class StatusMessage(Protocol):
    """What a platform's per-file status message looks like to the pipeline (optional shape)."""

    location: dict[str, Any]

    async def __call__(self, event: KbProgress) -> None: ...


class KbRefused(Exception):
    """The request is refused with a one-line reason for the user (`str(exc)`).

    The pipeline raises it before doing anything (knowledge base not configured, user not in
    KB_WRITERS); an adapter's download may raise it too (e.g. a file host that is not Slack's),
    and the pipeline then ends that file's status with the reason.
    """


Chunks = Callable[[], AsyncIterator[bytes]]
DownloadTo = Callable[[Path], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file to add, as the platform describes it before downloading.

    Give exactly one way to get the bytes: `chunks` (a callable returning an async iterator of
    byte chunks, called only after the checks that need no download), `download_to` (an async
    callable writing the file to the given path), or `path` (a local file, used in place and
    never deleted). `size` and `mime_type` are what the platform announced, if anything.
    """

    name: str
    size: int | None = None
    mime_type: str | None = None
    chunks: Chunks | None = None
    download_to: DownloadTo | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.chunks, self.download_to, self.path) if x is not None]
        if len(given) != 1:
            raise ValueError("FileSource needs exactly one of chunks, download_to or path")

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> FileSource:
        p = Path(path)
        size = p.stat().st_size if p.is_file() else None
        return cls(name=p.name, size=size, path=p)
