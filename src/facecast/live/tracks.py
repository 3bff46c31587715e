"""aiortc tracks for one viewer: video from the renderer, audio from the schedule.

Each ``recv`` waits for its frame's (or packet's) time on the session's one media
clock and stamps it with that index, so the two tracks share one timeline and
cannot drift. A viewer that falls behind (its encoder or the loop busy) skips to
what is due now instead of playing ever later. Every viewer has its own pair, reading
the same frames and samples (one render serves all).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from facecast.live.clock import AUDIO_FRAME, AUDIO_RATE, VIDEO_RATE, MediaClock
from facecast.live.schedule import Schedule
from facecast.live.stage import Stage

MAX_LATE_S = 0.1  # a track further behind than this skips to now
FRAME_WAIT_S = 0.004  # how often a track looks again for a frame not rendered yet


async def _in_turn(wanted: int | None, now: Callable[[], int], due: Callable[[int], float]
                  ) -> int:
    """The index (frame or packet) a track sends next: ``wanted`` once its time on the
    clock has come, or the one due now when there is none yet or ``wanted`` is more than
    MAX_LATE_S late."""
    k = now() if wanted is None else wanted
    wait = due(k) - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)
    elif -wait > MAX_LATE_S:
        k = now()
    return k


class LiveVideoTrack(MediaStreamTrack):
    """The avatar's picture at the clock's frame rate."""

    kind = "video"

    def __init__(self, stage: Stage, clock: MediaClock) -> None:
        super().__init__()
        self.stage = stage
        self.clock = clock
        self._next: int | None = None
        self._base = fractions.Fraction(1, VIDEO_RATE)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        k = await _in_turn(self._next, self.clock.frame_now, self.clock.frame_due)
        # The frame is normally rendered already (LEAD_FRAMES ahead); at worst, wait
        # up to one frame for it, then send the latest one there is.
        got = self.stage.frame(k)
        give_up = time.monotonic() + 1.0 / self.clock.fps
        while (got is None or got[0] < k) and time.monotonic() < give_up:
            await asyncio.sleep(FRAME_WAIT_S)
            got = self.stage.frame(k)
        while got is None:  # before the very first frame (start-up only)
            await asyncio.sleep(FRAME_WAIT_S)
            got = self.stage.frame(k)
        index, frame = got
        k = max(k, index)  # the renderer skipped ahead (a busy machine): so does the track
        self._next = k + 1
        if not self.stage.take(index):
            # The same picture again, or for another viewer: a frame of its own, as the
            # encoder stamps and flags the frame it is given.
            frame = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
        frame.pts = k * VIDEO_RATE // self.clock.fps
        frame.time_base = self._base
        return frame


class LiveAudioTrack(MediaStreamTrack):
    """The avatar's voice (silence between utterances), 20 ms packets at 48 kHz."""

    kind = "audio"

    def __init__(self, schedule: Schedule, clock: MediaClock) -> None:
        super().__init__()
        self.schedule = schedule
        self.clock = clock
        self._next: int | None = None
        self._base = fractions.Fraction(1, AUDIO_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        j = await _in_turn(self._next, self.clock.packet_now, self.clock.packet_due)
        self._next = j + 1
        samples = self.schedule.audio(j * AUDIO_FRAME, AUDIO_FRAME)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = j * AUDIO_FRAME
        frame.time_base = self._base
        return frame
