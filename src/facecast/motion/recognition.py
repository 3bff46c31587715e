"""English speech recognition without a transcript, for a speech-aware mouth.

When only a sound file is given, the mouth should still follow what was said
(closed lips on p/b/m, rounded on "oo", open on "ah"), not only how loud it
was. As Rhubarb Lip Sync does, the words are recognised first and then their
phones aligned: pocketsphinx 5 decodes the 16 kHz audio with its bundled
en-US acoustic model, language model and dictionary, and a second pass
(``set_alignment`` on the recognised words) gives every phone its frames. The
words may be wrong ("the moral spell" for "the mortal peril"), but
near-homophones share their lip shapes, which is all the mouth needs (a
phone-loop decode without words measured worse against real lips in issue #14:
r 0.18 against 0.27).

Confidence: the recogniser always answers in English words, also for German,
Chinese or noise. Two of its own figures tell real English from the rest,
both averaged over the frames of the recognised words:

- the words' lattice posteriors (how sure the decoder is of each word against
  its competitors): English 0.6-0.8, other languages 0.3-0.5;
- the words' acoustic score per frame against the best-scoring senone of that
  frame (how well English phones explain the sound): English about -3,
  other languages -4.4 or lower.

:attr:`Recognition.confidence` maps them to 0..1; below
:data:`MIN_CONFIDENCE` the caller should use the spectral track instead.

Audio is decoded in chunks cut in pauses (the quietest :data:`CUT_WINDOW_S` near
each boundary), so the lattice stays small and memory does not grow with the
audio: the first two of about :data:`FIRST_CHUNK_S` seconds, each next one twice
as long up to :data:`CHUNK_S`. The short first chunk lets a render start on the
words heard so far (``on_chunk``) while the rest is still decoded
(:mod:`facecast.motion.recognition_process`); audio up to 1.5x the first chunk
is one chunk. Cost on 2 cores: about 0.1 s of CPU per second of
audio (decode about 0.08, alignment 0.02) at the beams below; pocketsphinx's
own defaults cost about twice as much for the same lip correlation.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecast.media.audio import Audio
from facecast.motion.align import ALIGN_OFFSET_S, FRAME_S, SAMPLE_RATE, _base_word
from facecast.timing import PhonemeTiming, WordTiming

log = logging.getLogger(__name__)

# Narrower than pocketsphinx's defaults (beam 1e-48, wbeam 7e-29, pbeam 1e-48, maxhmmpf
# 30000, no maxwpf, topn 4): about half the CPU. The second (fwdflat) pass stays on: without it
# Klobuchar's lip correlation fell from 0.66 to 0.40.
DECODER_CONFIG: dict[str, Any] = {
    "beam": 1e-40, "wbeam": 1e-30, "pbeam": 1e-40,
    "maxhmmpf": 1000, "maxwpf": 5, "topn": 2,
}
CHUNK_S = 20.0
# The first chunk's length: its words come about 1 s of CPU after the audio, so a render
# can start on them; the second is as short, so the render draws on it too and waits
# less for the last (512x512, 27 s: 358 frames drawn before the whole, not 172). The
# chunks after it double, up to CHUNK_S. Each cut changes what is heard (each chunk is
# normalised on its own): Obama's 20 s cut at 7 s read r 0.35 against his real lips,
# 0.39 whole (bench/README.md, "Speed bar, third round").
FIRST_CHUNK_S = 10.0
# A chunk boundary moves to the quietest stretch of CUT_WINDOW_S (a pause, not a stop
# consonant's 10 ms closure) within CUT_SEARCH_S of it (at most half the chunk).
CUT_SEARCH_S = 3.0
CUT_WINDOW_S = 0.2
# Confidence (0..1) below which the words are not trusted (see the module docstring).
MIN_CONFIDENCE = 0.5
# Too little recognised speech to judge a language by: fall back.
MIN_SPEECH_S = 0.5
# Where the two cues map to confidence 0.5, and their scales (logistic).
_POSTERIOR_MID, _POSTERIOR_SCALE = 0.55, 0.08
_ACOUSTIC_MID, _ACOUSTIC_SCALE = -3.9, 0.25
_FILLERS = frozenset({"<s>", "</s>", "<sil>"})


@dataclass(frozen=True)
class Recognition:
    """What :func:`recognise` heard: words, phone timings (ARPAbet, ``SIL``) and how sure."""

    words: list[WordTiming]
    phonemes: list[PhonemeTiming]
    posterior: float  # duration-weighted mean word posterior, 0..1
    acoustic: float  # mean acoustic log score per word frame (0 = best; -inf: no words)
    speech_s: float  # seconds covered by recognised words
    cpu_s: float = 0.0  # CPU seconds spent recognising
    # Seconds of the audio heard so far: a part, handed to ``on_chunk`` while later chunks
    # are still decoded; None: the whole audio.
    until_s: float | None = None

    @property
    def partial(self) -> bool:
        return self.until_s is not None

    @property
    def confidence(self) -> float:
        """0..1: how likely the audio is English speech that the phones explain."""
        if self.speech_s < MIN_SPEECH_S or not self.words:
            return 0.0
        post = 1.0 / (1.0 + np.exp(-(self.posterior - _POSTERIOR_MID) / _POSTERIOR_SCALE))
        ac = 1.0 / (1.0 + np.exp(-(self.acoustic - _ACOUSTIC_MID) / _ACOUSTIC_SCALE))
        # Both must hold: the geometric mean lets one clear failure veto.
        return float(np.sqrt(post * ac))

    @property
    def confident(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE

    def summary(self) -> dict[str, Any]:
        """Small, JSON-ready figures for a track's meta."""
        return {
            "words": len(self.words),
            "confidence": round(self.confidence, 3),
            "posterior": round(self.posterior, 3),
            "acoustic": round(self.acoustic, 2) if np.isfinite(self.acoustic) else None,
            "speech_s": round(self.speech_s, 2),
        }


