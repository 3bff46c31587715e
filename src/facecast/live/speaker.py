"""The speech thread: turns each utterance into pieces on the schedule as they are made.

Text is synthesised sentence by sentence (the first piece a short clause, made
alone; the rest through :func:`facecast.speech.synth.stream`): each piece is placed,
with its mouth from the voice's own phoneme timings, as soon as it exists, so the
first words play while the rest is still being made. Audio is placed in blocks
(``FIRST_BLOCK_S``, then ``BLOCK_S``), each with a mouth from the sound alone
(:func:`facecast.motion.from_audio.track_from_audio`, analysed with ``CONTEXT_S`` of
the audio before it for its levels): speech recognition would be
the better mouth but costs about a second before the first block could play.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from facecast.live import heap
from facecast.live.clock import AUDIO_RATE
from facecast.live.schedule import Schedule
from facecast.media.audio import Audio
from facecast.speech.piper_tts import Speech
from facecast.timing import PhonemeTiming, WordTiming

FIRST_BLOCK_S = 0.5
BLOCK_S = 3.0
CONTEXT_S = 2.0


@dataclass
class TextJob:
    uid: str
    text: str
    rate: float = 1.0
    pitch: float = 0.0
    volume: float = 1.0


@dataclass
class AudioJob:
    """Audio to speak, arriving in pieces as the caller decodes it (None ends it)."""

    uid: str
    sample_rate: int
    pieces: queue.Queue[np.ndarray | None] = field(default_factory=queue.Queue)


class Speaker:
    """Works through the utterances in order in a daemon thread."""

    def __init__(self, schedule: Schedule, voice: str | None, fps: int,
                 frame_now: Callable[[], int],
                 on_error: Callable[[str, BaseException], None],
                 on_placed: Callable[[int], None] = lambda _k: None) -> None:
        """``on_placed(k)``: a piece was placed from frame ``k`` (the renderer redraws)."""
        self.schedule = schedule
        self.voice = voice
        self.fps = fps
        self.frame_now = frame_now
        self.on_error = on_error
        self.on_placed = on_placed
        self._jobs: queue.Queue[TextJob | AudioJob | None] = queue.Queue()
        self._generation = 0  # bumped by every interrupt: older jobs stop
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="facecast-live-speech",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)

    def submit(self, job: TextJob | AudioJob) -> None:
        self.schedule.enqueue(job.uid)
        self._jobs.put(job)

    def cancel(self) -> None:
        """Stop the utterance being made (its schedule entry is cut by the caller)."""
        with self._lock:
            self._generation += 1

    def warm_up(self) -> None:
        """Load the voice and the mouth models now, not on the first utterance."""
        from facecast.motion.from_audio import track_from_audio
        from facecast.motion.from_phonemes import track_from_phonemes
        from facecast.speech.synth import synthesize

        speech = synthesize("Hello there.", self.voice)
        track_from_phonemes(speech.phonemes, speech.audio.duration, fps=100.0)
        track_from_audio(speech.audio, fps=100.0)
        speech.audio.resampled(AUDIO_RATE)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                generation = self._generation
            try:
                if isinstance(job, TextJob):
                    self._speak_text(job, generation)
                else:
                    self._speak_audio(job, generation)
            except Exception as exc:  # reported as the utterance's end, the session lives on
                self.on_error(job.uid, exc)
            self.schedule.finish(job.uid, self.frame_now())
            if self._jobs.empty():
                # the synthesis's buffers are free now: their pages go back (the
                # thresholds that return the big ones at once: heap.settle)
                heap.trim()

    def _place(self, uid: str, samples: np.ndarray, mouth: np.ndarray,
               words: list[tuple[str, float]]) -> bool:
        """One piece on the schedule (False: the utterance was cut meanwhile)."""
        start = self.schedule.place(uid, samples, mouth, words, self.frame_now())
        if start is None:
            return False
        self.on_placed(start)
        return True

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _pieces(self, job: TextJob) -> Generator[Speech, None, None]:
        """The text's speech a piece at a time, each piece's timings from its own start.

        The first piece (a short clause, ``FIRST_CHUNK_CHARS``) is made alone: made
        beside the second, as :func:`facecast.speech.synth.stream` does, it took 1.5x
        as long on two busy cores, and it is what the viewer waits for. The rest streams
        two at a time while the first plays.
        """
        from facecast.speech.synth import FIRST_CHUNK_CHARS, spoken_text, stream, synthesize
        from facecast.speech.text import split_sentences

        opts = {"rate": job.rate, "pitch": job.pitch, "volume": job.volume}
        parts = split_sentences(spoken_text(job.text, self.voice),
                                first_max_chars=FIRST_CHUNK_CHARS)
        yield synthesize(parts[0], self.voice, **opts)
        if len(parts) < 2:
            return
        rest = stream(" ".join(parts[1:]), self.voice, **opts)
        try:
            offset = 0.0
            for piece in rest:
                yield _shifted(piece, offset)
                offset += piece.audio.duration
        finally:
            close = getattr(rest, "close", None)  # a generator: the sentences not yet
            if close is not None:                 # made are not made
                close()

    def _speak_text(self, job: TextJob, generation: int) -> None:
        from facecast.motion.from_phonemes import track_from_phonemes
        from facecast.pipeline.talking_photo import PHONEME_LEAD_S

        pieces = self._pieces(job)
        try:
            for piece in pieces:
                if not self._current(generation):
                    return
                track = track_from_phonemes(piece.phonemes, piece.audio.duration, fps=100.0,
                                            lead=PHONEME_LEAD_S).resampled(self.fps)
                words = [(w.word, w.start) for w in piece.words]
                samples = piece.audio.resampled(AUDIO_RATE).samples
                if not self._place(job.uid, samples, track.values, words):
                    return
        finally:
            pieces.close()

    def _speak_audio(self, job: AudioJob, generation: int) -> None:
        """Place the job's audio block by block as its pieces arrive: a block is placed
        once it is all here (or the audio has ended), so the first plays while the
        caller is still decoding the rest. Only the analysis context before the next
        block is held, however long the audio."""
        from facecast.motion.from_audio import track_from_audio

        spf = AUDIO_RATE // self.fps
        # block edges on frame edges: each block's mouth starts on its first frame
        first = max(spf, int(FIRST_BLOCK_S * AUDIO_RATE) // spf * spf)
        step = max(spf, int(BLOCK_S * AUDIO_RATE) // spf * spf)
        context = int(CONTEXT_S * AUDIO_RATE) // spf * spf
        held, base = np.zeros(0, np.float32), 0  # held[i] is sample base + i
        start, ended = 0, False
        while True:
            want = start + (first if start == 0 else step)
            while not ended and base + len(held) < want:
                piece = job.pieces.get()
                if piece is None:
                    ended = True
                else:
                    held = np.concatenate([held, self._at_our_rate(piece, job.sample_rate)])
            end = min(base + len(held), want)
            if start >= end or not self._current(generation):
                return
            lo = max(0, start - context)
            track = track_from_audio(Audio(held[lo - base:end - base], AUDIO_RATE), fps=100.0)
            values = track.resampled(self.fps).values[(start - lo) // spf:]
            if not self._place(job.uid, held[start - base:end - base], values, []):
                return
            start = end
            drop = max(0, start - context) - base
            if drop > 0:
                held, base = held[drop:], base + drop

    @staticmethod
    def _at_our_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
        audio = Audio(np.asarray(samples, np.float32), sample_rate)
        return audio.resampled(AUDIO_RATE).samples


def _shifted(speech: Speech, offset: float) -> Speech:
    """``speech`` with its timings moved ``offset`` seconds earlier (to its own start)."""
    return Speech(speech.audio,
                  [PhonemeTiming(p.phoneme, p.start - offset, p.end - offset)
                   for p in speech.phonemes],
                  [WordTiming(w.word, w.start - offset, w.end - offset) for w in speech.words],
                  speech.voice, speech.text)
