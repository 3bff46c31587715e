"""A recording viewer: a real aiortc client that watches a live session (tests, benches).

It offers to receive video and audio (and opens the "events" data channel), hands
its offer to whatever answers it (``LiveSession.answer``, or a WHEP POST), and
records what arrives: each decoded video frame and 20 ms of audio with the time it
arrived (``time.monotonic``), and each data-channel event. What is recorded is
kept in memory only as far as asked (``keep_frames``), so a long watch stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Answerer = Callable[[str], Awaitable[str]]


@dataclass
class VideoSample:
    arrived: float  # time.monotonic() when decoded
    pts: int  # RTP video ticks (90 kHz)
    image: np.ndarray | None  # RGB, when kept


@dataclass
class AudioSample:
    arrived: float
    pts: int  # samples at 48 kHz
    samples: np.ndarray  # mono float32


@dataclass
class Recording:
    video: list[VideoSample] = field(default_factory=list)
    audio: list[AudioSample] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class Viewer:
    """Watch one session: ``await viewer.connect(answerer)``, then read ``recording``."""

    def __init__(self, *, keep_frames: bool = True,
                 keep: Callable[[float], bool] | None = None,
                 crop: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """``keep_frames``: keep decoded images (else only their times); ``keep``: a
        predicate on the arrival time choosing which images to keep; ``crop``: what of
        each kept image to keep (a long watch keeps the face, not the picture)."""
        self.keep_frames = keep_frames
        self.keep = keep
        self.crop = crop
        self.recording = Recording()
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc: Any = None

    async def connect(self, answerer: Answerer) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        from facecast.live.ice import offer_loopback_when_alone

        offer_loopback_when_alone()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        channel = pc.createDataChannel("events")

        @channel.on("message")
        def on_message(message: str) -> None:
            self.recording.events.append(json.loads(message))
            self.changed.set()

        @pc.on("track")
        def on_track(track: Any) -> None:
            reader = self._video if track.kind == "video" else self._audio
            self._tasks.append(asyncio.ensure_future(reader(track)))

        await pc.setLocalDescription(await pc.createOffer())
        answer = await answerer(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def _video(self, track: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                image = None
                if self.keep_frames and (self.keep is None or self.keep(now)):
                    image = frame.to_ndarray(format="rgb24")
                    if self.crop is not None:
                        image = np.ascontiguousarray(self.crop(image))
                self.recording.video.append(VideoSample(now, int(frame.pts), image))
                self.changed.set()

    async def _audio(self, track: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                pcm = frame.to_ndarray()
                # aiortc decodes Opus to interleaved s16 stereo at 48 kHz
                channels = len(frame.layout.channels)
                mono = pcm.reshape(-1, channels).mean(axis=1) / 32768.0
                self.recording.audio.append(AudioSample(now, int(frame.pts),
                                                        mono.astype(np.float32)))
                self.changed.set()

    async def wait_for(self, test: Callable[[Recording], bool], timeout: float) -> bool:
        """Wait until ``test(recording)`` holds (True) or ``timeout`` seconds pass (False)."""
        end = time.monotonic() + timeout
        while not test(self.recording):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.pc is not None:
            await self.pc.close()
