"""The route that serves files kept in local storage at their signed, expiring URLs.

``GET``/``HEAD /files/{key}?exp=...&sig=...[&filename=...]`` is what
:meth:`facecast.service.storage.LocalStorage.url` hands out. The signature is the credential:
no API key is asked for, so a result URL can be given to a browser, a video player or a
webhook consumer as it is. Starlette's FileResponse answers, so Range requests (seeking in a
video player, resumed downloads) get ``206 Partial Content``. With S3 storage this route is
not mounted: downloads go to the store's presigned URLs.
"""

from __future__ import annotations

import mimetypes
import os
import stat
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from facecast.errors import FacecastError
from facecast.service.storage import LocalStorage, content_disposition

__all__ = ["files_router"]

# the built-in table only: the same key gets the same Content-Type on every machine,
# whatever /etc/mime.types says there
_MIME = mimetypes.MimeTypes(filenames=())

# types a browser would run as a page on the service's origin if shown inline
_ACTIVE_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml",
                 "application/xml", "text/javascript", "application/javascript")


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": FacecastError(message, code=code).to_dict()}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _bad_signature() -> JSONResponse:
    return _error(403, "bad_signature",
                  "This file URL is not valid: its signature does not match. Use the URL "
                  "exactly as the API returned it.")


def files_router(storage: LocalStorage) -> APIRouter:
    """A router serving ``storage``'s files at the URLs its :meth:`~LocalStorage.url` signs."""
    router = APIRouter()

    @router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def get_file(key: str, request: Request) -> Response:
        query = request.query_params
        exp_text, sig, filename = query.get("exp"), query.get("sig"), query.get("filename")
        if exp_text is None or sig is None:
            return _bad_signature()
        try:
            exp = int(exp_text)
        except ValueError:
            return _bad_signature()
        # signature first: a tampered expiry must read as tampered, not as expired
        if not storage.signature_valid(key, exp, sig, filename):
            return _bad_signature()
        now = time.time()
        if now > exp:
            when = datetime.fromtimestamp(exp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            return _error(403, "link_expired",
                          f"This file URL expired at {when}. Fetch the job (or asset) again "
                          "from the API to get a fresh URL.")
        try:
            path = storage.path_for(key)
        except ValueError:  # cannot happen for a signed key: url() validates before signing
            return _bad_signature()
        try:
            # one stat for both the 410 check and the response headers
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            return _error(410, "file_expired",
                          "This file is no longer stored: the retention period for results "
                          "and uploads has passed and it was deleted. Run the job again to "
                          "make it anew.")

        media_type = _MIME.guess_type(key)[0] or "application/octet-stream"
        headers = {
            # the URL stops working at exp: caches must not serve it longer than that
            "Cache-Control": f"private, max-age={max(0, int(exp - now))}",
            "X-Content-Type-Options": "nosniff",
        }
        if filename is not None:
            headers["Content-Disposition"] = content_disposition(filename)
        elif media_type in _ACTIVE_TYPES:
            # an uploaded page or SVG shown inline would run scripts on the API's origin
            headers["Content-Disposition"] = content_disposition(path.name)
        # a file removed between the stat and the read ends the transfer early; retention
        # deletes files long after their URLs stop being handed out, so this is rare
        return FileResponse(path, media_type=media_type, headers=headers, stat_result=st)

    return router
