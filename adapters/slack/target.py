"""Where an answer goes, and what Slack allowed there: targets, refusals remembered per channel type."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .pacing import SlackWriter

log = logging.getLogger("adapters.slack")

REFUSAL_TTL = 3600.0  # re-try a refused feature after an hour (plans and scopes change)
# Errors that say nothing about whether streaming is allowed: don't remember them as refusals.
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
                       "channel_not_found", "not_in_channel", "is_archived", "msg_too_long"})
NOT_STREAMING = frozenset({"message_not_in_streaming_state", "stopped_by_user"})


class Refusals:
    """Features Slack refused, per workspace and channel type ("stream", "status")."""

    def __init__(self, ttl: float = REFUSAL_TTL) -> None:
        self.ttl = ttl
        self._until: dict[tuple[str, str, str], float] = {}

    def refused(self, team: str, channel_type: str, feature: str) -> bool:
        return self._until.get((team, channel_type, feature), 0.0) > time.monotonic()

    def remember(self, team: str, channel_type: str, feature: str, error: str) -> None:
        log.info("Slack refused %s in %s channels of %s (%s); not trying again for %.0f s",
                 feature, channel_type, team, error, self.ttl)
        self._until[(team, channel_type, feature)] = time.monotonic() + self.ttl


@dataclass(frozen=True)
class Target:
    """Where an answer goes."""

    team: str
    channel: str
    channel_type: str  # "im", "channel", "group" or "mpim"
    thread_ts: str | None  # None: the top level of a DM
    user: str | None = None  # who asked (recipient of a channel stream)
    user_team: str | None = None


@dataclass
class SinkEnv:
    """What every sink of one adapter shares."""

    writer: SlackWriter
    refusals: Refusals = field(default_factory=Refusals)
    stream_mode: str = "auto"  # auto | native | update
