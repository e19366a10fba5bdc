"""Errors raised by the Dify client.

The tree follows what a caller decides, not Dify's codes one by one::

    DifyError                      base; .status .code .message .partial_answer
    ├── DifyTransportError         no usable answer (network, timeout); retried before the first byte
    │   └── DifyTimeout
    ├── DifyWrongBaseURL           an HTML / non-JSON answer: the URL is not the Service API (`…/v1`)
    └── DifyAPIError               Dify answered with its JSON envelope or an `error` stream event
        ├── DifyAuthError          401: bad, missing or wrong-kind key
        ├── DifyNotFound           404 not_found
        │   └── DifyConversationNotFound   the stored conversation is gone (self-heal)
        ├── DifyAppUnavailable     app broken / disabled / no model provider (tell an admin)
        ├── DifyWrongAppType       not_chat_app: completion / workflow app behind a chat key
        ├── DifyBusy               429 too_many_requests: concurrency limit, retry later
        ├── DifyQuotaExceeded      429 rate_limit_error, provider_quota_exceeded: do not retry
        ├── DifyModelError         the model call failed (completion_request_error, PluginInvokeError)
        ├── DifyWorkflowFailed     a chatflow's workflow_finished with status failed
        ├── DifyInvalidInput       400 invalid_param and other request problems
        ├── DifyKnowledgeError     knowledge-base specific problems (own subclasses)
        └── DifyServerError        5xx

`DifyError.mid_stream` is true when the error arrived after the stream had started; then
`partial_answer` holds the text already received.
"""

from __future__ import annotations


class DifyError(Exception):
    """Base of every error the Dify client raises."""

    kind = "error"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        partial_answer: str = "",
        mid_stream: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.partial_answer = partial_answer
        self.mid_stream = mid_stream
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [p for p in (str(self.status) if self.status else None, self.code) if p]
        head = f"[{' '.join(parts)}] " if parts else ""
        return f"{head}{self.message}"


class DifyTransportError(DifyError):
    kind = "transport"


class DifyTimeout(DifyTransportError):
    kind = "timeout"


class DifyWrongBaseURL(DifyError):
    kind = "wrong_base_url"


class DifyAPIError(DifyError):
    kind = "api"


class DifyAuthError(DifyAPIError):
    kind = "auth"


class DifyNotFound(DifyAPIError):
    kind = "not_found"


class DifyConversationNotFound(DifyNotFound):
    kind = "conversation_not_found"


class DifyAppUnavailable(DifyAPIError):
    kind = "app_unavailable"


class DifyWrongAppType(DifyAPIError):
    kind = "wrong_app_type"


class DifyBusy(DifyAPIError):
    kind = "busy"


class DifyQuotaExceeded(DifyAPIError):
    kind = "quota"


class DifyModelError(DifyAPIError):
    kind = "model_error"


class DifyWorkflowFailed(DifyAPIError):
    kind = "workflow_failed"


class DifyInvalidInput(DifyAPIError):
    kind = "invalid_input"


class DifyServerError(DifyAPIError):
    kind = "server_error"


class DifyKnowledgeError(DifyAPIError):
    kind = "knowledge"


class DifyDatasetNotFound(DifyKnowledgeError):
    kind = "dataset_not_found"


class DifyDatasetAPIDisabled(DifyKnowledgeError):
    kind = "dataset_api_disabled"


class DifyFileTooLarge(DifyKnowledgeError):
    kind = "file_too_large"


class DifyUnsupportedFileType(DifyKnowledgeError):
    kind = "unsupported_file_type"


class DifyPlanLimit(DifyKnowledgeError):
    kind = "plan_limit"


class DifyIndexingTechniqueRequired(DifyKnowledgeError):
    kind = "indexing_technique_required"


_APP_UNAVAILABLE_CODES = {
    "app_unavailable",
    "provider_not_initialize",
    "model_currently_not_support",
    "forbidden",
}
_MODEL_MARKERS = ("PluginInvokeError", "InvokeError", "\"error_type\"")
_404_HELP = " You have requested this URI"  # flask-restx (Dify 1.x) appends "did you mean" help to 404s


def _help_stripped(message: str) -> str:
    """A 404 message without flask-restx's help (which names /datasets/ paths for every 404)."""
    return message.split(_404_HELP, 1)[0]


def error_from_envelope(
    status: int | None,
    payload: dict | None,
    *,
    endpoint: str = "",
    partial_answer: str = "",
    mid_stream: bool = False,
    retry_after: float | None = None,
) -> DifyAPIError:
    """Build the typed error for Dify's `{code, message, status}` envelope or `error` event.

    Branches on `code` and status, never on the wording of `message` (which differs between
    Dify versions), except where the code alone cannot tell two cases apart.
    """
    payload = payload or {}
    code = str(payload.get("code") or "") or None
    message = payload.get("message")
    if not isinstance(message, str):
        message = "" if message is None else str(message)
    if status is None:
        raw_status = payload.get("status")
        status = raw_status if isinstance(raw_status, int) else None
    kw = dict(
        status=status,
        code=code,
        partial_answer=partial_answer,
        mid_stream=mid_stream,
        retry_after=retry_after,
    )
    cls: type[DifyAPIError]
    if status == 401 or code == "unauthorized":
        cls = DifyAuthError
    elif code == "too_many_requests":
        cls = DifyBusy
    elif code in ("rate_limit_error", "provider_quota_exceeded"):
        cls = DifyQuotaExceeded
    elif code in ("not_chat_app", "not_workflow_app", "not_completion_app"):
        cls = DifyWrongAppType
    elif code == "conversation_completed":
        cls = DifyConversationNotFound
    elif status == 404 or code == "not_found":
        if endpoint.startswith("chat-messages") and "/" not in endpoint.removeprefix("chat-messages"):
            cls = DifyConversationNotFound
        elif endpoint.startswith("datasets") and _help_stripped(message).lower().startswith("dataset"):
            cls = DifyDatasetNotFound
        else:
            cls = DifyNotFound
    elif code == "completion_request_error" or (
        code == "invalid_param" and any(m in message for m in _MODEL_MARKERS)
    ):
        cls = DifyModelError
    elif code in _APP_UNAVAILABLE_CODES:
        if code == "forbidden" and endpoint.startswith("datasets"):
            low = message.lower()
            cls = DifyDatasetAPIDisabled if "not enabled" in low else DifyPlanLimit
        else:
            cls = DifyAppUnavailable
    elif code == "file_too_large" or status == 413:
        cls = DifyFileTooLarge
    elif code == "unsupported_file_type" or status == 415:
        cls = DifyUnsupportedFileType
    elif endpoint.startswith("datasets") and code == "invalid_param" and not message and "by_file" in endpoint.replace("-", "_"):
        cls = DifyUnsupportedFileType  # Dify answers an unsupported document with an empty message
    elif endpoint.startswith("datasets") and "indexing_technique" in message and (
        "required" in message or "missing" in message
    ):
        cls = DifyIndexingTechniqueRequired
    elif endpoint.startswith("datasets") and code == "invalid_param" and "is not exist" in message:
        cls = DifyDatasetNotFound  # Dify 0.15: 400 "Dataset is not exist."
    elif status is not None and status >= 500:
        cls = DifyServerError
    else:
        cls = DifyInvalidInput
    return cls(message, **kw)
