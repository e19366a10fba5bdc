"""From the answers of one scenario to the numbers in the table and the JSON."""

from __future__ import annotations

from typing import Any

from bench.direct import DirectRun
from bench.ideal import Budget, ideal_endings
from bench.report import triple
from bench.watch import Answer


def answer_metrics(answers: list[Answer], run: DirectRun, budgets: dict[str, Budget] | None) -> dict[str, Any]:
    """Latencies, writes and endings of `answers`; `budgets` (binding scenarios) adds the ideal."""
    d_ttft = triple([s.ttft for s in run.samples])
    visible = [a.first_text - a.sent for a in answers if a.first_text and a.sent]
    first = triple(visible)
    limit = d_ttft["p50"] or 0.0  # the direct client's median time to first token at this concurrency
    ideal = None
    if budgets is not None:
        ends = ideal_endings(answers, budgets)
        ideal = triple([max(0.0, t - (answers[i].dify_end or t)) for i, t in ends.items()])
    methods: dict[str, int] = {}
    for a in answers:
        for m, c in (a.methods or {}).items():
            methods[m] = methods.get(m, 0) + c
    n = len(answers)
    return {
        "answers": n,
        "first_life": triple([a.first_life - a.sent for a in answers if a.first_life and a.sent]),
        "first_visible": first,
        "added_first_visible": triple([v - limit for v in visible]),
        "final_visible": triple([a.complete - a.dify_end for a in answers if a.complete and a.dify_end]),
        "ideal_final": ideal,
        "ack": triple([a.acked - a.sent for a in answers if a.acked and a.sent]),
        # where added first-visible latency lives: before the Dify request, and after Dify's first delta
        "event_to_dify_request": triple([a.dify_request - a.sent for a in answers if a.dify_request and a.sent]),
        "first_delta_to_visible": triple([a.first_text - a.dify_first_delta for a in answers
                                          if a.first_text and a.dify_first_delta]),
        "ack_errors": sum(1 for a in answers if a.ack_status != 200),
        "writes_per_answer": sum(a.writes for a in answers) / n if n else 0.0,
        "writes_by_method": {m: c / n for m, c in sorted(methods.items())} if n else {},
        "ratelimited": sum(a.ratelimited for a in answers),
        "incomplete": sum(1 for a in answers if a.complete is None),
        "no_sign_of_life": sum(1 for a in answers if a.first_life is None),
    }


def summarize(spec: Any, answers: list[Answer], run: DirectRun, budgets: dict[str, Budget], cpu0: float,
              cpu1: float, hwm: float, elapsed: float) -> dict[str, Any]:
    binding = spec.concurrency >= 100
    n = len(answers)
    out: dict[str, Any] = {
        "name": spec.name, "mix": spec.mix, "concurrency": spec.concurrency, "rounds": spec.rounds,
        "budgets": spec.budgets_label, "slack_scale": spec.slack_scale, "telegram_scale": spec.telegram_scale,
        "binding": binding,
        "direct_ttft": triple([s.ttft for s in run.samples]), "direct_total": triple([s.total for s in run.samples]),
        **answer_metrics(answers, run, budgets if binding else None),
        "cpu_seconds": cpu1 - cpu0, "cpu_per_answer": (cpu1 - cpu0) / n if n else 0.0,
        "direct_cpu_per_answer": run.cpu_per_answer,
        "peak_rss_mb": hwm, "elapsed_s": elapsed,
    }
    if spec.mix == "mixed":
        out["by_platform"] = {
            p: answer_metrics([a for a in answers if a.platform == p], run, budgets if binding else None)
            for p in ("slack", "telegram")}
    return out
