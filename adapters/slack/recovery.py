"""Restart recovery: answers a crash left streaming are finished with an "interrupted" note."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.shared.pacing import FINAL
from adapters.shared.render import with_footer
from bots import messages
from bots.engine import Engine

from .pacing import SlackWriter, slack_error
from .render import final_payload
from .target import NOT_STREAMING

log = logging.getLogger("adapters.slack")


async def recover(engine: Engine, writer: SlackWriter) -> int:
    """Finish every Slack answer left `streaming`; returns how many were finished.

    A live stream is stopped with the note appended; an expired stream or a posted message is
    rewritten (its last known text + the note); an answer that never got a message gets the note
    alone in its thread. A Slack refusal (message deleted, channel archived) counts as finished; any
    other failure leaves the answer for the next start.
    """
    finished = 0
    for record in await engine.interrupted_replies("slack"):
        try:
            await finish_interrupted(writer, record.location)
        except SlackApiError as exc:
            log.warning("could not finish interrupted answer %s: %s", record.id, slack_error(exc))
        except Exception:
            log.exception("could not finish interrupted answer %s; will retry at next start", record.id)
            continue
        await engine.mark_reply(record.id, "interrupted")
        finished += 1
    return finished


async def finish_interrupted(writer: SlackWriter, loc: dict[str, Any]) -> None:
    channel, ts = loc.get("channel"), loc.get("ts")
    if not channel:
        return
    team = str(loc.get("team") or "")
    footer = messages.stopped_footer(messages.INTERRUPTED)
    text = str(loc.get("text") or "")
    if not ts:
        thread = {"thread_ts": loc["thread_ts"]} if loc.get("thread_ts") else {}
        await writer.call(team, "chat.postMessage", {"channel": channel, **thread, **final_payload(footer)}, FINAL)
        return
    if loc.get("mode") == "native":
        delta = f"\n\n{footer}" if text.strip() else footer
        try:
            await writer.call(team, "chat.stopStream", {"channel": channel, "ts": ts, "markdown_text": delta}, FINAL)
            return
        except SlackApiError as exc:
            if slack_error(exc) not in NOT_STREAMING:
                raise
    await writer.call(team, "chat.update",
                      {"channel": channel, "ts": ts, **final_payload(with_footer(text, footer))}, FINAL)
