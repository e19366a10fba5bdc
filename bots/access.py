"""Allow-lists in the contract's syntax: `slack:<user_id>,telegram:<user_id>` or `*`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessList:
    entries: frozenset[str]
    everyone: bool
    raw: str

    @classmethod
    def parse(cls, text: str) -> AccessList:
        items = {part.strip() for part in text.split(",") if part.strip()}
        for item in items - {"*"}:
            platform, _, user = item.partition(":")
            if platform not in ("slack", "telegram", "console") or not user:
                raise ValueError(f"entry {item!r} must look like slack:<user_id>, telegram:<user_id> or *")
        return cls(entries=frozenset(items - {"*"}), everyone="*" in items, raw=text)

    @property
    def empty(self) -> bool:
        return not self.entries and not self.everyone

    def allows(self, platform: str, user_id: str) -> bool:
        """True when `platform:user_id` is listed (or `*`). An empty list allows nobody."""
        return self.everyone or f"{platform}:{user_id}" in self.entries

    def __str__(self) -> str:
        return self.raw
