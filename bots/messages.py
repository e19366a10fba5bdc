"""Every line the bridge shows a user, in one place (platform-neutral Markdown)."""

from __future__ import annotations

from .dify import (
    DifyAppUnavailable,
    DifyAuthError,
    DifyBusy,
    DifyConversationNotFound,
    DifyError,
    DifyInvalidInput,
    DifyModelError,
    DifyNotFound,
    DifyQuotaExceeded,
    DifyServerError,
    DifyTimeout,
    DifyTransportError,
    DifyWorkflowFailed,
    DifyWrongAppType,
    DifyWrongBaseURL,
)
from .types import Problem

MISCONFIGURED = "The bridge is misconfigured; an admin should run `dify-bridge doctor`."

# Walked along the exception's MRO: the most specific class wins.
_LINES: dict[type[DifyError], tuple[str, str]] = {
    DifyWrongBaseURL: ("misconfigured", MISCONFIGURED),
    DifyAuthError: ("misconfigured", MISCONFIGURED),
    DifyWrongAppType: (
        "wrong_app_type",
        "This Dify app cannot chat (it is a completion or workflow app); ask an admin to connect a chat, agent or chatflow app.",
    ),
    DifyAppUnavailable: (
        "app_unavailable",
        "The Dify app is unavailable; ask an admin to check the app's model provider.",
    ),
    DifyBusy: ("busy", "Dify is busy, try again in a minute."),
    DifyQuotaExceeded: ("quota", "The Dify app has used up its quota; ask an admin to check the plan or model provider."),
    DifyModelError: ("model_error", "The model failed to answer; try again, or ask an admin if it keeps happening."),
    DifyWorkflowFailed: ("workflow_failed", "The chatflow failed; ask an admin to check its run log in Dify."),
    DifyConversationNotFound: ("conversation_lost", "This conversation no longer exists in Dify; send your message again to start a new one."),
    DifyNotFound: ("not_found", "Dify could not find what was asked for."),
    DifyInvalidInput: ("invalid_input", "Dify refused the message; an admin can find the reason in the bridge log."),
    DifyServerError: ("server_error", "Dify had an internal error; try again in a minute."),
    DifyTimeout: ("timeout", "Dify took too long to answer; try again in a minute."),
    DifyTransportError: ("unreachable", "Dify cannot be reached right now; try again in a minute."),
    DifyError: ("error", "Something went wrong talking to Dify; try again in a minute."),
}

CONVERSATION_RESTARTED = "_(The previous conversation had expired in Dify, so this starts a new one.)_"
NEW_CONVERSATION = "Started a new conversation."
NO_CONVERSATION = "There was no conversation to reset; your next message starts a new one."
CHANNEL_NEW_HINT = "In a channel every new thread is a new conversation: mention me in a new message to start one."
INTERRUPTED = "interrupted: the bridge restarted before the answer was complete"
SHUTTING_DOWN = "interrupted: the bridge is restarting"
PRIVATE_BOT = "Sorry, this bot is private."
UNEXPECTED = "Something went wrong on our side; the details are in the bridge log."
EMPTY_ANSWER = "_(Dify returned an empty answer.)_"
THINKING = "_Thinking…_"  # placeholder while the first words of an answer are on their way
WORKING_STATUS = "is thinking…"  # a platform status line shown after the bot's name
TELEGRAM_GROUP_NEW_HINT = (
    "In a group every message that mentions me starts a new conversation; reply to one of my answers to continue it."
)
# Telegram's command menu (setMyCommands): command → description.
TELEGRAM_COMMANDS = {
    "ask": "Ask a question",
    "new": "Start a new conversation",
    "help": "How to talk to this bot",
    "kb": "Knowledge base: add, list, status",
}


def problem_for(exc: BaseException) -> Problem:
    """The one-line message for an error, keeping any partial answer."""
    partial = exc.partial_answer if isinstance(exc, DifyError) else ""
    for cls in type(exc).__mro__:
        if cls in _LINES:
            kind, text = _LINES[cls]  # type: ignore[index]
            return Problem(kind=kind, text=text, partial=partial)
    return Problem(kind="internal", text=UNEXPECTED, partial=partial)


def inputs_missing(names: list[str]) -> Problem:
    joined = ", ".join(f"`{n}`" for n in names)
    return Problem(
        kind="inputs_missing",
        text=f"The Dify app needs input values the bridge does not send ({joined}); ask an admin to set them in DIFY_INPUTS.",
    )


def stopped_footer(reason: str) -> str:
    return f"_stopped: {reason}_"


