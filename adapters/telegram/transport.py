"""How updates reach the adapter: the webhook route on the bridge's server, or a getUpdates loop.

Both hand every update to `receive(update)`, which claims its `update_id` durably and then lets
the PTB `Application` process it. The webhook answers 200 only after the claim, so an update is
never acknowledged before it is recorded; 503 while the bridge is starting or draining (Telegram
delivers it again later). The polling loop confirms an update (the next `offset`) only after it was
received, stops fetching when the engine stops accepting work, and leaves unprocessed updates
unconfirmed, so a restart gets them again and the claims answer each one once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut

from .writer import retry_seconds

log = logging.getLogger("adapters.telegram.transport")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message"]
POLL_TIMEOUT = 25  # seconds one getUpdates long poll may wait (Telegram allows up to 50)
MAX_BACKOFF = 30.0

Receive = Callable[[Update], Awaitable[None]]


def webhook_handler(secret: str, bot: Bot, receive: Receive,
                    accepting: Callable[[], bool]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`POST /telegram/webhook`: constant-time secret check, then `receive`."""
    expected = secret.encode()

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return web.Response(status=401, text="missing secret token")
        if not hmac.compare_digest(given.encode(), expected):
            log.warning("Telegram webhook: wrong secret token from %s", request.remote)
            return web.Response(status=403, text="wrong secret token")
        if not accepting():
            return web.Response(status=503, text="not accepting updates right now")
        try:
            update = Update.de_json(await request.json(), bot)
        except Exception:  # noqa: BLE001 - not JSON, or not an Update
            return web.Response(status=400, text="not a Telegram update")
        if update is None:
            return web.Response(status=400, text="not a Telegram update")
        try:
            await receive(update)
        except Exception:  # noqa: BLE001 - e.g. the database is down: Telegram delivers it again
            log.exception("Telegram update %s could not be received", update.update_id)
            return web.Response(status=500, text="try again later")
        return web.Response(text="ok")

    return handle


async def poll(bot: Bot, receive: Receive, accepting: Callable[[], bool]) -> None:
    """Long polling until `accepting()` turns False or the task is cancelled."""
    offset: int | None = None
    backoff = 1.0
    while accepting():
        try:
            updates = await bot.get_updates(offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES)
        except InvalidToken:
            log.error("Telegram refused the bot token; polling stopped (check TELEGRAM_BOT_TOKEN)")
            return
        except TimedOut:
            continue
        except RetryAfter as exc:
            await asyncio.sleep(retry_seconds(exc))
            continue
        except (Conflict, TelegramError) as exc:
            log.warning("Telegram getUpdates failed (%s); trying again in %.0f s", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        backoff = 1.0
        for update in updates:
            if not accepting():
                return  # left unconfirmed: delivered again after the restart
            try:
                await receive(update)
            except Exception:  # noqa: BLE001 - not confirmed, so fetched and tried again
                log.exception("Telegram update %s could not be received", update.update_id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                break
            offset = update.update_id + 1
