"""The knowledge-base pipeline shared by Slack, Telegram and the CLI.

One file: checks on what the platform announced → dataset options → download to a temporary
file (streamed, size-capped) → content checks → upload from disk → poll indexing (backing off
from 1 s to 5 s, giving up after KB_POLL_TIMEOUT) → ✅ or ❌. Each step is stored in
`kb_uploads` and sent to the file's progress callback; temporary files are removed on every path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from storage import KbUploadRecord, Repository

from .. import messages
from ..config import Settings
from ..dify import (
    DifyBusy,
    DifyClient,
    DifyDatasetNotFound,
    DifyError,
    DifyNotFound,
    DifyServerError,
    DifyTransportError,
)
from .access import config_problem, writer_refusal
from .format import KbDocument, one_line, parse_text_document, reason_for
from .progress import FileSource, KbRefused, ProgressCallback
from .run import Run
from .staging import staged
from .validate import check_before_download, check_file, clean_name, max_bytes, mime_type, too_large

log = logging.getLogger("bots.kb")

ProgressFactory = Callable[[KbUploadRecord], ProgressCallback | None]
_TRANSIENT = (DifyTransportError, DifyServerError, DifyBusy)


class KnowledgeBase:
    """Adds files and texts to a Dify knowledge base and follows their indexing.

    Args:
        client: a DifyClient built with the dataset key.
        repo: where every upload's steps are recorded (`kb_uploads`).
        settings: KB_* settings, DIFY_DATASET_ID, KB_WRITERS.
        tmp_dir: where downloads are staged (default: the system temp dir).
        sleep, clock: injectable for tests (poll back-off and the KB_POLL_TIMEOUT deadline).
    """

    def __init__(
        self,
        client: DifyClient,
        repo: Repository,
        settings: Settings,
        *,
        tmp_dir: str | os.PathLike[str] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_initial: float = 1.0,
        poll_max: float = 5.0,
        poll_factor: float = 1.5,
    ) -> None:
        self.client, self.repo, self.settings = client, repo, settings
        self.tmp_dir = Path(tmp_dir) if tmp_dir is not None else None
        self._sleep, self._clock = sleep, clock
        self._poll = (poll_initial, poll_max, poll_factor)
        self._techniques: dict[str, str] = {}

    # ------------------------------------------------------------------ entry points

    def refusal_for(self, platform: str, user_id: str, dataset_id: str | None = None) -> str | None:
        """Why this user cannot add right now (not set up, not in KB_WRITERS), else None."""
        if config_problem(self.settings, dataset_id):
            return messages.KB_NOT_CONFIGURED
        return writer_refusal(self.settings, platform, user_id)

    async def add_file(
        self, source: FileSource, *, platform: str, user_id: str, scope: str,
        progress: ProgressCallback, dataset_id: str | None = None,
    ) -> KbUploadRecord:
        """Add one file; returns its final record (state completed or error).

        Raises KbRefused (before anything is recorded) when the user may not add or the
        knowledge base is not set up. Every other failure ends as a record in state error,
        with its one-line reason also sent to `progress`.
        """
        ds = self._admit(platform, user_id, dataset_id)
        run = await Run.open(self, platform, user_id, scope, ds, clean_name(source.name), "file", source.size, progress)
        return await self._guard(run, self._add_file(run, source))

    async def add_files(
        self, sources: Sequence[FileSource], *, platform: str, user_id: str, scope: str,
        progress_for: Callable[[FileSource], ProgressCallback], dataset_id: str | None = None,
    ) -> list[KbUploadRecord]:
        """Several files from one message, one after the other, each with its own status."""
        self._admit(platform, user_id, dataset_id)
        return [
            await self.add_file(src, platform=platform, user_id=user_id, scope=scope,
                                progress=progress_for(src), dataset_id=dataset_id)
            for src in sources
        ]

    async def add_text(
        self, title: str | None, text: str, *, platform: str, user_id: str, scope: str,
        progress: ProgressCallback, dataset_id: str | None = None,
    ) -> KbUploadRecord:
        """Add a text document. With `title=None` the title comes from `Title: text` or the first line."""
        ds = self._admit(platform, user_id, dataset_id)
        if title is None:
            title, text = parse_text_document(text)
        if not text.strip():
            raise KbRefused(messages.KB_NO_TEXT)
        name = clean_name(title or "", fallback="Untitled")
        size = len(text.encode())
        run = await Run.open(self, platform, user_id, scope, ds, name, "text", size, progress)
        return await self._guard(run, self._add_text(run, text, size))

    async def resume_unfinished(self, platform: str, progress_factory: ProgressFactory) -> list[KbUploadRecord]:
        """After a restart: keep polling uploads left `indexing`, end the others as interrupted.

        `progress_factory(record)` rebuilds a callback from `record.location` (None: no display).
        Long-running (it polls until each upload ends): adapters start it as a task.
        """
        records = await self.repo.kb_uploads_unfinished(platform)
        if records:
            log.info("resuming %d unfinished knowledge-base uploads on %s", len(records), platform)
        return list(await asyncio.gather(*(self._resume(rec, progress_factory) for rec in records)))

    async def list_documents(self, dataset_id: str | None = None, *, limit: int = 20) -> tuple[list[KbDocument], int]:
        """The knowledge base's newest documents and the total count (for `/kb list`)."""
        ds = dataset_id or self.settings.dify_dataset_id or ""
        answer = await self.client.list_documents(ds, limit=limit)
        docs = [KbDocument.from_dify(d) for d in answer.get("data") or []]
        return docs, int(answer.get("total") or len(docs))

    async def recent_uploads(self, platform: str, user_id: str, limit: int = 10) -> list[KbUploadRecord]:
        """The user's latest uploads, newest first (for `/kb status`; format with format_uploads)."""
        return await self.repo.kb_uploads_for_user(platform, user_id, limit)

    # ------------------------------------------------------------------ steps

    def _admit(self, platform: str, user_id: str, dataset_id: str | None) -> str:
        refusal = self.refusal_for(platform, user_id, dataset_id)
        if refusal:
            raise KbRefused(refusal)
        return dataset_id or self.settings.dify_dataset_id or ""

    async def _guard(self, run: Run, steps: Awaitable[KbUploadRecord]) -> KbUploadRecord:
        try:
            return await steps
        except KbRefused as exc:
            return await run.fail(str(exc))
        except DifyError as exc:
            log.warning("knowledge-base upload %s failed: %s (%s)", run.upload_id, type(exc).__name__, exc)
            return await run.fail(reason_for(exc, run.dataset_id))
        except Exception:
            log.exception("knowledge-base upload %s failed unexpectedly", run.upload_id)
            return await run.fail(messages.UNEXPECTED.rstrip("."))

    async def _add_file(self, run: Run, source: FileSource) -> KbUploadRecord:
        refusal = check_before_download(run.name, source.size, self.settings)
        if refusal:
            return await run.fail(refusal.reason)
        data = await self._options(run.dataset_id)
        async with staged(source, run.name, self.settings, self.tmp_dir) as path:
            refusal = await asyncio.to_thread(check_file, path, run.name, self.settings)
            if refusal:
                return await run.fail(refusal.reason)
            size = (await asyncio.to_thread(path.stat)).st_size
            await run.step("uploading", sent=0, size=size, db={"size": size})
            created = await self.client.create_document_by_file(
                run.dataset_id, path, run.name, data=data, mime_type=mime_type(run.name), progress=run.sent
            )
        return await self._indexing(run, created)

    async def _add_text(self, run: Run, text: str, size: int) -> KbUploadRecord:
        if size > max_bytes(self.settings):
            return await run.fail(too_large(run.name, size, self.settings).reason)
        data = await self._options(run.dataset_id)
        await run.step("uploading", sent=0, size=size)
        created = await self.client.create_document_by_text(run.dataset_id, run.name, text, data=data)
        return await self._indexing(run, created)

    async def _options(self, dataset_id: str) -> dict[str, Any]:
        """The `data` sent with a document: process_rule always, indexing_technique, doc_form/language."""
        s = self.settings
        data: dict[str, Any] = {
            "indexing_technique": await self._technique(dataset_id),
            "process_rule": s.kb_process_rule or {"mode": "automatic"},
        }
        if s.kb_doc_form:
            data["doc_form"] = s.kb_doc_form
        if s.kb_doc_language:
            data["doc_language"] = s.kb_doc_language
        return data

    async def _technique(self, dataset_id: str) -> str:
        """The dataset's own indexing_technique (also proves it exists), else the configured one."""
        if dataset_id not in self._techniques:
            found = (await self.client.find_dataset(dataset_id)).get("indexing_technique")
            if found:
                self._techniques[dataset_id] = found
            else:
                return self.settings.kb_indexing_technique or "high_quality"
        return self._techniques[dataset_id]

    async def _indexing(self, run: Run, created: dict[str, Any]) -> KbUploadRecord:
        doc, batch = created.get("document") or {}, str(created.get("batch") or "")
        run.document_id = doc.get("id")
        stage = doc.get("indexing_status")
        await run.step("indexing", stage=stage, db={"document_id": run.document_id, "batch": batch, "stage": stage})
        return await self._follow(run, batch)

    async def _follow(self, run: Run, batch: str) -> KbUploadRecord:
        """Poll indexing-status until completed or error, backing off; give up at the deadline."""
        delay, most, factor = self._poll
        timeout = self.settings.kb_poll_timeout
        deadline, last = self._clock() + timeout, None
        while True:
            item = await self._status(run, batch)
            if item is not None:
                status = item.get("indexing_status")
                done, total = item.get("completed_segments"), item.get("total_segments") or None
                if status == "completed":
                    return await run.complete(total or done or 0)
                if status == "error":
                    error = one_line(item.get("error") or "no reason given")
                    return await run.fail(messages.KB_INDEX_FAILED.format(error=error))
                if (status, done, total) != last:
                    last = (status, done, total)
                    await run.step("indexing", stage=status, done=done if total else None, total=total)
            now = self._clock()
            if now >= deadline:
                return await run.fail(messages.KB_POLL_TIMEOUT.format(duration=_duration(timeout)))
            await self._sleep(min(delay, deadline - now))
            delay = min(delay * factor, most)

    async def _status(self, run: Run, batch: str) -> dict[str, Any] | None:
        try:
            items = await self.client.indexing_status(run.dataset_id, batch)
        except DifyDatasetNotFound:
            raise
        except DifyNotFound as exc:
            raise KbRefused(messages.KB_LOST) from exc
        except _TRANSIENT as exc:
            log.warning("indexing status of upload %s unavailable for now: %s", run.upload_id, type(exc).__name__)
            return None
        return next((i for i in items if i.get("id") == run.document_id), items[0] if items else None)

    async def _resume(self, rec: KbUploadRecord, factory: ProgressFactory) -> KbUploadRecord:
        try:
            progress = factory(rec)
        except Exception:
            log.exception("cannot rebuild the status display of upload %s", rec.id)
            progress = None
        run = Run.resume(self, rec, progress)
        if rec.state == "indexing" and rec.batch:
            return await self._guard(run, self._follow(run, rec.batch))
        return await run.fail(messages.KB_INTERRUPTED)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
