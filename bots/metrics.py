"""Prometheus metrics, on a registry owned by each running bridge (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.answers = Counter(
            "dify_bridge_answers_total", "Answers finished, by platform and outcome",
            ["platform", "outcome"], registry=self.registry,
        )
        self.errors = Counter(
            "dify_bridge_errors_total", "Errors met while answering, by kind", ["kind"], registry=self.registry
        )
        self.ttft = Histogram(
            "dify_bridge_dify_time_to_first_token_seconds", "Time from sending to Dify to the first answer text",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.duration = Histogram(
            "dify_bridge_dify_duration_seconds", "Time from sending to Dify to the end of the answer",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge(
            "dify_bridge_answers_in_flight", "Answers being written now", registry=self.registry
        )
        self.platform_writes = Counter(
            "dify_bridge_platform_writes_total", "Writes to a chat platform, by platform and method",
            ["platform", "method"], registry=self.registry,
        )
        self.platform_ratelimited = Counter(
            "dify_bridge_platform_ratelimited_total", "429 answers from a chat platform",
            ["platform"], registry=self.registry,
        )
