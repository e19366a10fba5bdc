"""Percentiles, the stdout table and the JSON results file."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pct(values: Sequence[float], q: float) -> float | None:
    """q-th percentile (0-100), linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def triple(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "p99": pct(values, 99), "n": len(values)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "implementation": sys.implementation.name, "os": platform.platform(),
            "loadavg_at_start": os.getloadavg()}


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f}" if abs(value) < 0.01 else f"{value * 1000:.0f}"


def sec(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}"


def _lat(d: dict[str, Any], unit: str = "ms") -> str:
    fmt = ms if unit == "ms" else sec
    return f"{fmt(d.get('p50'))} / {fmt(d.get('p95'))} / {fmt(d.get('p99'))}"


SCENARIO_HEADER = (
    "| scenario | budgets | n | direct TTFT p50/p99 ms | first sign of life ms | added first-visible ms "
    "| final-visible ms | ideal final p50/p99 ms | writes/answer | 429s | incomplete | CPU ms/answer "
    "| peak RSS MB |"
)


def scenario_row(r: dict[str, Any]) -> str:
    d, life, added, final = r["direct_ttft"], r["first_life"], r["added_first_visible"], r["final_visible"]
    ideal = r.get("ideal_final")
    ideal_txt = f"{ms(ideal['p50'])} / {ms(ideal['p99'])}" if ideal else "–"
    return (
        f"| {r['name']} | {r['budgets']} | {r['answers']} | {ms(d['p50'])} / {ms(d['p99'])} | {_lat(life)} "
        f"| {_lat(added)} | {_lat(final)} | {ideal_txt} | {r['writes_per_answer']:.1f} | {r['ratelimited']} "
        f"| {r['incomplete']} | {r['cpu_per_answer'] * 1000:.1f} | {r['peak_rss_mb']:.0f} |"
    )


def table(results: dict[str, Any]) -> str:
    lines = [SCENARIO_HEADER, "|" + "---|" * (SCENARIO_HEADER.count("|") - 1)]
    lines += [scenario_row(r) for r in results.get("scenarios", [])]
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def extras_text(results: dict[str, Any]) -> str:
    ex = results.get("extras") or {}
    lines: list[str] = []
    chat = ex.get("chat")
    if chat:
        if "error" in chat:
            lines.append(f"dify-bridge chat (piped): failed: {chat['error']}")
        else:
            ft, d, add = chat["first_token"], chat["direct_ttft"], chat["added"]
            lines.append(
                f"dify-bridge chat (piped, {chat['messages']} messages): first token p50/p99 "
                f"{ms(ft['p50'])} / {ms(ft['p99'])} ms vs direct {ms(d['p50'])} / {ms(d['p99'])} ms "
                f"(added {ms(add['p50'])} / {ms(add['p99'])} ms); cold start to first token "
                f"{sec(chat['cold_first_token_s'])} s")
    kb = ex.get("kb")
    if kb:
        cli = kb.get("cli") or {}
        if "error" in kb:
            lines.append(f"/kb add 15 MB: failed: {kb['error']}")
        for where in ("slack", "telegram"):
            item = kb.get(where) or {}
            if not item:
                continue
            label = f"/kb add 15 MB via {where.capitalize()}"
            if "error" in item:
                said = "; ".join(item.get("bot_said") or [])[:160]
                lines.append(f"{label}: not measured: {item['error']}" + (f" (bot said: {said})" if said else ""))
            else:
                lines.append(f"{label}: peak RSS growth {item['growth_mb']:.1f} MB (bridge RSS "
                             f"{item['rss_before_mb']:.0f} → peak {item['peak_after_mb']:.0f} MB, {item['seconds']:.1f} s)")
        if cli:
            if "error" in cli:
                lines.append(f"dify-bridge kb add 15 MB: failed: {cli['error']}")
            else:
                lines.append(f"dify-bridge kb add 15 MB (CLI): peak RSS {cli['peak_15mb_mb']:.0f} MB vs "
                             f"{cli['peak_1kb_mb']:.0f} MB for 1 KB: growth {cli['growth_mb']:.1f} MB")
    return "\n".join(lines)


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✓" if ok else "✗")


