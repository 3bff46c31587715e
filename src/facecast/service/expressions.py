"""The expression catalogue as the service offers it: templates with signed URLs of
their preview videos and thumbnails, and the background rendering of those previews.

Previews live in storage under ``builtin/expressions/<key>.mp4`` and ``.jpg``.
They are rendered once, by facecast itself, in a low-priority background
thread of the process that first lists the catalogue, so ``facecast serve``
starts at once and nobody waits for them: until a template's files exist its
URLs are empty. ``FACECAST_EXPRESSION_PREVIEWS`` = ``off`` renders none, a
comma-separated list of keys renders only those (default: all).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facecast.service.settings import Settings
from facecast.service.storage import Storage

if TYPE_CHECKING:  # the engine is imported when first needed: `serve` starts quicker
    from facecast.motion.expressions import ExpressionTemplate

PREFIX = "builtin/expressions/"
log = logging.getLogger("facecast.expressions")


class _Stopped(Exception):
    """Raised from the progress callback to end a render when the process stops."""


def preview_keys(template: ExpressionTemplate) -> tuple[str, str]:
    """Storage keys of a template's preview video and thumbnail."""
    return f"{PREFIX}{template.key}.mp4", f"{PREFIX}{template.key}.jpg"


def _wanted(settings: Settings) -> list[ExpressionTemplate]:
    from facecast.motion.expressions import TEMPLATES, get_template

    value = settings.expression_previews.strip().lower()
    if value in ("off", "0", "false", "no", "none", ""):
        return []
    if value in ("all", "on", "1", "true", "yes"):
        return list(TEMPLATES)
    out = []
    for part in value.split(","):
        try:
            out.append(get_template(part.strip()))
        except Exception:  # a bad key in the setting must not break the listing
            log.warning("FACECAST_EXPRESSION_PREVIEWS names no template %r", part)
    return out


class ExpressionPreviews:
    """Knows which previews are in storage and renders the missing ones, once."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage, self.settings = storage, settings
        self._present: set[str] = set()  # storage keys seen to exist (they never go away)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._at_exit = False

    def _exists(self, key: str) -> bool:
        if key in self._present:
            return True
        if self.storage.exists(key):
            self._present.add(key)
            return True
        return False

    def urls(self, template: ExpressionTemplate) -> tuple[str, str]:
        """Signed URLs of the preview video and thumbnail; "" while not rendered."""
        video, thumb = preview_keys(template)
        if not (self._exists(video) and self._exists(thumb)):
            return "", ""
        ttl = self.settings.url_ttl_s
        return self.storage.url(video, ttl), self.storage.url(thumb, ttl)

    def missing(self) -> list[ExpressionTemplate]:
        return [t for t in _wanted(self.settings)
                if not all(self._exists(k) for k in preview_keys(t))]

    def ensure(self) -> bool:
        """Start rendering the missing previews in the background (once per process).
        True when a renderer is running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return True
            if self._stop.is_set():
                return False
            todo = self.missing()
            if not todo:
                return False
            self._thread = threading.Thread(target=self._render, args=(todo,),
                                            name="facecast-expression-previews", daemon=True)
            self._thread.start()
            # A render cut off by interpreter shutdown (inside native code) can crash the
            # exit; at exit the render is told to stop and given a moment to do so.
            if not self._at_exit:
                atexit.register(self.stop)
                self._at_exit = True
            return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """End the background rendering (a render in progress is abandoned, not stored)."""
        self._stop.set()
        self.wait(timeout)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background renderer is done (for tools; the API never waits)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _render(self, todo: list[ExpressionTemplate]) -> None:
        from facecast.pipeline.expression_previews import (
            preview_files,
            render_expression_previews,
        )

        # The lowest CPU priority for this thread only (Linux threads have their own):
        # requests and jobs come first, previews use what is left.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        # Scratch space in the service's own folder: a server stopped mid-render leaves
        # its half-made files there, not in the machine's /tmp.
        scratch = self.settings.service_dir
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="expression-previews-", dir=scratch) as tmp:
            def check(_fraction: float, _stage: str) -> None:
                if self._stop.is_set():
                    raise _Stopped

            for template in todo:
                if self._stop.is_set():
                    return
                try:
                    render_expression_previews(tmp, [template.key], progress=check)
                    video, thumb = preview_files(tmp, template.key)
                    video_key, thumb_key = preview_keys(template)
                    # The thumbnail last: a listing shows a template once both exist.
                    self.storage.put_file(video_key, Path(video), "video/mp4")
                    self.storage.put_file(thumb_key, Path(thumb), "image/jpeg")
                    log.info("rendered the %s expression preview", template.key)
                except _Stopped:
                    return
                except Exception:  # one failed preview must not stop the others
                    log.exception("the %s expression preview failed", template.key)

    def catalogue(self) -> list[dict[str, Any]]:
        """Every template with its preview URLs (and rendering started if any is missing)."""
        from facecast.motion.expressions import TEMPLATES

        self.ensure()
        out = []
        for t in TEMPLATES:
            video, thumb = self.urls(t)
            out.append({**t.to_dict(), "preview_url": video, "thumbnail_url": thumb})
        return out
