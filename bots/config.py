"""Settings from the environment and `.env` (pydantic-settings).

Every mistake is reported as one line naming the variable, what is wrong and a valid example.
Secrets are `SecretStr`, so printing the settings never shows them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from .access import AccessList

EXAMPLES: dict[str, str] = {
    "DIFY_API_URL": "DIFY_API_URL=https://api.dify.ai/v1",
    "DIFY_API_KEY": "DIFY_API_KEY=app-xxxxxxxxxxxxxxxxxxxxxxxx",
    "DIFY_INPUTS": 'DIFY_INPUTS={"language": "English"}',
    "DIFY_DATASET_API_KEY": "DIFY_DATASET_API_KEY=dataset-xxxxxxxxxxxxxxxxxxxxxxxx",
    "DIFY_DATASET_ID": "DIFY_DATASET_ID=3f0c7c1e-8a55-4d07-9f35-5a4f0c1d2e3b",
    "SLACK_BOT_TOKEN": "SLACK_BOT_TOKEN=xoxb-1234-5678-abcdef",
    "SLACK_SIGNING_SECRET": "SLACK_SIGNING_SECRET=8f14e45fceea167a5a36dedd4bea2543",
    "SLACK_APP_TOKEN": "SLACK_APP_TOKEN=xapp-1-A0123-4567-abcdef",
    "SLACK_API_URL": "SLACK_API_URL=https://slack.com/api/",
    "SLACK_STREAM_MODE": "SLACK_STREAM_MODE=auto   (auto | native | update)",
    "TELEGRAM_BOT_TOKEN": "TELEGRAM_BOT_TOKEN=123456789:AAE-example-token",
    "TELEGRAM_API_URL": "TELEGRAM_API_URL=https://api.telegram.org",
    "TELEGRAM_WEBHOOK_URL": "TELEGRAM_WEBHOOK_URL=https://bridge.example.com/telegram/webhook",
    "TELEGRAM_WEBHOOK_SECRET": "TELEGRAM_WEBHOOK_SECRET=a-long-random-string_0123456789",
    "TELEGRAM_STREAM_MODE": "TELEGRAM_STREAM_MODE=auto   (auto | draft | edit)",
    "DATABASE_URL": "DATABASE_URL=sqlite+aiosqlite:///data/dify-bridge.db",
    "HOST": "HOST=0.0.0.0",
    "PORT": "PORT=3000",
    "ALLOWED_USERS": "ALLOWED_USERS=slack:U012AB3CD,telegram:123456789",
    "KB_WRITERS": "KB_WRITERS=slack:U012AB3CD,telegram:123456789   (or * for everyone)",
    "LOG_LEVEL": "LOG_LEVEL=INFO",
    "LOG_FORMAT": "LOG_FORMAT=text   (text | json)",
}

_ENDPOINT_TAIL = re.compile(
    r"/(chat-messages|completion-messages|workflows|messages|conversations|files|parameters|info|meta|datasets|audio-to-text|text-to-audio)(/.*)?$"
)


class ConfigError(ValueError):
    """Configuration is invalid; `str()` is a list of `VARIABLE: problem (e.g. VAR=value)` lines."""


def normalize_dify_url(url: str) -> str:
    """Normalize every accepted form of the Dify API base to `<scheme>://<host>[/prefix]/v1`."""
    url = url.strip()
    if not url:
        raise ValueError("is empty")
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    path = re.sub(r"/+", "/", parts.path).rstrip("/")
    path = _ENDPOINT_TAIL.sub("", path) if "/v1" in path else path
    if path.endswith("/v1"):
        pass
    elif "/v1/" in path:
        path = path[: path.index("/v1/") + 3]
    else:
        path = _ENDPOINT_TAIL.sub("", path) + "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, frozen=True
    )

    dify_api_url: str = Field("https://api.dify.ai/v1", alias="DIFY_API_URL")
    dify_api_key: SecretStr | None = Field(None, alias="DIFY_API_KEY")
    dify_inputs: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict, alias="DIFY_INPUTS")
    dify_dataset_api_key: SecretStr | None = Field(None, alias="DIFY_DATASET_API_KEY")
    dify_dataset_id: str | None = Field(None, alias="DIFY_DATASET_ID")
    dify_connect_timeout: float = Field(10.0, alias="DIFY_CONNECT_TIMEOUT", gt=0)
    dify_read_timeout: float = Field(60.0, alias="DIFY_READ_TIMEOUT", gt=0)
    dify_max_attempts: int = Field(4, alias="DIFY_MAX_ATTEMPTS", ge=1, le=10)

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    slack_stream_mode: Literal["auto", "native", "update"] = Field("auto", alias="SLACK_STREAM_MODE")
    slack_ignore_bots: bool = Field(True, alias="SLACK_IGNORE_BOTS")
    slack_limits: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict, alias="SLACK_LIMITS")

    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_URL")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_stream_mode: Literal["auto", "draft", "edit"] = Field("auto", alias="TELEGRAM_STREAM_MODE")
    telegram_local_api: bool = Field(False, alias="TELEGRAM_LOCAL_API")
    telegram_limits: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict, alias="TELEGRAM_LIMITS")

    database_url: str = Field("sqlite+aiosqlite:///data/dify-bridge.db", alias="DATABASE_URL")
    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(3000, alias="PORT", ge=1, le=65535)
    allowed_users: Annotated[AccessList, NoDecode] = Field(default_factory=lambda: AccessList.parse(""), alias="ALLOWED_USERS")
    kb_writers: Annotated[AccessList, NoDecode] = Field(default_factory=lambda: AccessList.parse(""), alias="KB_WRITERS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    shutdown_grace_seconds: float = Field(20.0, alias="SHUTDOWN_GRACE_SECONDS", ge=0)
    bridge_config: str | None = Field(None, validation_alias=AliasChoices("BRIDGE_CONFIG"))

    kb_max_file_mb: float = Field(15.0, alias="KB_MAX_FILE_MB", gt=0)
    kb_extensions: str = Field(
        "txt,markdown,md,mdx,pdf,html,htm,xlsx,xls,docx,csv,vtt,properties", alias="KB_EXTENSIONS"
    )
    kb_indexing_technique: Literal["high_quality", "economy"] | None = Field(None, alias="KB_INDEXING_TECHNIQUE")
    kb_process_rule: Annotated[dict[str, Any], NoDecode] = Field(default_factory=lambda: {"mode": "automatic"}, alias="KB_PROCESS_RULE")
    kb_doc_form: str | None = Field(None, alias="KB_DOC_FORM")
    kb_doc_language: str | None = Field(None, alias="KB_DOC_LANGUAGE")
    kb_poll_timeout: float = Field(600.0, alias="KB_POLL_TIMEOUT", gt=0)

    @field_validator("dify_api_url", mode="before")
    @classmethod
    def _norm_dify_url(cls, v: Any) -> str:
        return normalize_dify_url(str(v))

    @field_validator("slack_api_url", mode="before")
    @classmethod
    def _norm_slack_url(cls, v: Any) -> str:
        v = str(v).strip()
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/") + "/"

    @field_validator("telegram_api_url", mode="before")
    @classmethod
    def _norm_tg_url(cls, v: Any) -> str:
        v = str(v).strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.removesuffix("/bot")

    @field_validator("dify_inputs", "kb_process_rule", "slack_limits", "telegram_limits", mode="before")
    @classmethod
    def _json_object(cls, v: Any) -> Any:
        if isinstance(v, str):
            if not v.strip():
                return {}
            try:
                v = json.loads(v)
            except ValueError as exc:
                raise ValueError(f"is not valid JSON ({exc.msg})") from None
        if not isinstance(v, dict):
            raise ValueError("must be a JSON object")
        return v

    @field_validator("allowed_users", "kb_writers", mode="before")
    @classmethod
    def _access(cls, v: Any) -> AccessList:
        return v if isinstance(v, AccessList) else AccessList.parse(str(v or ""))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return str(v).upper() if isinstance(v, str) else v

    @field_validator("dify_api_key")
    @classmethod
    def _app_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().startswith("dataset-"):
            raise ValueError("is a knowledge (dataset-…) key; use the app's API key (app-…)")
        return v

    @field_validator("dify_dataset_api_key")
    @classmethod
    def _dataset_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().startswith("app-"):
            raise ValueError("is an app key (app-…); use a knowledge API key (dataset-…)")
        return v

    @field_validator("slack_bot_token")
    @classmethod
    def _xoxb(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _xapp(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp- (with connections:write)")
        return v

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _tg_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return v

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite or postgresql URL")
        return v

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_app_token):
            raise ValueError(
                "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN for the Events API "
                f"(or set SLACK_APP_TOKEN for Socket Mode) (e.g. {EXAMPLES['SLACK_SIGNING_SECRET']})"
            )
        if (self.slack_signing_secret or self.slack_app_token) and not self.slack_bot_token:
            raise ValueError(f"SLACK_BOT_TOKEN: required to use Slack (e.g. {EXAMPLES['SLACK_BOT_TOKEN']})")
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET: required with TELEGRAM_WEBHOOK_URL so forged updates are "
                f"refused (e.g. {EXAMPLES['TELEGRAM_WEBHOOK_SECRET']})"
            )
        return self

    # ---------------------------------------------------------------- helpers

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        values = [
            self.dify_api_key,
            self.dify_dataset_api_key,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.telegram_bot_token,
            self.telegram_webhook_secret,
        ]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def _alias_for(field: str) -> str:
    info = Settings.model_fields.get(field)
    return (info.alias if info and info.alias else field).upper()


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc:  # model-level check: message already names the variable
            lines.append(msg)
            continue
        var = _alias_for(loc[0]) if loc[0] in Settings.model_fields else loc[0].upper()
        example = EXAMPLES.get(var)
        lines.append(f"{var}: {msg}" + (f" (e.g. {example})" if example else ""))
    return "\n".join(lines)


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | None = ".env") -> Settings:
    """Load settings from `environ` (default: the process environment) plus `env_file`."""
    try:
        if environ is None:
            return Settings(_env_file=env_file)  # type: ignore[call-arg]
        known = {_alias_for(name) for name in Settings.model_fields}
        values = {k: v for k, v in environ.items() if k in known and v != ""}
        return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
