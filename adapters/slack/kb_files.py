"""Slack files for the knowledge base: which hosts may see the bot token, and streaming a download.

The bot token goes only to Slack: https on `slack.com` or its subdomains, or the origin of
SLACK_API_URL (and that host's subdomains, over https, when it is a domain name such as
`slack-gov.com`). A file whose URL points anywhere else is refused before any request is made.
Redirects are followed by hand (at most five): to an allowed host with the token, to any other host
without it. Slack answers a request it will not serve with status 200 and an HTML login page (for
example when the app lacks the `files:read` scope): that is refused, never indexed.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from bots.kb import FileSource, KbRefused

log = logging.getLogger("adapters.slack.kb")

CHUNK = 64 * 1024
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Slow networks are fine (15 MB at 100 KB/s is 150 s); a stalled one is not.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=10, sock_read=30)

# Slack `filetype` → extension, for files (text snippets mostly) whose name has none.
SNIPPET_EXTENSIONS = {"text": "txt", "markdown": "md", "csv": "csv", "html": "html", "xml": "xml", "json": "json"}

KB_FOREIGN_HOST = "the file is not hosted by Slack ({host}), so the bridge did not download it"
KB_LOGIN_PAGE = ("Slack did not let the bot download it; an admin should check that the app has the "
                 "files:read scope (reinstall the app after adding it)")
KB_NOT_HOSTED = "Slack does not host this file (an external or deleted file), so it cannot be added"


class SlackHosts:
    """Where the bot token may be sent (see module docstring)."""

    def __init__(self, api_url: str) -> None:
        api = URL(api_url)
        self._origin = (api.scheme, (api.host or "").lower(), api.port)
        host = (api.host or "").lower()
        self._domains = {"slack.com"}
        if api.scheme == "https" and host and not _is_ip(host) and "." in host:
            self._domains.add(host)

    def allows(self, url: str | URL) -> bool:
        u = URL(url) if isinstance(url, str) else url
        host = (u.host or "").lower().rstrip(".")
        if not host or u.user or u.password:
            return False
        if (u.scheme, host, u.port) == self._origin:
            return True
        if u.scheme != "https" or u.port != 443:
            return False
        return any(host == d or host.endswith("." + d) for d in self._domains)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def host_of(url: str) -> str:
    u = URL(url)
    return f"{u.host}:{u.port}" if u.port and not u.is_default_port() else str(u.host or url)


def file_url(f: dict[str, Any]) -> str | None:
    return f.get("url_private_download") or f.get("url_private") or None


class SlackFiles:
    """Turns Slack file objects into `FileSource`s whose bytes stream from Slack with the bot token."""

    def __init__(self, token: str, hosts: SlackHosts, client: AsyncWebClient,
                 session: Callable[[], aiohttp.ClientSession]) -> None:
        self._token, self.hosts, self.client, self._session = token, hosts, client, session

    async def complete(self, f: dict[str, Any]) -> dict[str, Any]:
        """The full file object: `files.info` when an event only carried a stub (`file_access`)."""
        if file_url(f) and f.get("name") and f.get("file_access") != "check_file_info":
            return f
        if not f.get("id"):
            return f
        try:
            info = await self.client.files_info(file=str(f["id"]))
        except Exception as exc:  # noqa: BLE001 - the file then fails with a clear line of its own
            log.warning("files.info for a knowledge-base file failed: %s", type(exc).__name__)
            return f
        return {**f, **(info.get("file") or {})}

    def source(self, f: dict[str, Any]) -> FileSource:
        name = str(f.get("name") or f.get("title") or "file")
        ext = SNIPPET_EXTENSIONS.get(str(f.get("filetype") or ""))
        if ext and "." not in name.rsplit("/", 1)[-1]:
            name = f"{name}.{ext}"  # a text snippet named "Untitled": keep it addable
        url = file_url(f)
        if f.get("mode") in ("external", "tombstone", "snippet_external") or f.get("is_external"):
            url = None

        def chunks() -> AsyncIterator[bytes]:
            return self.download(url, name)

        size = f.get("size")
        return FileSource(name=name, size=int(size) if isinstance(size, int) else None,
                          mime_type=f.get("mimetype"), chunks=chunks)

    async def download(self, url: str | None, name: str) -> AsyncIterator[bytes]:
        """The file's bytes, chunk by chunk. Raises KbRefused for a foreign host or a login page."""
        if not url:
            raise KbRefused(KB_NOT_HOSTED)
        if not self.hosts.allows(url):
            log.warning("refused to download a knowledge-base file from %s: not a Slack host", host_of(url))
            raise KbRefused(KB_FOREIGN_HOST.format(host=host_of(url)))
        target = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Authorization": f"Bearer {self._token}"} if self.hosts.allows(target) else {}
            async with self._session().get(target, headers=headers, allow_redirects=False,
                                           timeout=DOWNLOAD_TIMEOUT) as resp:
                if resp.status in REDIRECTS and resp.headers.get("Location"):
                    target = resp.url.join(URL(resp.headers["Location"]))
                    if target.scheme not in ("http", "https"):
                        raise aiohttp.ClientError("redirect to a non-HTTP URL")
                    continue
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                if resp.content_type == "text/html" and not name.lower().endswith((".html", ".htm")):
                    raise KbRefused(KB_LOGIN_PAGE)
                async for chunk in resp.content.iter_chunked(CHUNK):
                    yield chunk
                return
        raise aiohttp.ClientError(f"more than {MAX_REDIRECTS} redirects")
