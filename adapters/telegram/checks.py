"""`doctor` check for Telegram: `getMe` with the bot token against TELEGRAM_API_URL."""

from __future__ import annotations

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bots.config import Settings
from bots.doctor import Check


async def check_telegram(settings: Settings) -> Check:
    assert settings.telegram_bot_token is not None
    root = settings.telegram_api_url
    bot = Bot(settings.telegram_bot_token.get_secret_value(), base_url=f"{root}/bot", base_file_url=f"{root}/file/bot")
    try:
        async with bot:
            me = bot.bot
    except InvalidToken:
        return Check(False, "Telegram: getMe refused the token",
                     "copy the token @BotFather gave you into TELEGRAM_BOT_TOKEN")
    except TelegramError as exc:
        return Check(False, f"Telegram: cannot reach {root} ({type(exc).__name__})",
                     "check TELEGRAM_API_URL and the network")
    mode = "webhook" if settings.telegram_webhook_url else "long polling"
    return Check(True, f"Telegram: connected as @{me.username} ({mode})")
