"""Downloads staged on disk: a platform's bytes stream into a temporary file, removed on every path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .. import messages
from ..config import Settings
from .progress import FileSource, KbRefused
from .validate import max_bytes, too_large

log = logging.getLogger("bots.kb")


@contextlib.asynccontextmanager
async def staged(source: FileSource, name: str, settings: Settings, tmp_dir: Path | None) -> AsyncIterator[Path]:
    """The file on disk for the duration of the block.

    A local `path` is used in place (never deleted). Otherwise the bytes go to a temporary file
    in `tmp_dir` (chunk by chunk, cut off past KB_MAX_FILE_MB), deleted when the block ends,
    whatever happens. A failed download raises KbRefused with the download-failed line (or the
    adapter's own KbRefused reason).
    """
    if source.path is not None:
        yield source.path
        return
    fd, tmp = tempfile.mkstemp(prefix="kb-", suffix=Path(name).suffix[:16], dir=tmp_dir)
    path = Path(tmp)
    try:
        await _download(source, fd, path, name, settings)
        yield path
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def _download(source: FileSource, fd: int, path: Path, name: str, settings: Settings) -> None:
    try:
        if source.chunks is not None:
            with os.fdopen(fd, "wb") as fh:
                await _write_chunks(source, fh, name, settings)
        else:
            os.close(fd)
            assert source.download_to is not None
            await source.download_to(path)
    except (KbRefused, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.warning("knowledge-base download of %r failed: %s", name, type(exc).__name__)
        raise KbRefused(messages.KB_DOWNLOAD_FAILED) from exc


async def _write_chunks(source: FileSource, fh: Any, name: str, settings: Settings) -> None:
    assert source.chunks is not None
    limit, written = max_bytes(settings), 0
    iterator = source.chunks()
    closing = contextlib.aclosing(iterator) if hasattr(iterator, "aclose") else contextlib.nullcontext()
    async with closing:
        async for chunk in iterator:
            written += len(chunk)
            if written > limit:
                raise KbRefused(too_large(name, written, settings).reason)
            await asyncio.to_thread(fh.write, chunk)
