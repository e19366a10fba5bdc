"""`dify-bridge doctor`: one line per check, ✓ or ✗ with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from storage import Repository

from .config import Settings
from .dify import (
    DifyAuthError,
    DifyClient,
    DifyDatasetAPIDisabled,
    DifyDatasetNotFound,
    DifyError,
    DifyNotFound,
    DifyTransportError,
    DifyWrongBaseURL,
)
from .inputs import merge_inputs

CHAT_MODES = {"chat", "agent-chat", "advanced-chat", "agent"}


@dataclass(frozen=True)
class Check:
    ok: bool
    label: str
    fix: str = ""

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        return f"{mark} {self.label}" + (f"\n    fix: {self.fix}" if self.fix and not self.ok else "")


async def check_database(settings: Settings) -> Check:
    try:
        repo = await Repository.open(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return Check(False, f"Database: cannot open or migrate ({type(exc).__name__}: {str(exc)[:200]})",
                     "check DATABASE_URL and that the database server is reachable")
    try:
        ok = await repo.ping()
        rev = await repo.migration_revision()
    finally:
        await repo.close()
    if not ok:
        return Check(False, "Database: not reachable", "check DATABASE_URL")
    return Check(True, f"Database: reachable, migrated (revision {rev})")


def _dify_problem(exc: DifyError, what: str, key_var: str) -> Check:
    if isinstance(exc, DifyWrongBaseURL):
        return Check(False, f"{what}: {exc.message}", "set DIFY_API_URL to the API base, e.g. https://your-dify-host/v1")
    if isinstance(exc, DifyAuthError):
        return Check(False, f"{what}: the key was refused (401)",
                     f"copy the key from Dify (app → API Access, or Knowledge → API) into {key_var}")
    if isinstance(exc, DifyTransportError):
        return Check(False, f"{what}: cannot connect ({exc.message})",
                     "check DIFY_API_URL and that this machine can reach Dify")
    return Check(False, f"{what}: Dify answered {exc}", "see the Troubleshooting section of README.md")


async def check_dify(settings: Settings, client: DifyClient) -> list[Check]:
    if settings.dify_api_key is None:
        return [Check(False, "Dify app key: DIFY_API_KEY is not set", "set DIFY_API_KEY=app-… (app → API Access)")]
    checks: list[Check] = []
    try:
        params = await client.parameters()
    except DifyError as exc:
        return [_dify_problem(exc, f"Dify at {settings.dify_api_url}", "DIFY_API_KEY")]
    checks.append(Check(True, f"Dify at {settings.dify_api_url}: answers JSON; the app key works"))
    _, missing = merge_inputs(params, dict(settings.dify_inputs))
    if missing:
        names = ", ".join(missing)
        checks.append(Check(False, f"App inputs: required input(s) without a value: {names}",
                            f'set DIFY_INPUTS, e.g. DIFY_INPUTS={{"{missing[0]}": "…"}}'))
    else:
        checks.append(Check(True, "App inputs: every required input has a value"))
    try:
        info = await client.info()
    except DifyError as exc:
        checks.append(_dify_problem(exc, "Dify app info", "DIFY_API_KEY"))
        return checks
    mode = info.get("mode")
    name = info.get("name", "?")
    if mode is None:
        checks.append(Check(True, f"App {name!r}: type not reported by this Dify version (before 1.0); chat will tell"))
    elif mode in CHAT_MODES:
        checks.append(Check(True, f"App {name!r}: a {mode} app, can chat"))
    else:
        checks.append(Check(False, f"App {name!r}: a {mode} app, which cannot chat",
                            "create the key in a Chatbot, Agent or Chatflow app; completion and workflow apps have no conversations"))
    return checks


async def check_dataset(settings: Settings, client: DifyClient) -> list[Check]:
    if settings.dify_dataset_api_key is None and settings.dify_dataset_id is None:
        return []
    if settings.dify_dataset_api_key is None:
        return [Check(False, "Knowledge: DIFY_DATASET_ID is set but DIFY_DATASET_API_KEY is not",
                      "set DIFY_DATASET_API_KEY=dataset-… (Knowledge → API)")]
    if settings.dify_dataset_id is None:
        return [Check(False, "Knowledge: DIFY_DATASET_API_KEY is set but DIFY_DATASET_ID is not",
                      "set DIFY_DATASET_ID to the knowledge base id from its URL in Dify")]
    try:
        await client.list_documents(settings.dify_dataset_id, limit=1)
    except DifyDatasetAPIDisabled:
        return [Check(False, "Knowledge: the API is disabled for this knowledge base",
                      "enable API access in the knowledge base's settings in Dify")]
    except (DifyDatasetNotFound, DifyNotFound):
        return [Check(False, f"Knowledge: no knowledge base {settings.dify_dataset_id}",
                      "copy the id from the knowledge base's URL into DIFY_DATASET_ID")]
    except DifyError as exc:
        return [_dify_problem(exc, "Knowledge", "DIFY_DATASET_API_KEY")]
    return [Check(True, f"Knowledge: key works, knowledge base {settings.dify_dataset_id} reachable")]


async def platform_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    if settings.slack_enabled:
        from adapters.slack.checks import check_slack

        checks.append(await check_slack(settings))
    if settings.telegram_enabled:
        from adapters.telegram.checks import check_telegram

        checks.append(await check_telegram(settings))
    if not checks:
        checks.append(Check(False, "Platforms: neither Slack nor Telegram is configured",
                            "set SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN), and/or TELEGRAM_BOT_TOKEN"))
    return checks


async def run_doctor(settings: Settings, out: TextIO, client: DifyClient | None = None) -> int:
    from .app import make_dify_client

    own = client is None
    client = client or make_dify_client(settings, max_attempts=1)
    checks = [Check(True, "Configuration: loaded")]
    try:
        checks.append(await check_database(settings))
        checks.extend(await check_dify(settings, client))
        checks.extend(await check_dataset(settings, client))
        checks.extend(await platform_checks(settings))
    finally:
        if own:
            await client.aclose()
    for check in checks:
        out.write(check.line() + "\n")
    failed = sum(not c.ok for c in checks)
    out.write(f"\n{'all checks passed' if not failed else f'{failed} check(s) failed'}\n")
    return 1 if failed else 0
