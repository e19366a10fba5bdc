"""Update delivery of the fake Bot API: getUpdates long polling and webhooks.

Follows tdlib/telegram-bot-api 10.0 (`Client::process_get_updates_query`,
`do_set_webhook`): `offset` confirms earlier updates (a negative one keeps only the last
-offset), `limit` is clamped to 1..100 and `timeout` to 0..50 s, `allowed_updates`
filters updates created after the call, a new getUpdates ends a waiting one with 409, and
getUpdates while a webhook is set is a 409 Conflict. With a webhook set, pushed updates
are POSTed to it in order with `X-Telegram-Bot-Api-Secret-Token`, one at a time
(`max_connections` is recorded, not simulated); a non-2xx answer is retried twice, then
the update stays pending until the next push.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any

import aiohttp

from tests.fakes.fake_telegram_models import ApiError
from tests.fakes.fake_telegram_text import bad_request

# Left out when allowed_updates is empty or was never given (Bot API docs).
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_MESSAGE_KEYS = ("message", "edited_message", "channel_post", "edited_channel_post", "business_message")
_SECRET = re.compile(r"[A-Za-z0-9_-]*")
WEBHOOK_ATTEMPTS = 3


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def update_type(update: dict) -> str:
    """The update's kind: its one key besides update_id."""
    return next((key for key in update if key != "update_id"), "")


class UpdateMethods:
    """Mixin of FakeTelegram: the update queue, getUpdates and the webhook methods."""

    webhook: dict | None
    allowed_updates: list[str] | None
    webhook_deliveries: list[dict]
    polls_waiting: int
    _updates: list[dict]
    _cond: asyncio.Condition
    _closing: bool
    _poll_generation: int
    _last_update_id: int
    _delivery: asyncio.Task | None
    _webhook_error: tuple[int, str] | None
    _background: set[asyncio.Task]
    _http: aiohttp.ClientSession | None
    _chat_info: dict[int, dict]
    _seen: dict[tuple[int, int], dict]
    _last_ids: dict[int, int]

    UPDATE_METHODS = {"getUpdates": "api_get_updates", "setWebhook": "api_set_webhook",
                      "deleteWebhook": "api_delete_webhook", "getWebhookInfo": "api_get_webhook_info"}

    # ------------------------------------------------------------------ queue

    def push_update(self, update: dict) -> None:
        """Queues an update (gives it an update_id if it has none) for getUpdates or the webhook."""
        update = copy.deepcopy(update)
        if not isinstance(update.get("update_id"), int):
            update["update_id"] = self._last_update_id + 1
        self._last_update_id = max(self._last_update_id, update["update_id"])
        self._observe(update)
        if self._is_allowed(update):
            self._updates.append(update)
            self._updates.sort(key=lambda u: u["update_id"])
        self._notify_soon()
        if self.webhook:
            self._start_delivery()

    def _is_allowed(self, update: dict) -> bool:
        kind = update_type(update)
        return kind in self.allowed_updates if self.allowed_updates else kind not in NOT_BY_DEFAULT

    def _observe(self, update: dict) -> None:
        """Remembers chats and user messages so replies and ids look like Telegram's."""
        messages = [update[key] for key in _MESSAGE_KEYS if isinstance(update.get(key), dict)]
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("message"), dict):
            messages.append(query["message"])
        for message in messages + [m["reply_to_message"] for m in messages if "reply_to_message" in m]:
            chat = message.get("chat")
            if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
                continue
            self._chat_info[chat["id"]] = chat
            if isinstance(message.get("message_id"), int):
                self._seen.setdefault((chat["id"], message["message_id"]), message)
                self._last_ids[chat["id"]] = max(self._last_ids.get(chat["id"], 0), message["message_id"])

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    def _set_allowed(self, p: dict) -> None:
        if "allowed_updates" in p:
            value = p["allowed_updates"]
            self.allowed_updates = [str(v) for v in value] if isinstance(value, list) and value else None

    def _notify_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._notify())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    def _notify_locked(self) -> None:
        self._cond.notify_all()

    # ------------------------------------------------------------------ methods

    async def api_get_updates(self, p: dict, files: dict) -> list[dict]:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        limit = min(max(_int(p.get("limit"), 100), 1), 100)
        timeout = min(max(_int(p.get("timeout"), 0), 0), 50)
        self._set_allowed(p)
        self._confirm(_int(p.get("offset"), 0))
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._cond:
            self._cond.notify_all()  # an older long poll now ends with 409
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only "
                                        "one bot instance is running")
                if self.webhook:
                    raise ApiError(409, "Conflict: terminated by setWebhook request")
                remaining = deadline - loop.time()
                if self._updates or self._closing or remaining <= 0:
                    return copy.deepcopy(self._updates[:limit])
                self.polls_waiting += 1
                self._notify_locked()
                try:
                    await asyncio.wait_for(self._cond.wait(), remaining)
                except TimeoutError:
                    pass
                finally:
                    self.polls_waiting -= 1

    async def api_set_webhook(self, p: dict, files: dict) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return await self.api_delete_webhook(p, files)
        if not re.match(r"https?://[^/\s]+", url, re.IGNORECASE):
            raise bad_request("invalid webhook URL specified")
        secret = str(p.get("secret_token") or "")
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        if not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self._set_allowed(p)
        self.webhook = dict(p)
        self._webhook_error = None
        self._poll_generation += 1
        await self._notify()
        self._start_delivery()
        return True

    async def api_delete_webhook(self, p: dict, files: dict) -> bool:
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        if self._delivery is not None:
            self._delivery.cancel()
        return True

    async def api_get_webhook_info(self, p: dict, files: dict) -> dict:
        info: dict[str, Any] = {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                                "pending_update_count": len(self._updates)}
        if self.webhook:
            info["max_connections"] = _int(self.webhook.get("max_connections"), 40)
            if self.allowed_updates:
                info["allowed_updates"] = list(self.allowed_updates)
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    # ------------------------------------------------------------------ webhook delivery

    def _start_delivery(self) -> None:
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        while self.webhook and self._updates and not self._closing:
            update = self._updates[0]
            if not await self._post_update(self.webhook, update):
                return
            if self._updates and self._updates[0] is update:
                self._updates.pop(0)
            await self._notify()

    async def _post_update(self, hook: dict, update: dict) -> bool:
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]} if hook.get("secret_token") else {}
        assert self._http is not None
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            status, error = 0, ""
            try:
                async with self._http.post(hook["url"], json=update, headers=headers,
                                           timeout=aiohttp.ClientTimeout(total=10)) as response:
                    status = response.status
                    error = f"Wrong response from the webhook: {status} {response.reason}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}"
            self.webhook_deliveries.append({"update_id": update["update_id"], "status": status,
                                            "attempt": attempt, "time": time.monotonic()})
            await self._notify()
            if 200 <= status < 300:
                return True
            self._webhook_error = (int(time.time()), error)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(0.05 * attempt)  # Telegram backs off between attempts
        return False
