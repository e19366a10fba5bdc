"""One upload in progress: its `kb_uploads` row and its progress callback, kept in step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .progress import KbProgress, ProgressCallback

if TYPE_CHECKING:
    from storage import KbUploadRecord

    from .ingest import KnowledgeBase

log = logging.getLogger("bots.kb")


def _location(progress: ProgressCallback | None) -> dict[str, Any] | None:
    loc = getattr(progress, "location", None)
    return dict(loc) if isinstance(loc, dict) else None


class Run:
    """Records each step, then shows it; a failing display never stops the upload."""

    def __init__(
        self, kb: KnowledgeBase, upload_id: int, name: str, dataset_id: str,
        progress: ProgressCallback | None, location: dict[str, Any], *,
        document_id: str | None = None, size: int | None = None,
    ) -> None:
        self.repo = kb.repo
        self.upload_id, self.name, self.dataset_id = upload_id, name, dataset_id
        self.progress, self.location = progress, location
        self.document_id, self.size = document_id, size
        self._shown: KbProgress | None = None

    @classmethod
    async def open(
        cls, kb: KnowledgeBase, platform: str, user_id: str, scope: str, dataset_id: str,
        name: str, source: str, size: int | None, progress: ProgressCallback | None,
    ) -> Run:
        location = _location(progress) or {}
        upload_id = await kb.repo.create_kb_upload(
            platform=platform, user_id=user_id, scope=scope, dataset_id=dataset_id,
            file_name=name, source=source, size=size, location=location,
        )
        run = cls(kb, upload_id, name, dataset_id, progress, location, size=size)
        await run.show(run.event("received", size=size))
        return run

    @classmethod
    def resume(cls, kb: KnowledgeBase, rec: KbUploadRecord, progress: ProgressCallback | None) -> Run:
        return cls(kb, rec.id, rec.file_name, rec.dataset_id, progress, dict(rec.location),
                   document_id=rec.document_id, size=rec.size)

    def event(self, state: str, **fields: Any) -> KbProgress:
        return KbProgress(name=self.name, state=state, upload_id=self.upload_id,
                          document_id=self.document_id, **fields)

    async def step(
        self, state: str, *, stage: str | None = None, done: int | None = None, total: int | None = None,
        sent: int | None = None, size: int | None = None, db: dict[str, Any] | None = None,
    ) -> None:
        changes: dict[str, Any] = {"state": state, **(db or {})}
        if stage is not None:
            changes["stage"] = stage
        if total is not None:
            changes.update(segments_done=done, segments_total=total)
        await self.repo.update_kb_upload(self.upload_id, **changes)
        await self.show(self.event(state, stage=stage, segments_done=done, segments_total=total,
                                   sent=sent, size=size))

    async def sent(self, sent: int, total: int) -> None:
        """Upload byte progress (shown, not recorded)."""
        await self.show(self.event("uploading", sent=sent, size=total))

    async def complete(self, segments: int) -> KbUploadRecord:
        await self.repo.update_kb_upload(
            self.upload_id, state="completed", stage="completed", segments_done=segments,
            segments_total=segments, error=None,
        )
        log.info("knowledge-base upload %s indexed (%d segments)", self.upload_id, segments)
        await self.show(self.event("completed", stage="completed", segments_done=segments, segments_total=segments))
        return await self.record()

    async def fail(self, reason: str) -> KbUploadRecord:
        await self.repo.update_kb_upload(self.upload_id, state="error", error=reason)
        log.info("knowledge-base upload %s ended in error: %s", self.upload_id, reason)
        await self.show(self.event("error", error=reason))
        return await self.record()

    async def record(self) -> KbUploadRecord:
        rec = await self.repo.get_kb_upload(self.upload_id)
        assert rec is not None
        return rec

    async def show(self, event: KbProgress) -> None:
        if self.progress is None or event == self._shown:
            return
        self._shown = event
        try:
            await self.progress(event)
        except Exception:  # noqa: BLE001 - the platform's display must not break the upload
            log.warning("status display of upload %s failed", self.upload_id, exc_info=True)
        location = _location(self.progress)
        if location is not None and location != self.location:
            self.location = location
            await self.repo.update_kb_upload(self.upload_id, location=location)
