"""`doctor` check for Slack: `auth.test` with the bot token against SLACK_API_URL."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.config import Settings
from bots.doctor import Check


async def check_slack(settings: Settings) -> Check:
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=10
    )
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "error") if exc.response is not None else "error"
        return Check(False, f"Slack: auth.test failed ({error})",
                     "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into SLACK_BOT_TOKEN")
    except Exception as exc:  # noqa: BLE001
        return Check(False, f"Slack: cannot reach {settings.slack_api_url} ({type(exc).__name__})",
                     "check SLACK_API_URL and the network")
    mode = "Socket Mode" if settings.slack_app_token else "Events API at /slack/events"
    return Check(True, f"Slack: connected as @{auth.get('user')} in {auth.get('team')} ({mode})")
