"""The renderer: draws each video frame just before it falls due, in a thread of its own.

It keeps ``LEAD_FRAMES`` frames ahead of the media clock (a lead of milliseconds,
not seconds: speech placed now shows within a few frames), asks the schedule for
the mouth and the idle motion for the blink and head, and hands the tracks ready
``yuv420p`` frames (converted here, not in the encoder's thread). Falling behind (a
busy machine) it skips to the frame due now rather than play late. Each pass it
also sends the events the clock has reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
import cv2

from facecast.live.clock import MediaClock
from facecast.live.idle import IdleMotion
from facecast.live.schedule import Schedule
from facecast.live.spec import LiveEvent

if TYPE_CHECKING:
    from facecast.render.animator import PortraitAnimator

LEAD_FRAMES = 2  # frames rendered ahead of the clock
KEEP_FRAMES = 6  # rendered frames kept for viewers a frame or two behind


class Stage:
    """Renders frames for the clock in a daemon thread; ``frame(k)`` hands them out."""

    def __init__(self, animator: PortraitAnimator, idle: IdleMotion, schedule: Schedule,
                 clock: MediaClock, emit: Callable[[LiveEvent], None]) -> None:
        self.animator = animator
        self.idle = idle
        self.schedule = schedule
        self.clock = clock
        self.emit = emit
        self._frames: dict[int, av.VideoFrame] = {}
        self._latest = -1
        self._taken: set[int] = set()
        self._redo: int | None = None  # render again from this frame (speech came in)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.render_s = 0.0  # CPU seconds spent rendering (for the bench)
        self.rendered = 0
        self.skipped = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="facecast-live-render",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def frame(self, k: int) -> tuple[int, av.VideoFrame] | None:
        """Frame ``k`` if rendered; else the latest one before it; else, when the renderer
        has skipped past ``k`` (it falls behind on a busy machine and jumps to the frame
        due), the earliest it kept. None only before the very first frame."""
        with self._lock:
            if k in self._frames:
                return k, self._frames[k]
            best = max((i for i in self._frames if i <= k), default=None)
            if best is None:
                best = min(self._frames, default=None)
            return None if best is None else (best, self._frames[best])

    def redo_from(self, k: int) -> None:
        """Frames from ``k`` on must be drawn again (speech placed or cut there): the ones
        rendered ahead are dropped, so new speech shows from the next frame due rather
        than after the lead."""
        with self._lock:
            for i in [i for i in self._frames if i >= k]:
                del self._frames[i]
                self._taken.discard(i)
            self._latest = min(self._latest, k - 1)
            self._redo = k if self._redo is None else min(self._redo, k)
        self._wake.set()

    def take(self, index: int) -> bool:
        """Claim rendered frame ``index`` for one encoder: True the first time (the encoder
        stamps and flags the frame it gets, so a second viewer needs a copy)."""
        with self._lock:
            if index in self._taken:
                return False
            self._taken.add(index)
            return True

    def _run(self) -> None:
        k = self.clock.frame_now()
        while not self._stop.is_set():
            with self._lock:
                if self._redo is not None:
                    k = min(k, self._redo)
                    self._redo = None
            now = self.clock.frame_now()
            for event in self.schedule.due(now):
                self.emit(event)
            if k < now:  # behind: what is due now, not what is late
                self.skipped += now - k
                k = now
            if k <= now + LEAD_FRAMES:
                try:
                    self._render(k)
                except Exception as exc:  # the session lives on: the last frame repeats
                    self.failures += 1
                    if self.failures == 1:
                        self.emit(LiveEvent("error", None, k / self.clock.fps,
                                            reason=f"rendering failed: {exc!r}"))
                k += 1
                continue
            self._wake.wait(max(0.0, self.clock.frame_due(k - LEAD_FRAMES) - time.monotonic()))
            self._wake.clear()

    def _render(self, k: int) -> None:
        t = time.perf_counter()
        blink, head, face = self.idle.at(k)
        rgb = self.animator.render(self.schedule.mouth(k), blink, head, face)
        # OpenCV's BT.601 limited-range I420 is what swscale makes (within 0.3 of a
        # level) in 0.3 ms instead of 2.3 ms at 512x512
        yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        self.render_s += time.perf_counter() - t
        self.rendered += 1
        with self._lock:
            if self._redo is not None and k >= self._redo:
                return  # drawn with what was true before the speech came: drawn again
            self._frames[k] = frame
            self._latest = k
            for old in [i for i in self._frames if i < k - KEEP_FRAMES]:
                del self._frames[old]
                self._taken.discard(old)
