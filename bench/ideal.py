"""What the platform budgets allow: the earliest each answer's ending could be visible.

For every answer we know which budgeted writes its ending cannot do without, given the mode the bridge
used for it:

- Slack native stream: one `chat.startStream` (possible from the moment the event arrives) and one
  `chat.stopStream` carrying the rest of the text (possible from Dify's `message_end`, after its
  start). Both are workspace-wide budgets (Tier 2, 20 per minute, scaled).
- Slack update mode: one `chat.postMessage` (per channel) and one final `chat.update` (Tier 3,
  workspace-wide).
- Slack "post" (no stream was started before the answer ended, the whole answer went out in one
  `chat.postMessage`): only the per-channel budget, which one answer per channel never exhausts.
- Telegram: one final `sendMessage` (bot-wide ~30/s; drafts, if any, have their own per-chat budget
  at Telegram). Edit mode (a message was edited): a first `sendMessage` and a final
  `editMessageText`, both bot-wide.

Each budget is a sliding window ("at most L in any W seconds"). Requests are granted greedily in the
order they become possible, each at the earliest moment the window has room. That schedule is
optimal for one window; the ideal final-visible latency of an answer is its ending's grant time minus
its `message_end`. Intermediate updates, signs of life and network time are not counted: the ideal is
a lower bound.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from bench.watch import Answer


@dataclass(frozen=True)
class Budget:
    limit: int
    per: float


class WindowSchedule:
    """Greedy grants on one sliding window; requests must come in non-decreasing time order."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.grants: deque[float] = deque()

    def grant(self, t: float) -> float:
        if len(self.grants) >= self.budget.limit:
            t = max(t, self.grants[-self.budget.limit] + self.budget.per)
        if self.grants and t < self.grants[-1]:
            t = self.grants[-1]
        self.grants.append(t)
        return t


def slack_mode(answer: Answer) -> str:
    """"native" (a stream was started), "update" (a message was edited) or "post" (one final post)."""
    methods = answer.methods or {}
    if methods.get("chat.startStream"):
        return "native"
    return "update" if methods.get("chat.update") else "post"


def telegram_mode(answer: Answer) -> str:
    """"edit" (a message was sent, then edited) or "send" (the answer went out in one sendMessage;
    drafts, if any, spend only their own per-chat budget at Telegram)."""
    return "edit" if (answer.methods or {}).get("editMessageText") else "send"


def _schedule(requests: list[tuple[float, int]], budget: Budget) -> dict[int, float]:
    """Grant (earliest time, answer index) requests on one window; returns index -> grant time."""
    window = WindowSchedule(budget)
    return {i: window.grant(t) for t, i in sorted(requests)}


def ideal_endings(answers: list[Answer], budgets: dict[str, Budget]) -> dict[int, float]:
    """Index in `answers` -> earliest time its complete text could be visible (bench monotonic time).

    `budgets` names the (scaled) windows: "chat.startStream", "chat.stopStream", "chat.update" for Slack,
    "telegram.global" for Telegram. Answers without Dify timings are skipped."""
    out: dict[int, float] = {}
    starts: list[tuple[float, int]] = []
    stops_after: dict[int, float] = {}
    updates: list[tuple[float, int]] = []
    tg_first: list[tuple[float, int]] = []
    tg_final: list[tuple[float, int]] = []
    for i, a in enumerate(answers):
        if a.dify_end is None or a.sent is None:
            continue
        if a.platform == "slack":
            mode = slack_mode(a)
            if mode == "native":
                starts.append((a.sent, i))
                stops_after[i] = a.dify_end
            elif mode == "update":
                updates.append((a.dify_end, i))
            else:  # one chat.postMessage in a channel of its own: no shared budget to wait for
                out[i] = a.dify_end
        elif telegram_mode(a) == "send":
            tg_final.append((a.dify_end, i))
        else:
            tg_first.append((a.dify_first_delta or a.dify_end, i))
    if starts:
        granted = _schedule(starts, budgets["chat.startStream"])
        out.update(_schedule([(max(stops_after[i], granted[i]), i) for _, i in starts], budgets["chat.stopStream"]))
    if updates:
        out.update(_schedule(updates, budgets["chat.update"]))
    if tg_first or tg_final:
        # Telegram's first and final writes share the one bot-wide window, granted in time order
        events = sorted([(t, 0, i) for t, i in tg_first] + [(t, 1, i) for t, i in tg_final]
                        + [(max(answers[i].dify_end or t, t), 1, i) for t, i in tg_first])
        window = WindowSchedule(budgets["telegram.global"])
        for t, kind, i in events:
            granted = window.grant(t)
            if kind == 1:
                out[i] = granted
    return out