def help_text(platform: str) -> str:
    if platform == "slack":
        talk = (
            "• Mention me in a channel to start a conversation; reply in the thread to continue it.\n"
            "• In a direct message, just write. Send `new` (or `/new`) to start over."
        )
        kb = "• `/kb add <text>` or a file with the message `kb add` adds a document to the knowledge base; `/kb list`, `/kb status`."
    elif platform == "telegram":
        talk = (
            "• In a private chat, just write. /new starts over.\n"
            "• In a group, mention me, use /ask <question>, or reply to one of my answers."
        )
        kb = "• Send a document with the caption /kb add (or reply /kb add to one) to add it to the knowledge base; /kb list, /kb status."
    else:
        talk = "• Type a message to chat. /new starts over; /help shows this."
        kb = "• `dify-bridge kb add PATH` adds documents to the knowledge base."
    return f"*Dify Bridge* connects this chat to a Dify app.\n{talk}\n{kb}"


# --- knowledge base (/kb add, /kb list, /kb status, `dify-bridge kb`) ---------------------------
# Reasons are fragments shown after the file's name: "❌ `report.pdf`: <reason>".

KB_NOT_CONFIGURED = "The knowledge base is not set up; an admin should set DIFY_DATASET_API_KEY and DIFY_DATASET_ID."
KB_NO_DATASET_KEY = "DIFY_DATASET_API_KEY is not set (e.g. DIFY_DATASET_API_KEY=dataset-xxxxxxxxxxxxxxxxxxxxxxxx)"
KB_NO_DATASET_ID = "DIFY_DATASET_ID is not set and no --dataset was given (e.g. DIFY_DATASET_ID=3f0c7c1e-8a55-4d07-9f35-5a4f0c1d2e3b)"
KB_WRITERS_EMPTY = "Adding to the knowledge base is turned off; an admin can allow it with KB_WRITERS (e.g. KB_WRITERS={who})."
KB_NOT_WRITER = "You may not add to the knowledge base; an admin can allow it by adding {who} to KB_WRITERS."
KB_NO_TEXT = "Nothing to add: write the text after `/kb add` (the first line, or `Title:`, names the document)."

KB_RECEIVED = "📥 `{name}` received…"
KB_UPLOADING = "⬆️ Uploading `{name}`…"
KB_UPLOADING_PCT = "⬆️ Uploading `{name}`… {pct}%"
KB_INDEXING = "⏳ Indexing `{name}`: {stage}…"
KB_INDEXING_SEGMENTS = "⏳ Indexing `{name}`: {stage} ({done}/{total} segments)…"
KB_DONE = "✅ Indexed as `{name}` ({segments})"
KB_FAILED = "❌ `{name}`: {reason}"
KB_STAGES = {
    "waiting": "queued", "parsing": "reading the file", "cleaning": "cleaning", "splitting": "splitting into segments",
    "indexing": "indexing", "paused": "paused", None: "starting",
}

KB_BAD_EXTENSION = "not a document type the knowledge base accepts ({allowed})"
KB_TOO_LARGE = "too large ({size}; the knowledge base accepts up to {limit})"
KB_EMPTY_FILE = "the file is empty"
KB_NOT_REALLY = "not a real {kind} file (its content does not match its name)"
KB_NOT_UTF8 = "not UTF-8 text; save it as UTF-8 and send it again"
KB_DOWNLOAD_FAILED = "the file could not be downloaded; try again"
KB_INTERRUPTED = "the bridge restarted before the upload finished; send it again"
KB_INDEX_FAILED = "Dify could not index it: {error}"
KB_POLL_TIMEOUT = "Dify is still indexing after {duration}; it may finish later (check the document list)"
KB_LOST = "Dify no longer knows this upload (the document may have been deleted)"
KB_DATASET_NOT_FOUND = "the knowledge base {dataset} does not exist in Dify (or the key cannot see it); an admin should check DIFY_DATASET_ID"
KB_API_DISABLED = "API access is turned off for this knowledge base; an admin can turn it on in Dify (Knowledge → API)"
KB_DIFY_TOO_LARGE = "Dify refused it as too large (its upload limit is lower than KB_MAX_FILE_MB)"
KB_DIFY_UNSUPPORTED = "Dify does not accept this file type (check KB_EXTENSIONS against the server's ETL)"
KB_PLAN_LIMIT = "Dify refused it: {message}"
KB_TECHNIQUE_REQUIRED = "the knowledge base has no indexing method yet; an admin should set KB_INDEXING_TECHNIQUE"
KB_BAD_KEY = "Dify refused the knowledge key; an admin should check DIFY_DATASET_API_KEY"
KB_DIFY_REFUSED = "Dify refused it: {message}"

KB_LIST_EMPTY = "The knowledge base has no documents yet."
KB_LIST_HEAD = "*Knowledge base* ({count}):"
KB_LIST_MORE = "…and {more} more."
KB_STATUS_EMPTY = "You have not added anything to the knowledge base yet."
KB_STATUS_HEAD = "*Your recent knowledge-base uploads:*"
