"""Knowledge (dataset) API methods of `DifyClient`, using the dataset key.

Paths: the underscore create routes (`document/create_by_file`, `document/create_by_text`) are what
the real 0.15.3 and 1.12.1 servers were recorded answering (the 1.12.1 404 help lists both forms,
older servers only had the underscore one), so they go first; a 404 that is not "dataset not found"
(a route missing on some future server) switches this client to the hyphen form for good.

File uploads stream from disk: the multipart body is produced chunk by chunk (file reads in a
worker thread), so a 15 MB document never sits whole in memory, and byte progress is reported.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from ._errors import (
    DifyAPIError,
    DifyDatasetNotFound,
    DifyNotFound,
    DifyWrongBaseURL,
)

UploadProgress = Callable[[int, int], Awaitable[None]]  # (bytes sent, bytes total)
CHUNK = 256 * 1024
_ESCAPES = {'"': "%22", "\\": "\\\\", **{chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}}


def _form_param(value: str) -> str:
    """A quoted multipart parameter value, escaped the way browsers (and httpx) do."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def _remaining(fileobj: BinaryIO) -> int:
    """Bytes left to read from the file's current position."""
    here = fileobj.tell()
    try:
        return os.fstat(fileobj.fileno()).st_size - here
    except (AttributeError, OSError, io.UnsupportedOperation):
        end = fileobj.seek(0, io.SEEK_END)
        fileobj.seek(here)
        return end - here


