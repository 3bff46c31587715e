"""The session's timeline: what is said when, and the events it brings.

Speech arrives a piece at a time (a sentence of TTS, a block of decoded audio) with
its mouth shapes; each piece is placed on the media clock right after the previous
one, or, when the session is idle, a few frames ahead of now (just past the frames
already rendered). The renderer reads the mouth per video frame, the audio tracks
read samples per packet, and the events fall due as the clock passes them. Played
pieces are dropped, so a session of hours holds only what is still to come.

An interrupt cuts everything at once: the audio after the next packet (with a 10 ms
fade, no click), the mouth after the frames already rendered (closing over
``CLOSE_FRAMES``), and every queued utterance.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facecast.live.clock import AUDIO_RATE
from facecast.live.spec import LiveEvent
from facecast.motion.track import CHANNELS

# An interrupted mouth closes over this many frames: one half-open frame, then shut
# (40 ms at 25 fps; two frames put the shut mouth 40 ms later: received 165 ms p50 ->
# see bench/README.md, "Live streaming: memory and interrupt").
CLOSE_FRAMES = 1
FADE_S = 0.010  # an interrupted sound fades out over this long
KEEP_S = 1.0  # played audio / mouth kept this long for a viewer a packet or two behind


@dataclass
class _Utterance:
    id: str
    start_frame: int | None = None  # first frame of its first piece, once placed
    end_frame: int = 0  # frame after its last placed piece
    done: bool = False  # ended (played out, interrupted or cancelled)


class Schedule:
    """Pieces of speech on the media clock (thread-safe: the speech thread places, the
    renderer and the audio tracks read, the command handler cuts)."""

    def __init__(self, fps: int, lead_frames: int) -> None:
        self.fps = fps
        self.samples_per_frame = AUDIO_RATE // fps
        # How far ahead of now a piece starts when nothing is playing: past the frames
        # already rendered, so its first mouth shape is drawn on time.
        self.lead_frames = lead_frames
        self._lock = threading.Lock()
        self._mouth: list[tuple[int, np.ndarray]] = []  # (first frame, (n, CHANNELS))
        self._audio: list[tuple[int, np.ndarray]] = []  # (first sample, float32 48 kHz)
        self._events: list[tuple[int, int, LiveEvent]] = []  # heap of (frame, seq, event)
        self._seq = itertools.count()
        self._utterances: dict[str, _Utterance] = {}  # not yet ended, in order
        self._free = 0  # the first frame after everything placed

    # -- the speech thread ------------------------------------------------------------
    def enqueue(self, uid: str) -> None:
        """An utterance asked for (it is cut too if an interrupt comes before it plays)."""
        with self._lock:
            self._utterances[uid] = _Utterance(uid)

    def place(self, uid: str, samples: np.ndarray, mouth: np.ndarray,
              words: Sequence[tuple[str, float]], now_frame: int) -> int | None:
        """Put one piece of ``uid`` on the clock: ``samples`` (float32, 48 kHz), its mouth
        (``(n, CHANNELS)`` at the session's fps) and its words (text, start seconds from
        the piece's start). Returns the piece's first frame, or None when the utterance
        was cut meanwhile (the piece is dropped)."""
        n = max(1, -(-len(samples) // self.samples_per_frame))
        mouth = _fit(np.asarray(mouth, np.float32), n)
        with self._lock:
            u = self._utterances.get(uid)
            if u is None or u.done:
                return None
            start = max(self._free, now_frame + self.lead_frames)
            self._free = start + n
            self._mouth.append((start, mouth))
            self._audio.append((start * self.samples_per_frame,
                                np.asarray(samples, np.float32)))
            if u.start_frame is None:
                u.start_frame = start
                self._push(start, LiveEvent("utterance_started", uid, start / self.fps))
            for word, t in words:
                k = start + int(round(t * self.fps))
                self._push(k, LiveEvent("word", uid, k / self.fps, word=word))
            u.end_frame = start + n
            return start

    def finish(self, uid: str, now_frame: int) -> None:
        """All of ``uid`` is placed: it ends when its last piece has played."""
        with self._lock:
            u = self._utterances.get(uid)
            if u is None or u.done:
                return
            u.done = True
            if u.start_frame is None:  # nothing to say (no piece came)
                self._push(now_frame, LiveEvent("utterance_started", uid,
                                                now_frame / self.fps))
                u.end_frame = now_frame
            self._push(u.end_frame, LiveEvent("utterance_ended", uid, u.end_frame / self.fps,
                                              reason="done"))

    # -- the renderer and the audio tracks ------------------------------------------
    def mouth(self, k: int) -> np.ndarray:
        """The mouth channels at frame ``k`` (closed where nothing is said)."""
        out = np.zeros(len(CHANNELS), np.float32)
        with self._lock:
            keep = k - int(KEEP_S * self.fps)
            self._mouth = [(s, v) for s, v in self._mouth if s + len(v) > keep]
            for s, v in self._mouth:
                if s <= k < s + len(v):
                    out += v[k - s]
        return out

    def audio(self, first: int, count: int) -> np.ndarray:
        """``count`` samples from sample ``first`` (silence where nothing is said)."""
        out = np.zeros(count, np.float32)
        end = first + count
        with self._lock:
            keep = first - int(KEEP_S * AUDIO_RATE)
            self._audio = [(s, a) for s, a in self._audio if s + len(a) > keep]
            for s, a in self._audio:
                lo, hi = max(first, s), min(end, s + len(a))
                if lo < hi:
                    out[lo - first:hi - first] += a[lo - s:hi - s]
        return out

    def due(self, now_frame: int) -> list[LiveEvent]:
        """The events whose frame has come, in order (each returned once)."""
        out: list[LiveEvent] = []
        with self._lock:
            while self._events and self._events[0][0] <= now_frame:
                out.append(heapq.heappop(self._events)[2])
            for e in out:
                if e.type == "utterance_ended" and e.utterance_id is not None:
                    self._utterances.pop(e.utterance_id, None)
        return out

    def busy(self) -> bool:
        """Whether anything is queued, being said or still to play."""
        with self._lock:
            return bool(self._utterances)

    # -- interrupt --------------------------------------------------------------------
    def cut(self, frame: int, sample: int, now_frame: int) -> str | None:
        """Silence everything from audio sample ``sample`` and close the mouth from video
        frame ``frame`` on; end every utterance not yet ended. Returns the first one cut
        (the one speaking, else the next queued), or None when nothing was."""
        with self._lock:
            cut = [u for u in self._utterances.values()
                   if not u.done or u.end_frame > now_frame]
            if not cut:
                return None
            self._mouth = [(s, _closing(v, frame - s)) for s, v in self._mouth if s < frame]
            fade = int(FADE_S * AUDIO_RATE)
            self._audio = [(s, _faded(a, sample - s, fade)) for s, a in self._audio
                           if s < sample]
            self._free = frame + CLOSE_FRAMES
            cut_ids = {u.id for u in cut}
            self._events = [e for e in self._events if e[2].utterance_id not in cut_ids]
            heapq.heapify(self._events)
            t = now_frame / self.fps
            first = cut[0]
            for u in cut:
                u.done = True
                if u.start_frame is not None and u.start_frame <= now_frame:
                    self._push(now_frame, LiveEvent("interrupted", u.id, t))
                    reason = "interrupted"
                else:
                    # never heard: said to start and end at once, so that every utterance
                    # a caller was given an id for gets its pair of events
                    self._push(now_frame, LiveEvent("utterance_started", u.id, t))
                    reason = "cancelled"
                self._push(now_frame, LiveEvent("utterance_ended", u.id, t, reason=reason))
            return first.id

    def _push(self, frame: int, event: LiveEvent) -> None:
        heapq.heappush(self._events, (frame, next(self._seq), event))


def _fit(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` cut or padded with closed frames to ``n`` frames."""
    if len(values) >= n:
        return values[:n]
    pad = np.zeros((n - len(values), len(CHANNELS)), np.float32)
    return np.concatenate([values, pad]) if len(values) else pad


def _closing(values: np.ndarray, at: int) -> np.ndarray:
    """``values`` kept up to frame ``at``, then eased shut over CLOSE_FRAMES frames."""
    if at >= len(values):
        return values
    ramp = np.linspace(1.0, 0.0, CLOSE_FRAMES + 2, dtype=np.float32)[1:-1]
    tail = values[at:at + CLOSE_FRAMES] * ramp[: len(values[at:at + CLOSE_FRAMES]), None]
    return np.concatenate([values[:at], tail])


def _faded(samples: np.ndarray, at: int, fade: int) -> np.ndarray:
    """``samples`` kept up to sample ``at``, then faded out over ``fade`` samples."""
    if at >= len(samples):
        return samples
    tail = samples[at:at + fade] * np.linspace(1.0, 0.0, fade, dtype=np.float32)[
        : len(samples[at:at + fade])]
    return np.concatenate([samples[:at], tail])
