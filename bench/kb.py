"""Peak RSS growth while a big document goes through the knowledge-base upload.

1. Platform: a Slack DM with the file and the text `kb add`, and a Telegram document with the caption
   `/kb add`, each delivered to a running `dify-bridge serve`. The bridge downloads the file from the
   fake platform and uploads it to the fake Dify knowledge API. Growth = VmHWM after the upload −
   VmRSS just before (VmHWM reset first).
2. CLI: `dify-bridge kb add FILE`, peak RSS of the process with the big file minus with a 1 KB file
   (each measured exactly with getrusage(RUSAGE_CHILDREN) in a one-child wrapper).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.drivers import Driver
from bench.harness import (
    DIFY_APP_KEY,
    DIFY_DATASET_KEY,
    REPO,
    SLACK_BOT_TOKEN,
    TELEGRAM_TOKEN,
    BridgeProcess,
    bridge_env,
    free_port,
    reset_peak,
    temp_database,
)
from bench.watch import Answer
from tests.fakes.fake_dify import FakeDify
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_telegram import FakeTelegram
from tests.helpers.slack_events import dm_message, event_envelope
from tests.helpers.telegram_updates import command, document, private_message

KB_USER = 77_000_001
WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _content(size: int) -> bytes:
    line = b"The bridge streams Dify answers into Slack and Telegram; this line is filler text.\n"
    return (line * (size // len(line) + 1))[:size]


def _fake_dify() -> tuple[FakeDify, str]:
    dify = FakeDify(version="1.12", app_key=DIFY_APP_KEY, dataset_key=DIFY_DATASET_KEY, upload_limit_mb=32,
                    indexing_steps=["indexing", "completed"], backlog=512)
    return dify, ""


def _kb_env(dataset_id: str) -> dict[str, str]:
    return {"DIFY_DATASET_API_KEY": DIFY_DATASET_KEY, "DIFY_DATASET_ID": dataset_id, "KB_WRITERS": "*",
            "KB_MAX_FILE_MB": "20"}


async def kb_platform_upload(size: int) -> dict[str, Any]:
    out: dict[str, Any] = {"size_mb": size / 2**20}
    for name, measure in (("slack", _slack_upload), ("telegram", _telegram_upload), ("cli", _cli_upload)):
        try:
            out[name] = await measure(size)
        except Exception as exc:  # noqa: BLE001 - one failed measurement must not hide the others
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


async def _slack_upload(size: int) -> dict[str, Any]:
    tmp, db_url = temp_database()
    dify, _ = _fake_dify()
    await dify.start()
    slack = FakeSlack(bot_token=SLACK_BOT_TOKEN)
    await slack.start()
    dataset_id = dify.add_dataset()
    env = bridge_env(port=free_port(), database_url=db_url, dify_url=dify.url, slack_api_url=slack.api_url,
                     extra=_kb_env(dataset_id))
    bridge = BridgeProcess(env)
    driver: Driver | None = None

    def said(f: FakeSlack) -> list[str]:
        return [json.dumps(c.args) for c in f.calls if c.method in ("chat.postMessage", "chat.update")]

    try:
        await bridge.start()
        driver = Driver(bridge.url)
        obj = slack.add_file("handbook.txt", _content(size), "text/plain", "text", user="U0KBUSER")
        event = dm_message("kb add", user="U0KBUSER", channel="D0KB0001", files=[obj])
        reset_ok = reset_peak(bridge.pid)
        before = bridge.stats()
        answer = Answer(platform="slack", key="D0KB0001", tag="kb")
        t0 = time.monotonic()
        await driver.send_slack(answer, json.dumps(event_envelope(event)).encode(), retry_unready=True)
        try:
            await dify.wait_for(lambda f: any(d.status == "completed" for d in f.documents(dataset_id)), 90)
            await slack.wait_for(lambda f: any("Indexed" in t for t in said(f)), 30)
        except (TimeoutError, AssertionError) as exc:
            return {"error": f"the upload did not complete: {exc}", "bot_said": said(slack)[-2:],
                    "ack_status": answer.ack_status}
        return _growth(before, bridge.stats(), reset_ok, time.monotonic() - t0, dify, dataset_id,
                       answer.ack_status, said(slack)[-1:])
    finally:
        if driver is not None:
            await driver.close()
        await bridge.stop()
        await slack.stop()
        await dify.stop()
        tmp.cleanup()


def _growth(before: Any, after: Any, reset_ok: bool, seconds: float, dify: FakeDify, dataset_id: str,
            ack_status: int, said: list[str]) -> dict[str, Any]:
    docs = dify.documents(dataset_id)
    baseline = before.rss_mb if reset_ok else before.hwm_mb
    return {
        "ack_status": ack_status, "seconds": seconds,
        "uploaded_bytes": len(docs[0].file.content) if docs else 0,
        "rss_before_mb": before.rss_mb, "peak_after_mb": after.hwm_mb,
        "growth_mb": after.hwm_mb - baseline, "peak_reset": reset_ok, "bot_said": said,
    }


async def _telegram_upload(size: int) -> dict[str, Any]:
    tmp, db_url = temp_database()
    dify, _ = _fake_dify()
    await dify.start()
    tg = FakeTelegram(token=TELEGRAM_TOKEN)
    await tg.start()
    dataset_id = dify.add_dataset()
    port = free_port()
    env = bridge_env(port=port, database_url=db_url, dify_url=dify.url, telegram_url=tg.url,
                     extra=_kb_env(dataset_id))
    bridge = BridgeProcess(env)
    driver: Driver | None = None
    try:
        await bridge.start()
        await tg.wait_for(lambda f: f.webhook is not None, 20)
        driver = Driver(bridge.url)
        file_id = tg.add_file(_content(size), file_path="documents/handbook.txt")
        caption, entities = command("/kb add")
        update = private_message(caption, user_id=KB_USER, first_name="Kb", entities=entities,
                                 document=document(file_id, file_name="handbook.txt", file_size=size))
        reset_ok = reset_peak(bridge.pid)
        before = bridge.stats()
        answer = Answer(platform="telegram", key=str(KB_USER), tag="kb")
        t0 = time.monotonic()
        await driver.send_telegram(answer, json.dumps(update).encode(), retry_unready=True)
        uploads = "/document/create_by_file"
        try:
            await _first(dify.wait_for(lambda f: any(r.path.endswith(uploads) for r in f.requests), 60),
                         tg.wait_for(lambda f: any("❌" in t for t in f.final_text(KB_USER)), 60))
            if not any(r.path.endswith(uploads) for r in dify.requests):
                return {"error": "the bridge did not upload the file", "bot_said": tg.final_text(KB_USER),
                        "ack_status": answer.ack_status}
            await dify.wait_for(lambda f: any(d.status == "completed" for d in f.documents(dataset_id)), 90)
            await tg.wait_for(lambda f: any("complete" in t.lower() or "indexed" in t.lower() or "ready" in t.lower()
                                            for t in f.final_text(KB_USER)), 30)
        except (TimeoutError, AssertionError) as exc:
            return {"error": f"the upload did not complete: {exc}", "bot_said": tg.final_text(KB_USER),
                    "ack_status": answer.ack_status}
        return _growth(before, bridge.stats(), reset_ok, time.monotonic() - t0, dify, dataset_id,
                       answer.ack_status, tg.final_text(KB_USER)[-1:])
    finally:
        if driver is not None:
            await driver.close()
        await bridge.stop()
        await tg.stop()
        await dify.stop()
        tmp.cleanup()


async def _cli_peak(dify: FakeDify, dataset_id: str, path: Path, workdir: str, db_url: str) -> tuple[int, float]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(PYTHONPATH=str(REPO), DIFY_API_URL=dify.url, DIFY_API_KEY=DIFY_APP_KEY, DATABASE_URL=db_url,
               LOG_LEVEL="WARNING", **_kb_env(dataset_id))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRAPPER, sys.executable, "-m", "bots.cli", "kb", "add", str(path),
        cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    rc, kib = out.split()
    return int(rc), int(kib) / 1024


async def _cli_upload(size: int) -> dict[str, Any]:
    tmp, db_url = temp_database()
    dify, _ = _fake_dify()
    await dify.start()
    try:
        dataset_id = dify.add_dataset()
        small, big = Path(tmp.name) / "small.txt", Path(tmp.name) / "handbook.txt"
        small.write_bytes(_content(1024))
        big.write_bytes(_content(size))
        rc_small, peak_small = await _cli_peak(dify, dataset_id, small, tmp.name, db_url)
        rc_big, peak_big = await _cli_peak(dify, dataset_id, big, tmp.name, db_url)
        return {"exit_status": [rc_small, rc_big], "peak_1kb_mb": peak_small, "peak_15mb_mb": peak_big,
                "growth_mb": peak_big - peak_small,
                "documents": [d.name for d in dify.documents(dataset_id)]}
    finally:
        await dify.stop()
        tmp.cleanup()


async def _first(*aws: Any) -> None:
    """Wait until the first of `aws` finishes (the others are cancelled); its timeout propagates."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
