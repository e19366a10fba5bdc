"""How an answer looks in Slack: no pings, a stable streaming prefix, parts, markdown blocks.

Answer text can never ping anyone: `<!here>`, `<!channel>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`
and the plain words `@here`, `@channel`, `@everyone` get a zero-width space after their `<` or `@`,
so Slack shows them as text. The change is local (it only looks a few characters ahead), so
`neutralize(stable_prefix(t))` only ever grows as `t` grows: a native stream can append it.
"""

from __future__ import annotations

import re

from adapters.shared.render import split_markdown, with_footer

PART_LIMIT = 12_000  # markdown blocks per message, markdown_text per call, a stream's total text
FOOTER_ROOM = 400  # kept free in every part for a "stopped: …" footer
SPLIT_LIMIT = PART_LIMIT - FOOTER_ROOM
TEXT_FALLBACK_LIMIT = 3_900  # the plain `text` that goes with blocks (notifications, old clients)

ZWSP = "\u200b"
_PING = re.compile(r"<(?=@[UW]|!(?:here|channel|everyone|subteam))|(?<![\w.+-])@(?=here|channel|everyone)",
                   re.IGNORECASE)
_PING_HEADS = ("<@u", "<@w", "<!here", "<!channel", "<!everyone", "<!subteam", "@here", "@channel", "@everyone")
_LONGEST_HEAD = max(map(len, _PING_HEADS))


def neutralize(text: str) -> str:
    """The text with every mass mention and user mention made inert."""
    return _PING.sub(lambda m: m.group(0) + ZWSP, text)


def stable_prefix(text: str) -> str:
    """`text` without a tail that could still become a mention once more text arrives."""
    cut = len(text)
    for k in range(1, min(_LONGEST_HEAD, len(text)) + 1):
        tail = text[-k:].lower()
        if any(head != tail and head.startswith(tail) for head in _PING_HEADS):
            cut = len(text) - k
    return text[:cut]


def split_parts(text: str) -> list[str]:
    """One part per Slack message, split at paragraph or code-block boundaries."""
    return split_markdown(text, SPLIT_LIMIT) if text else [""]


def final_parts(text: str, footer: str | None = None) -> list[str]:
    """The finished answer as message parts, the footer (if any) closing the last one."""
    parts = split_parts(neutralize(text))
    if footer:
        parts[-1] = with_footer(parts[-1], footer)
    return parts


def plain_fallback(markdown: str) -> str:
    """The `text` sent along with markdown blocks: escaped for mrkdwn and short."""
    text = markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(text) > TEXT_FALLBACK_LIMIT:
        text = text[: TEXT_FALLBACK_LIMIT - 1].rstrip() + "…"
    return text or " "


def final_payload(part: str) -> dict[str, object]:
    """Arguments for a finished message: one `markdown` block plus the plain fallback."""
    return {"blocks": [{"type": "markdown", "text": part}], "text": plain_fallback(part)}
