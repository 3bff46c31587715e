"""The session's one media clock: every video frame and audio sample has its time on it.

Video frame ``k`` is due at ``k / fps`` seconds, audio sample ``s`` at ``s / 48000``,
both counted from the same start (a ``time.monotonic`` reading). The tracks send
each frame when it falls due and stamp it with its index, so audio and video cannot
drift apart however long a session runs: neither clock is counted separately.
"""

from __future__ import annotations

import math
import time

AUDIO_RATE = 48_000  # Opus's own rate: no resampling in the encoder
AUDIO_PTIME = 0.020  # seconds of audio per packet (WebRTC's usual 20 ms)
AUDIO_FRAME = int(AUDIO_RATE * AUDIO_PTIME)  # samples per audio packet
VIDEO_RATE = 90_000  # RTP clock of every video codec


class MediaClock:
    """Seconds since the session's start, and the frame / packet due now."""

    def __init__(self, fps: int, start: float | None = None) -> None:
        if AUDIO_RATE % fps:
            raise ValueError(f"{fps} fps does not divide {AUDIO_RATE} Hz audio")
        self.fps = fps
        self.samples_per_frame = AUDIO_RATE // fps
        self.start = time.monotonic() if start is None else start

    def now(self) -> float:
        """Seconds on the media clock."""
        return time.monotonic() - self.start

    def frame_now(self) -> int:
        """The video frame due now (the last whose time has come)."""
        return math.floor(self.now() * self.fps)

    def packet_now(self) -> int:
        """The audio packet due now."""
        return math.floor(self.now() / AUDIO_PTIME)

    def frame_due(self, k: int) -> float:
        """``time.monotonic()`` when frame ``k`` falls due."""
        return self.start + k / self.fps

    def packet_due(self, j: int) -> float:
        """``time.monotonic()`` when audio packet ``j`` falls due."""
        return self.start + j * AUDIO_PTIME
