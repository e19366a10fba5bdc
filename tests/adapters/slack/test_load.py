"""200 concurrent threads in one workspace: every ending lands, pacing keeps Slack from answering 429."""

from __future__ import annotations

import asyncio
import collections
import time

from tests.fakes.fake_dify import Plan
from tests.fakes.fake_dify_models import default_answer
from tests.helpers.slack_events import app_mention

THREADS = 200
CHANNELS = 20
WRITES = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream",
          "assistant.threads.setStatus")


async def test_200_concurrent_threads_all_finish_without_429(start_bridge):
    sb = await start_bridge()
    sb.dify.default_plan = Plan(token_gap=0.01)  # the default answer echoes the question, word by word
    events = [app_mention(f"question {i} please", channel=f"C{i % CHANNELS}", user=f"U{i}") for i in range(THREADS)]
    expected = {e["ts"]: "".join(default_answer(f"question {i} please")) for i, e in enumerate(events)}

    began = time.monotonic()
    statuses = await asyncio.gather(*(sb.post(e) for e in events))
    acked = time.monotonic() - began
    assert [s for s, _ in statuses] == [200] * THREADS

    def finished(f) -> bool:
        return all(any(not m.streaming and f.final_text(m) == expected[e["ts"]]
                       for m in f.thread(e["channel"], e["ts"])) for e in events)

    await sb.adapter.wait_handled(THREADS, timeout=60)
    await sb.slack.wait_for(finished, timeout=30)
    elapsed = time.monotonic() - began

    for e in events:  # exactly one complete answer per thread
        [msg] = sb.slack.thread(e["channel"], e["ts"])
        assert sb.slack.final_text(msg) == expected[e["ts"]]
    limited = [c.method for c in sb.slack.calls if c.status == 429]
    assert sb.adapter.writer.ratelimited == len(limited), "every 429 was seen, waited out and written again"
    assert len(limited) <= 3, f"the pacer keeps writes within Slack's budgets (stray 429s from jitter: {limited})"
    assert not [c for c in sb.slack.calls if not c.ok and c.status != 429], "no Slack call failed"

    writes = collections.Counter(c.method for c in sb.slack.calls if c.method in WRITES)
    per_answer = sum(writes.values()) / THREADS
    print(f"\n[slack load] {THREADS} threads in {CHANNELS} channels: all acked in {acked:.2f} s, "
          f"all answered in {elapsed:.2f} s = {THREADS / elapsed:.1f} answers/s; "
          f"{per_answer:.2f} Slack writes per answer {dict(writes)}; 429s: {sb.slack.ratelimited}")
