"""One scenario: fresh fakes, the direct baseline, a fresh `dify-bridge serve`, N conversations at once.

Budgets: where they do not bind (1 and 10 conversations) the fakes and the bridge use the platforms'
real windows. Where they bind (100, 1,000) every window is divided by `scale` in the fakes and in the
bridge (SLACK_LIMITS / TELEGRAM_LIMITS), so a run fits in minutes; the ideal is computed from the same
scaled windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.slack.pacing import DEFAULT_RATES as SLACK_RATES
from adapters.telegram.writer import DEFAULT_RATES as TELEGRAM_RATES
from bench.direct import direct_in_process
from bench.drivers import Driver
from bench.harness import (
    DIFY_APP_KEY,
    SLACK_BOT_TOKEN,
    TELEGRAM_TOKEN,
    BridgeProcess,
    Profiler,
    bridge_env,
    free_port,
    temp_database,
)
from bench.ideal import Budget
from bench.metrics import summarize
from bench.watch import Answer, SlackWatcher, TelegramWatcher, Watcher
from tests.fakes.fake_dify import FakeDify, Plan
from tests.fakes.fake_slack import DEFAULT_LIMITS, FakeSlack, RateLimit
from tests.fakes.fake_telegram import FakeTelegram, FloodLimits

MARKER = "Zephyr"
BACKLOG = 2048  # listen queue of the fakes: hundreds of connections arrive at once

@dataclass(frozen=True)
class AnswerShape:
    """What fake Dify streams for every answer."""

    ttft: float = 0.2
    tokens: int = 30
    gap: float = 0.02

    def token_list(self) -> list[str]:
        words = ["here", "is", "a", "streamed", "answer", "with", "plain", "words", "so", "every", "platform",
                 "shows", "it", "as", "sent"]
        out = [f"{MARKER} "]
        for i in range(self.tokens - 1):
            out.append(f"{words[i % len(words)]} ")
        out[-1] = out[-1].strip() + " end."
        return out

    def text(self) -> str:
        return "".join(self.token_list())

    def plan(self) -> Plan:
        return Plan(tokens=self.token_list(), first_token_delay=self.ttft, token_gap=self.gap)


@dataclass(frozen=True)
class Spec:
    name: str
    mix: str  # "slack" | "telegram" | "mixed"
    concurrency: int
    rounds: int = 1
    slack_scale: float = 1.0  # windows divided by this
    telegram_scale: float = 1.0

    @property
    def platforms(self) -> tuple[str, ...]:
        return ("slack", "telegram") if self.mix == "mixed" else (self.mix,)

    @property
    def budgets_label(self) -> str:
        parts = []
        if "slack" in self.platforms:
            parts.append("Slack real" if self.slack_scale == 1 else f"Slack ÷{self.slack_scale:g}")
        if "telegram" in self.platforms:
            parts.append("Telegram real" if self.telegram_scale == 1 else f"Telegram ÷{self.telegram_scale:g}")
        return ", ".join(parts)


@dataclass
class Rig:
    """The fakes of one scenario and the bridge process."""

    dify: FakeDify
    slack: FakeSlack | None = None
    telegram: FakeTelegram | None = None
    bridge: BridgeProcess | None = None
    watchers: dict[str, Watcher] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def slack_fake_limits(scale: float) -> dict[str, RateLimit | None]:
    return {m: RateLimit(r.limit, r.per_seconds / scale, r.scope) for m, r in DEFAULT_LIMITS.items()}


def slack_bridge_limits(scale: float) -> str:
    """SLACK_LIMITS dividing every budget the bridge knows (adapters/slack/pacing.py) by `scale`."""
    return json.dumps({m: [r.limit, r.per / scale] for m, r in SLACK_RATES.items()})


def telegram_fake_limits(scale: float) -> FloodLimits:
    d = FloodLimits()
    return FloodLimits(per_chat=(d.per_chat[0], d.per_chat[1] / scale), per_chat_burst=d.per_chat_burst,
                       per_group=(d.per_group[0], d.per_group[1] / scale),
                       global_=(d.global_[0], d.global_[1] / scale), drafts=(d.drafts[0], d.drafts[1] / scale))


def telegram_bridge_limits(scale: float) -> str | None:
    """TELEGRAM_LIMITS for a scaled run (adapters/telegram/writer.py's budgets), None when real."""
    if scale == 1:
        return None
    return json.dumps({name: [r.limit, r.per / scale] for name, r in TELEGRAM_RATES.items()})


def budgets_for(spec: Spec) -> dict[str, Budget]:
    """The platforms' budgets as the fakes enforce them (scaled like the run): the ideal's inputs."""
    s, t = spec.slack_scale, spec.telegram_scale
    slack = {m: Budget(DEFAULT_LIMITS[m].limit, DEFAULT_LIMITS[m].per_seconds / s)
             for m in ("chat.startStream", "chat.stopStream", "chat.update")}
    g = FloodLimits().global_
    return {**slack, "telegram.global": Budget(g[0], g[1] / t)}


async def start_rig(spec: Spec, shape: AnswerShape, tmp_db: str, extra_env: dict[str, str] | None = None) -> Rig:
    rig = Rig(dify=FakeDify(version="1.12", app_key=DIFY_APP_KEY, default_plan=shape.plan(), backlog=BACKLOG))
    await rig.dify.start()
    port = free_port()
    slack_url = tg_url = None
    if "slack" in spec.platforms:
        rig.slack = FakeSlack(bot_token=SLACK_BOT_TOKEN, limits=slack_fake_limits(spec.slack_scale))
        await rig.slack.start()
        slack_url = rig.slack.api_url
        rig.watchers["slack"] = SlackWatcher(rig.slack, MARKER, shape.text())
    if "telegram" in spec.platforms:
        rig.telegram = FakeTelegram(token=TELEGRAM_TOKEN, limits=telegram_fake_limits(spec.telegram_scale))
        await rig.telegram.start()
        tg_url = rig.telegram.url
        rig.watchers["telegram"] = TelegramWatcher(rig.telegram, MARKER, shape.text())
    env = bridge_env(port=port, database_url=tmp_db, dify_url=rig.dify.url, slack_api_url=slack_url,
                     telegram_url=tg_url,
                     slack_limits=slack_bridge_limits(spec.slack_scale) if spec.slack_scale != 1 else None,
                     telegram_limits=telegram_bridge_limits(spec.telegram_scale), extra=extra_env)
    rig.bridge = BridgeProcess(env)
    rig.tasks = [asyncio.create_task(w.run()) for w in rig.watchers.values()]
    await rig.bridge.start()
    if rig.telegram is not None:  # the adapter takes updates once its webhook is set
        await rig.telegram.wait_for(lambda f: f.webhook is not None, 20)
    return rig


async def stop_rig(rig: Rig) -> None:
    for task in rig.tasks:
        task.cancel()
    for task in rig.tasks:
        with contextlib.suppress(BaseException):
            await task
    if rig.bridge is not None:
        await rig.bridge.stop()
    for fake in (rig.slack, rig.telegram, rig.dify):
        if fake is not None:
            with contextlib.suppress(Exception):
                await fake.stop()


async def drive_round(rig: Rig, driver: Driver, platforms: list[str], tag: str, timeout: float, *,
                      warm_up: bool = False) -> list[Answer]:
    """Send one event per conversation at once; wait until every answer is complete (or `timeout`)."""
    made = [driver.make(p, f"q{tag}i{i}") for i, p in enumerate(platforms)]
    for answer, _ in made:
        rig.watchers[answer.platform].add(answer)
    await asyncio.gather(*(driver.send(a, body, retry_unready=warm_up) for a, body in made))
    waits = [rig.watchers[p].done.wait() for p in set(platforms)]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await asyncio.gather(*waits)
    for w in rig.watchers.values():
        w.process()
    return [a for a, _ in made]


def attach_dify_times(dify: FakeDify, answers: list[Answer]) -> None:
    by_tag = {a.tag: a for a in answers}
    for conv in dify.conversations.values():
        for msg in conv.messages:
            tag = msg.query.split(" ", 1)[0] if msg.query else ""
            answer = by_tag.get(tag)
            if answer is None:
                for word in msg.query.split():
                    if word in by_tag:
                        answer = by_tag[word]
                        break
            if answer is not None:
                answer.dify_first_delta, answer.dify_end = msg.first_delta_at, msg.ended_at
    for req in dify.chat_requests():
        query = str((req.json or {}).get("query") or "")
        for word in query.split():
            if word in by_tag and by_tag[word].dify_request is None:
                by_tag[word].dify_request = req.time


def round_platforms(spec: Spec, r: int) -> list[str]:
    if spec.mix != "mixed":
        return [spec.mix] * spec.concurrency
    if spec.concurrency == 1:
        return [("slack", "telegram")[r % 2]]
    half = spec.concurrency // 2
    return ["slack"] * half + ["telegram"] * (spec.concurrency - half)


def round_timeout(spec: Spec, shape: AnswerShape) -> float:
    """Generous bound on one round: 3x what the budgets need for every ending, plus slack."""
    n = spec.concurrency
    need = 0.0
    if "slack" in spec.platforms:
        need = max(need, n / 20 * 60 / spec.slack_scale)
    if "telegram" in spec.platforms:
        need = max(need, n / 30 / spec.telegram_scale)
    return 20 + shape.ttft + shape.tokens * shape.gap + 3 * need


async def run_scenario(spec: Spec, shape: AnswerShape, log: Any = print,
                       profile_dir: Path | None = None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    tmp, db_url = temp_database()
    started = time.monotonic()
    rig = await start_rig(spec, shape, db_url, extra_env)
    driver = Driver(rig.bridge.url if rig.bridge else "")
    profiler: Profiler | None = None
    try:
        direct = await direct_in_process(rig.dify.url, DIFY_APP_KEY, spec.concurrency, spec.name, rounds=spec.rounds)
        for p in spec.platforms:  # warm-up: one answer per platform, not measured
            await drive_round(rig, driver, [p], f"warm{p}", 30, warm_up=True)
        assert rig.bridge is not None
        if profile_dir is not None:
            profiler = Profiler(rig.bridge.pid, profile_dir / f"bench-profile-{spec.name}.txt")
            await profiler.start()
        before = rig.bridge.stats()
        answers: list[Answer] = []
        t0 = time.monotonic()
        for r in range(spec.rounds):
            answers += await drive_round(rig, driver, round_platforms(spec, r), f"{spec.name}r{r}",
                                         round_timeout(spec, shape))
        elapsed = time.monotonic() - t0
        after = rig.bridge.stats()
        if profiler is not None:
            await profiler.stop()
        attach_dify_times(rig.dify, answers)
        result = summarize(spec, answers, direct, budgets_for(spec), before.cpu_seconds, after.cpu_seconds,
                           after.hwm_mb, elapsed)
        result["incomplete_details"] = incomplete_details(rig, answers)
        result["bridge_ready_s"] = rig.bridge.ready_after
        result["ratelimited_fakes"] = sum(f.ratelimited for f in (rig.slack, rig.telegram) if f is not None)
        return result
    finally:
        if profiler is not None:
            await profiler.stop()
        await driver.close()
        await stop_rig(rig)
        if rig.bridge is not None and rig.bridge.proc is not None and rig.bridge.proc.returncode not in (0, None):
            log(f"  ! bridge exit status {rig.bridge.proc.returncode}\n{rig.bridge.log_tail(10)}")
        tmp.cleanup()
        log(f"  {spec.name}: {time.monotonic() - started:.1f} s")


def incomplete_details(rig: Rig, answers: list[Answer], limit: int = 5) -> list[dict[str, Any]]:
    """What the platform shows for (up to `limit`) answers that never became complete, and why."""
    out = []
    for a in answers:
        if a.complete is not None or len(out) >= limit:
            continue
        watcher = rig.watchers[a.platform]
        text, streaming = watcher.visible(a)  # type: ignore[attr-defined]
        fake = rig.slack if a.platform == "slack" else rig.telegram
        calls = [c for c in fake.calls if watcher.key_of(c) == a.key] if fake is not None else []
        out.append({"key": a.key, "ack_status": a.ack_status, "methods": a.methods, "streaming": streaming,
                    "visible": text[-200:], "calls": [(c.method, c.status, round(c.time - (a.sent or 0), 3),
                                                       (c.response or {}).get("error")) for c in calls]})
    return out