def target_lines(results: dict[str, Any]) -> list[tuple[bool | None, str]]:
    """(met?, description) for every target of issue 6."""
    out: list[tuple[bool | None, str]] = []
    for r in results.get("scenarios", []):
        name = r["name"]
        if not r["binding"]:
            a, f = r["added_first_visible"], r["final_visible"]
            if a["p50"] is not None:
                out.append((a["p50"] <= 0.005, f"{name}: added first-visible p50 {ms(a['p50'])} ms (≤ 5)"))
                out.append((a["p99"] <= 0.025, f"{name}: added first-visible p99 {ms(a['p99'])} ms (≤ 25)"))
            if f["p50"] is not None:
                out.append((f["p50"] <= 0.100, f"{name}: final-visible p50 {ms(f['p50'])} ms (≤ 100)"))
            continue
        out.append((r["ratelimited"] == 0 or r["incomplete"] == 0,
                    f"{name}: 429s received {r['ratelimited']}, every ending still complete: "
                    f"{'yes' if r['incomplete'] == 0 else 'no'} (0 unhandled)"))
        out.append((r["incomplete"] == 0, f"{name}: incomplete endings {r['incomplete']} of {r['answers']} (0)"))
        life = r["first_life"]["p99"]
        if life is not None:
            out.append((life <= 1.0, f"{name}: first sign of life p99 {ms(life)} ms (≤ 1000)"))
        ideal, f = r.get("ideal_final"), r["final_visible"]
        if ideal and f["p50"] is not None and ideal["p50"] is not None:
            for q in ("p50", "p99"):
                allowed = 1.5 * ideal[q] + 0.1
                out.append((f[q] <= allowed, f"{name}: final-visible {q} {ms(f[q])} ms vs ideal {ms(ideal[q])} ms "
                                             f"(≤ 1.5 × ideal + 100 ms = {ms(allowed)})"))
        if r["concurrency"] >= 1000:
            out.append((r["peak_rss_mb"] <= 200, f"{name}: peak RSS {r['peak_rss_mb']:.0f} MB (≤ 200)"))
            out.append((None, f"{name}: CPU per answer {r['cpu_per_answer'] * 1000:.1f} ms "
                              f"(direct client {r['direct_cpu_per_answer'] * 1000:.1f} ms)"))
    kb = (results.get("extras") or {}).get("kb") or {}
    for where in ("slack", "telegram", "cli"):
        item = kb.get(where) or {}
        if "growth_mb" in item:
            out.append((item["growth_mb"] <= 10, f"15 MB /kb add ({where}): RSS growth {item['growth_mb']:.1f} MB (≤ 10)"))
    if results.get("full_run") and "total_s" in results:
        out.append((results["total_s"] <= 300, f"whole run {results['total_s']:.0f} s (≤ 300 on 2 cores)"))
    return out


def targets_text(results: dict[str, Any]) -> str:
    lines = ["", "Targets (issue 6; reported, not asserted):"]
    lines += [f"  ✗ {f['name']}: did not run to the end: {f['error']}" for f in results.get("failed", [])]
    lines += [f"  {_mark(ok)} {text}" for ok, text in target_lines(results)]
    return "\n".join(lines)


def _load(value: Any) -> str:
    return f"{value[0]:.1f}" if isinstance(value, (list, tuple)) and value else "unknown"


def readme_section(results: dict[str, Any]) -> str:
    """The README "Performance" section for these results."""
    m = results["machine"]
    shape = results["answer_shape"]
    sc = results["scales"]
    return "\n".join([
        "## Performance",
        "",
        "Measured with the benchmark in `bench/` (not part of the test suite):",
        "",
        "```",
        ".venv/bin/python -m bench            # about 4 minutes on 2 cores; --quick for 1 and 10 only",
        "```",
        "",
        f"It starts the real `dify-bridge serve` as its own process against loopback fakes of Dify, Slack and "
        f"Telegram (the fakes enforce the platforms' rate limits and answer 429), drives it with signed Slack "
        f"events and Telegram webhook updates, one conversation per channel/chat, and compares it with a direct "
        f"httpx client reading the same fake Dify stream in the same run. Fake Dify: first token after "
        f"{shape['ttft_s'] * 1000:.0f} ms, {shape['tokens']} tokens {shape['gap_s'] * 1000:.0f} ms apart.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['os']}. "
        f"Run {results.get('started', '')}, {results.get('total_s', 0):.0f} s in total; load average "
        f"{_load(m.get('loadavg_at_start'))} at the start (other work on the machine adds noise). "
        f"Every number, with per-platform splits and where the latency goes, is in `bench/results.json`.",
        "",
        table(results),
        "",
        "Columns: *first sign of life* = event sent → the bot's first write in that thread/chat (status, "
        "placeholder, typing, draft or text); *added first-visible* = event sent → first write carrying answer "
        "text, minus the direct client's median time to first token at the same concurrency; "
        "*final-visible* = Dify's `message_end` → the write after which the platform shows the complete answer; "
        "*ideal* = what the platform budgets allow for the writes each answer's ending needs (see "
        "`bench/ideal.py`; under load Slack answers that never started a stream end with one "
        "`chat.postMessage`, whose per-channel budget never binds, hence ideals near 0); CPU = bridge "
        "process user+system time per answer; RSS = bridge peak (VmHWM). Latencies p50 / p95 / p99 in ms.",
        "",
        f"Budgets: 1 and 10 conversations run with the platforms' real windows. 100 and 1,000 conversations in one "
        f"workspace / one bot make the budgets bind, and Slack's real windows (e.g. 20 `chat.stopStream` per "
        f"minute per workspace) would make 1,000 answers take ~50 minutes: there every Slack window is divided by "
        f"{sc['slack']:g} in the fake *and* in the bridge (`SLACK_LIMITS`), Telegram's by {sc['telegram']:g} "
        f"(`TELEGRAM_LIMITS`); the ideal is computed from the same scaled windows. A budget-bound latency of "
        f"X s there corresponds to about {sc['slack']:g}·X s with Slack's real budgets.",
        "",
        extras_text(results),
    ])
