"""`dify-bridge kb add PATH…` and `dify-bridge kb list`: the knowledge base from the shell.

`kb add` runs the same pipeline as the chat platforms (checks, upload from disk, indexing
polls), draws a progress bar on stderr and prints one result line per file on stdout; it exits
0 when every file was indexed, 1 otherwise. Uploads are recorded in a throw-away in-memory
database: the shell command needs no DATABASE_URL and leaves no files behind.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import IO, Any

from .config import Settings
from .dify import DifyClient, DifyError
from .kb import FileSource, KbProgress, KbRefused, KnowledgeBase, config_problem, reason_for
from .kb.format import KbDocument, document_line
from .kb.validate import human_size

BAR = 24


def _plain(text: str) -> str:
    return text.replace("`", "")


class ProgressBar:
    """One file's progress on stderr: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, name: str, out: IO[str]) -> None:
        self.name, self.out = name, out
        self.tty = out.isatty()
        self.last = ""
        self.key: tuple[Any, ...] = ()

    async def __call__(self, event: KbProgress) -> None:
        if event.finished:
            if self.tty and self.last:
                self.out.write("\r\x1b[2K")
                self.out.flush()
            return
        line = self._line(event)
        if self.tty:
            self.out.write("\r\x1b[2K" + line[:200])
            self.out.flush()
        elif (key := self._key(event)) != self.key:  # a log, not an animation: steps and quarters
            self.key = key
            self.out.write(line + "\n")
            self.out.flush()
        self.last = line

    @staticmethod
    def _key(event: KbProgress) -> tuple[Any, ...]:
        if event.state == "uploading" and event.size:
            return (event.state, (event.sent or 0) * 4 // event.size)
        return (event.state, event.stage, event.segments_done, event.segments_total)

    def _line(self, event: KbProgress) -> str:
        if event.state == "uploading" and event.size:
            sent = event.sent or 0
            return f"{self.name}: uploading {_bar(sent, event.size)} {human_size(sent)} / {human_size(event.size)}"
        if event.state == "indexing" and event.segments_total:
            done = event.segments_done or 0
            return (f"{self.name}: indexing ({event.stage or 'indexing'}) "
                    f"{_bar(done, event.segments_total)} {done}/{event.segments_total} segments")
        if event.state == "indexing":
            return f"{self.name}: indexing ({event.stage or 'starting'})"
        return f"{self.name}: {event.state}"


def _bar(done: float, total: float) -> str:
    frac = max(0.0, min(1.0, done / total)) if total else 0.0
    filled = int(frac * BAR)
    return f"[{'#' * filled}{'-' * (BAR - filled)}] {int(frac * 100):3d}%"


def _client(settings: Settings) -> DifyClient:
    key = settings.dify_dataset_api_key
    return DifyClient(
        settings.dify_api_url,
        settings.dify_api_key.get_secret_value() if settings.dify_api_key else "",
        dataset_api_key=key.get_secret_value() if key else None,
        connect_timeout=settings.dify_connect_timeout,
        read_timeout=settings.dify_read_timeout,
        max_attempts=settings.dify_max_attempts,
    )


async def run_kb(args: argparse.Namespace, settings: Settings, out: IO[str] | None = None,
                 err: IO[str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    dataset = args.dataset or settings.dify_dataset_id
    if problem := config_problem(settings, dataset):
        print(f"dify-bridge kb: {problem}", file=err)
        return 2
    async with _client(settings) as client:
        if args.kb_command == "list":
            return await _list(client, dataset, out, err)
        return await _add(client, settings, dataset, [Path(p) for p in args.paths], out, err)


async def _list(client: DifyClient, dataset: str, out: IO[str], err: IO[str]) -> int:
    docs: list[KbDocument] = []
    try:
        for page in range(1, 101):
            answer: dict[str, Any] = await client.list_documents(dataset, page=page, limit=100)
            docs.extend(KbDocument.from_dify(d) for d in answer.get("data") or [])
            if not answer.get("has_more"):
                break
    except DifyError as exc:
        print(f"dify-bridge kb list: {_plain(reason_for(exc, dataset))}", file=err)
        return 1
    if not docs:
        print("The knowledge base has no documents yet.", file=out)
        return 0
    print(f"{len(docs)} documents in knowledge base {dataset}:", file=out)
    for doc in docs:
        words = f"{doc.word_count} words" if doc.word_count else ""
        print(f"{_plain(document_line(doc))}  {words}".rstrip(), file=out)
    return 0


async def _add(client: DifyClient, settings: Settings, dataset: str, paths: list[Path],
               out: IO[str], err: IO[str]) -> int:
    from storage import Repository

    repo = await Repository.open("sqlite+aiosqlite:///:memory:")
    kb = KnowledgeBase(client, repo, settings)
    user = _user()
    failures = 0
    try:
        for path in paths:
            if not path.is_file():
                print(f"❌ {path}: no such file", file=out)
                failures += 1
                continue
            try:
                record = await kb.add_file(FileSource.from_path(path), platform="cli", user_id=user,
                                           scope="cli", progress=ProgressBar(path.name, err), dataset_id=dataset)
            except KbRefused as exc:
                print(f"❌ {path}: {_plain(str(exc))}", file=out)
                failures += 1
                continue
            event = KbProgress(name=record.file_name, state=record.state, segments_total=record.segments_total,
                               error=record.error)
            print(_plain(event.text), file=out, flush=True)
            failures += record.state != "completed"
    finally:
        await repo.close()
    return 1 if failures else 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers)
        return "cli"
