"""The two single-user measurements: `dify-bridge chat` (piped) against the direct client, and the
memory a 15 MB document costs on its way through `/kb add`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, Callable

from bench.direct import direct_in_process
from bench.harness import DIFY_APP_KEY, REPO, temp_database
from bench.kb import kb_platform_upload
from bench.report import triple
from bench.scenario import BACKLOG, MARKER, AnswerShape
from tests.fakes.fake_dify import FakeDify

CHAT_MESSAGES = 8
KB_SIZE = 15 * 1024 * 1024


def _base_env(dify_url: str, db_url: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", DIFY_API_URL=dify_url, DIFY_API_KEY=DIFY_APP_KEY,
               DATABASE_URL=db_url, LOG_LEVEL="WARNING")
    return env


async def chat_latency(shape: AnswerShape) -> dict[str, Any]:
    """Pipe CHAT_MESSAGES lines into `dify-bridge chat`; time each answer's first token on stdout."""
    tmp, db_url = temp_database()
    dify = FakeDify(version="1.12", app_key=DIFY_APP_KEY, default_plan=shape.plan(), backlog=BACKLOG)
    await dify.start()
    try:
        direct = await direct_in_process(dify.url, DIFY_APP_KEY, 1, "chat", rounds=CHAT_MESSAGES)
        lines = "".join(f"question {i} for the terminal\n" for i in range(CHAT_MESSAGES)).encode()
        spawned = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots.cli", "chat", cwd=tmp.name, env=_base_env(dify.url, db_url),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(lines)
        await proc.stdin.drain()
        proc.stdin.close()
        chunks: list[tuple[float, bytes]] = []
        async with asyncio.timeout(120):
            while chunk := await proc.stdout.read(65536):
                chunks.append((time.monotonic(), chunk))
            await proc.wait()
        firsts, ends = _answer_times(chunks, shape)
        steady = [firsts[k] - ends[k - 1] for k in range(1, min(len(firsts), len(ends)))]
        d = triple([s.ttft for s in direct.samples])
        st = triple(steady)
        added = triple([x - (d["p50"] or 0.0) for x in steady])
        return {
            "messages": CHAT_MESSAGES, "answers_seen": len(firsts), "exit_status": proc.returncode,
            "cold_first_token_s": (firsts[0] - spawned) if firsts else None,
            "first_token": st, "direct_ttft": d,
            "added": added,
        }
    finally:
        await dify.stop()
        tmp.cleanup()


def _answer_times(chunks: list[tuple[float, bytes]], shape: AnswerShape) -> tuple[list[float], list[float]]:
    """Times of the chunks holding each answer's first token and its ending newline."""
    firsts: list[float] = []
    ends: list[float] = []
    text = b""
    marker, ending = MARKER.encode(), b"end.\n"
    for at, chunk in chunks:
        before = len(text)
        text += chunk
        start = max(0, before - 16)
        while (pos := text.find(marker, start)) != -1 and pos < len(text):
            if pos + len(marker) > before:
                firsts.append(at)
            start = pos + 1
        start = max(0, before - 16)
        while (pos := text.find(ending, start)) != -1:
            if pos + len(ending) > before:
                ends.append(at)
            start = pos + 1
    return firsts, ends


async def run_extras(shape: AnswerShape, log: Callable[[str], Any] = print) -> dict[str, Any]:
    out: dict[str, Any] = {}
    log("running chat (piped) …")
    try:
        out["chat"] = await chat_latency(shape)
    except Exception as exc:  # noqa: BLE001 - report, keep going
        out["chat"] = {"error": f"{type(exc).__name__}: {exc}"}
    log("running kb add (15 MB) …")
    try:
        out["kb"] = await kb_platform_upload(KB_SIZE)
    except Exception as exc:  # noqa: BLE001
        out["kb"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