def new_decoder() -> Any:
    """A fresh decoder, for one recognition only. Reusing one would save its 0.2-0.8 s of
    loading, but its Gaussian selection carries state from the audio it heard before (the
    same clip's word posteriors moved 0.77 -> 0.72 on a second pass), and the same audio
    must give the same mouth."""
    from pocketsphinx import Decoder

    return Decoder(loglevel="FATAL", **DECODER_CONFIG)


def _is_word(name: str) -> bool:
    return name not in _FILLERS and not name.startswith(("[", "+"))


def chunk_bounds(samples: np.ndarray, rate: int = SAMPLE_RATE, chunk_s: float = CHUNK_S,
                 first_s: float = FIRST_CHUNK_S) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges: the first two about ``first_s``, each next twice the
    one before up to ``chunk_s``, cut in the middle of the quietest :data:`CUT_WINDOW_S` near
    each boundary; a rest of up to 1.5x the next length stays with the last chunk."""
    n = len(samples)
    hop = int(FRAME_S * rate)
    frames = n // hop
    energy = np.square(samples[: frames * hop].astype(np.float64)).reshape(frames, hop).mean(1)
    win = max(1, int(round(CUT_WINDOW_S / FRAME_S)))
    # mean energy of the window starting at each frame
    sums = np.concatenate([[0.0], np.cumsum(energy)])
    windowed = (sums[win:] - sums[:-win]) / win if frames >= win else energy
    cuts = [0]
    length = min(first_s, chunk_s)
    while n - cuts[-1] > int(1.5 * length * rate):
        centre = (cuts[-1] + int(length * rate)) // hop
        search = int(min(CUT_SEARCH_S, length / 2) / FRAME_S)
        lo = max(centre - search, cuts[-1] // hop + 1)
        # a last chunk of at least half this length: a sliver would be heard out of context
        hi = min(centre + search, len(windowed), (n - int(0.5 * length * rate)) // hop)
        cuts.append((int(lo + np.argmin(windowed[lo:hi])) + win // 2) * hop)
        # the second chunk as short as the first: the render draws on it too, and then
        # waits for less at the end
        length = min(length if len(cuts) == 2 else 2 * length, chunk_s)
    cuts.append(n)
    return list(itertools.pairwise(cuts))


def recognise(audio: Audio, *, decoder: Any = None,
              on_chunk: Callable[[Recognition], None] | None = None) -> Recognition:
    """Recognise English words in ``audio`` and time their phones (no transcript needed).

    ``decoder``: a fresh one from :func:`new_decoder`, made ahead of the audio (the
    recogniser's child process loads its models while it waits); None makes one.
    Never raises for odd audio (silence, noise, another language): such input
    comes back with few words and a low :attr:`Recognition.confidence`.

    ``on_chunk``: told, after each chunk but the last, what was heard up to its end
    (a partial :class:`Recognition`, ``until_s`` set); the words and phones of a chunk
    are those of the whole result (each chunk is decoded on its own).
    """
    t0 = time.process_time()
    samples = np.clip(audio.resampled(SAMPLE_RATE).samples, -1.0, 1.0)
    duration = audio.duration
    if decoder is None:
        decoder = new_decoder()
    words: list[WordTiming] = []
    phones: list[PhonemeTiming] = []
    post_sum = ac_sum = 0.0
    frames = 0
    bounds = chunk_bounds(samples)
    for index, (start, end) in enumerate(bounds):
        if on_chunk is not None and index > 0:
            on_chunk(_heard(words, phones, post_sum, ac_sum, frames, t0,
                            until_s=start / SAMPLE_RATE))
        pcm = (samples[start:end] * 32767.0).astype("<i2").tobytes()
        base = start / SAMPLE_RATE + ALIGN_OFFSET_S

        def sec(frame: float, base: float = base) -> float:
            return float(min(max(frame * FRAME_S + base, 0.0), duration))

        try:
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            segs = list(decoder.seg() or [])
        except RuntimeError as exc:  # a chunk the decoder cannot handle is simply not heard
            log.info("recognition failed on %.1f-%.1f s: %s", start / SAMPLE_RATE,
                     end / SAMPLE_RATE, exc)
            continue
        heard = [s for s in segs if _is_word(s.word)]
        for s in heard:
            n = s.end_frame - s.start_frame + 1
            frames += n
            post_sum += n * float(s.prob)
            # ``ascore`` comes back exponentiated; its log is the word's score (a word
            # of over ~1.8 s would underflow to the floor: only ever noise, so fine).
            ac_sum += float(np.log(max(float(s.ascore), 1e-300)))
            words.append(WordTiming(_base_word(s.word), sec(s.start_frame),
                                    sec(s.end_frame + 1)))
        if not heard:
            continue
        phones.extend(_phone_pass(decoder, pcm, segs, sec))
    return _heard(words, phones, post_sum, ac_sum, frames, t0)


def _heard(words: list[WordTiming], phones: list[PhonemeTiming], post_sum: float,
           ac_sum: float, frames: int, t0: float, until_s: float | None = None
           ) -> Recognition:
    """The recognition from the running sums (copies of the lists: a partial one stays
    as it was when later chunks add to them)."""
    return Recognition(
        words=list(words),
        phonemes=list(phones),
        posterior=post_sum / frames if frames else 0.0,
        acoustic=ac_sum / frames if frames else -np.inf,
        speech_s=frames * FRAME_S,
        cpu_s=time.process_time() - t0,
        until_s=until_s,
    )


def _phone_pass(decoder: Any, pcm: bytes, segs: list[Any],
                sec: Callable[[float], float]) -> list[PhonemeTiming]:
    """Phone timings of the recognised words (second pass); even spread if it fails."""
    out: list[PhonemeTiming] = []
    try:
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
        raw = [(p.name, p.start, p.start + p.duration) for p in alignment.phones()] \
            if alignment is not None else []
    except RuntimeError as exc:
        log.info("phone alignment of the recognised words failed (%s)", exc)
        raw = []
    finally:
        decoder.activate_search()  # back to the language model for the next chunk
    if not raw:
        for s in segs:
            b, e = s.start_frame, s.end_frame + 1
            pron = (decoder.lookup_word(s.word) or "").split() if _is_word(s.word) else []
            if not pron:
                raw.append(("SIL", b, e))
                continue
            edges = np.linspace(b, e, len(pron) + 1)
            raw.extend((p, edges[i], edges[i + 1]) for i, p in enumerate(pron))
    for name, b, e in raw:
        label = "SIL" if name.upper() in ("SIL", "<SIL>") or name.startswith("+") else name
        start, end = sec(b), sec(e)
        if end > start:
            out.append(PhonemeTiming(label, start, end))
    return out