class _MultipartFile:
    """The `data` (JSON, text/plain) and `file` parts of create_by_file, streamed from an open file."""

    def __init__(self, data: dict[str, Any], fileobj: BinaryIO, filename: str, mime_type: str) -> None:
        self.boundary = secrets.token_hex(16)
        b = self.boundary
        self.head = (
            f'--{b}\r\nContent-Disposition: form-data; name="data"\r\nContent-Type: text/plain\r\n\r\n'
            f"{json.dumps(data, ensure_ascii=False)}\r\n"
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{_form_param(filename)}"\r\n'
            f"Content-Type: {mime_type}\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{b}--\r\n".encode()
        self.fileobj = fileobj
        self.file_size = _remaining(fileobj)
        self.length = len(self.head) + self.file_size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def chunks(self, progress: UploadProgress | None) -> AsyncIterator[bytes]:
        yield self.head
        sent = 0
        while chunk := await asyncio.to_thread(self.fileobj.read, CHUNK):
            sent += len(chunk)
            yield chunk
            if progress is not None:
                await progress(sent, self.file_size)
        yield self.tail


class KnowledgeMixin:
    """Knowledge API (dataset key). Every method raises the typed `DifyError`s of `_errors`."""

    _kb_hyphen_paths = False

    # ------------------------------------------------------------------ knowledge bases

    async def list_datasets(self, *, page: int = 1, limit: int = 20) -> dict[str, Any]:
        params = {"page": page, "limit": limit}
        return await self._json("GET", "datasets", key="dataset", params=params, retry=True)  # type: ignore[attr-defined]

    async def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        """The knowledge base (Dify 1.x). None where the server has no such route (0.15 answers 405).

        Raises DifyDatasetNotFound for an unknown id.
        """
        try:
            return await self._json("GET", f"datasets/{dataset_id}", key="dataset", retry=True)  # type: ignore[attr-defined]
        except DifyDatasetNotFound:
            raise
        except DifyNotFound:
            return None
        except DifyAPIError as exc:
            if exc.status == 405:
                return None
            raise

    async def find_dataset(self, dataset_id: str, *, max_pages: int = 50) -> dict[str, Any]:
        """The knowledge base by id on any version: GET /datasets/{id}, else a walk of the list.

        Raises DifyDatasetNotFound when the key cannot see it.
        """
        found = await self.get_dataset(dataset_id)
        if found is not None:
            return found
        for page in range(1, max_pages + 1):
            listing = await self.list_datasets(page=page, limit=100)
            for item in listing.get("data") or []:
                if item.get("id") == dataset_id:
                    return item
            if not listing.get("has_more"):
                break
        raise DifyDatasetNotFound("Dataset not found.", status=404, code="not_found")

    # ------------------------------------------------------------------ documents

    async def create_document_by_text(
        self, dataset_id: str, name: str, text: str, *, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create a document from text; returns `{"document": {...}, "batch": "..."}`."""
        body = {**(data or {}), "name": name, "text": text}

        async def send(endpoint: str) -> dict[str, Any]:
            return await self._json("POST", endpoint, key="dataset", json=body)  # type: ignore[attr-defined]

        return await self._create(dataset_id, "text", send)

    async def create_document_by_file(
        self,
        dataset_id: str,
        file: str | os.PathLike[str] | BinaryIO,
        filename: str,
        *,
        data: dict[str, Any],
        mime_type: str = "application/octet-stream",
        progress: UploadProgress | None = None,
    ) -> dict[str, Any]:
        """Upload one file as a new document; returns `{"document": {...}, "batch": "..."}`.

        `file` is a path or an open binary file (read from its current position, never whole);
        `data` becomes the JSON `data` part (indexing_technique, process_rule, doc_form…).
        `progress(sent, total)` is awaited after each chunk of file bytes.
        """
        if isinstance(file, (str, os.PathLike)):
            with open(Path(file), "rb") as fileobj:  # noqa: ASYNC230 - open() itself does not block on data
                return await self.create_document_by_file(
                    dataset_id, fileobj, filename, data=data, mime_type=mime_type, progress=progress
                )
        start = file.tell()

        async def send(endpoint: str) -> dict[str, Any]:
            file.seek(start)
            body = _MultipartFile(data, file, filename, mime_type)
            return await self._upload(endpoint, body, progress)

        return await self._create(dataset_id, "file", send)

    async def indexing_status(self, dataset_id: str, batch: str) -> list[dict[str, Any]]:
        """The indexing status of every document of a batch (`indexing_status`, segments, `error`)."""
        answer = await self._json(  # type: ignore[attr-defined]
            "GET", f"datasets/{dataset_id}/documents/{batch}/indexing-status", key="dataset", retry=True
        )
        return list(answer.get("data") or [])

    async def list_documents(
        self, dataset_id: str, *, page: int = 1, limit: int = 20, keyword: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page, "limit": limit}
        if keyword:
            params["keyword"] = keyword
        return await self._json(  # type: ignore[attr-defined]
            "GET", f"datasets/{dataset_id}/documents", key="dataset", params=params, retry=True
        )

    async def delete_document(self, dataset_id: str, document_id: str) -> None:
        """Delete a document; 0.15 answers 200 `{"result":"success"}`, 1.x answers 204."""
        await self._json("DELETE", f"datasets/{dataset_id}/documents/{document_id}", key="dataset")  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ plumbing

    async def _create(
        self, dataset_id: str, kind: str, send: Callable[[str], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        forms = [f"create-by-{kind}", f"create_by_{kind}"]
        if not self._kb_hyphen_paths:
            forms.reverse()
        try:
            return await send(f"datasets/{dataset_id}/document/{forms[0]}")
        except DifyDatasetNotFound:
            raise
        except DifyNotFound:
            answer = await send(f"datasets/{dataset_id}/document/{forms[1]}")
            self._kb_hyphen_paths = not self._kb_hyphen_paths
            return answer

    async def _upload(self, endpoint: str, body: _MultipartFile, progress: UploadProgress | None) -> dict[str, Any]:
        """POST a streamed multipart body (never retried: the document may already exist)."""
        headers = {"Content-Type": body.content_type, "Content-Length": str(body.length)}
        response = await self._send(  # type: ignore[attr-defined]
            "POST", endpoint, key="dataset", headers=headers, content=body.chunks(progress)
        )
        try:
            return response.json()
        except ValueError as exc:
            raise DifyWrongBaseURL(
                f"{self.base_url} did not answer the upload like Dify's Service API; check DIFY_API_URL"  # type: ignore[attr-defined]
            ) from exc
