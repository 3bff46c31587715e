"""The studio: the web console that ``facecast serve`` answers at ``/``.

Plain HTML, CSS and JavaScript modules shipped in this package (``static/``): no build
step, nothing fetched from another site, so it works on an air-gapped machine. The page
talks to the native ``/api/v1`` only, with the API key the user typed, which it keeps in
the tab's ``sessionStorage`` and sends as ``Authorization: Bearer``. No cookie carries the
key, so a page on another site cannot make the browser act with it (nothing for CSRF to
ride on), and the key never appears in a URL.

Every answer here carries a Content-Security-Policy without ``unsafe-inline``: scripts and
styles only from these files, no ``eval``, media and images from this origin (signed
result links), the storage's own origin (an S3 store's presigned links) and ``blob:``
(a photo shown before upload, a voice sample fetched with the key).
"""

from __future__ import annotations

import json
import typing
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import Response

from facecast.api.errors import error_response
from facecast.api.native import wire
from facecast.render.canvas import NAMED_HEIGHTS
from facecast.rules import ASPECTS, DEFAULT_SIZE, MAX_PROMPT_CHARS
from facecast.service.core import CHARS_PER_SECOND, Service

__all__ = ["CONSOLE_PREFIX", "STATIC_FILES", "content_security_policy", "mount_console"]

CONSOLE_PREFIX = "/console"

# the files the console serves, by name; anything else is a 404 (no directory listing, no
# path to walk out of the folder)
STATIC_FILES: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

# where the config block sits in index.html (a JSON data block: never run as a script)
_CONFIG_MARK = "<!--CONFIG-->"


@cache
def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(media_origins: tuple[str, ...] = ()) -> str:
    """The console's policy: this origin's files only, no inline script or style."""
    media = " ".join(("'self'", "blob:", *media_origins))
    return "; ".join((
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
        f"img-src {media} data:", f"media-src {media}", "font-src 'self'",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"))


def _media_origins(service: Service) -> tuple[str, ...]:
    """Origins besides this one that result, thumbnail and preview links point at."""
    from facecast.service.storage import LocalStorage

    found = {_origin(service.settings.public_url)}
    if not isinstance(service.storage, LocalStorage):  # presigned links of the store
        found.add(_origin(service.storage.url("console-probe", 60)))
    return tuple(sorted(o for o in found if o))


def console_config(service: Service) -> dict[str, object]:
    """What the page needs to know that the API does not say: choices and estimates."""
    s = service.settings
    return {
        "sizes": [DEFAULT_SIZE, *[n for n in NAMED_HEIGHTS if n != "4k"]],
        "aspects": list(ASPECTS),
        "chars_per_second": CHARS_PER_SECOND,
        "max_text_chars": s.max_text_chars,
        "max_prompt_chars": MAX_PROMPT_CHARS,
        "max_upload_bytes": s.max_upload_bytes,
        "metrics": s.metrics,  # the admin page reads /metrics when it is served
        # the avatar library's filters, as the API takes them
        "avatar_ages": list(typing.get_args(wire.AvatarAge)),
        "avatar_regions": list(typing.get_args(wire.AvatarRegion)),
    }


def mount_console(app: FastAPI, service: Service) -> None:
    """Serve the console at ``/`` and its files under :data:`CONSOLE_PREFIX`."""
    headers = {
        "Content-Security-Policy": content_security_policy(_media_origins(service)),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # result links are signed URLs: none of them goes to another site as a referrer
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    # "<" escaped so no text in the config can end the data block
    config = json.dumps(console_config(service)).replace("<", "\\u003c")
    page = _static("index.html").decode().replace(_CONFIG_MARK, config).encode()

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @app.get(CONSOLE_PREFIX + "/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return error_response(404, "not_found", f"no console file {name!r}")
        return Response(_static(name), media_type=STATIC_FILES[name], headers=headers)
