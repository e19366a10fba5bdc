"""Slack for the bridge: events, threads and DMs with streamed answers (see adapter.py)."""

from .adapter import SlackAdapter

__all__ = ["SlackAdapter"]
