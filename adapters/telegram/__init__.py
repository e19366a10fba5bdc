"""Telegram for the bridge: private chats, groups and forum topics with streamed answers (see adapter.py)."""

from .adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
