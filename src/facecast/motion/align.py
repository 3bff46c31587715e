"""English forced alignment of a known transcript with pocketsphinx 5.

Given speech and the words spoken, find when each word and each phone
(ARPAbet) happens. The recipe (STACK.md): 16 kHz audio, ``set_align_text`` and
a first decode for word boundaries, then ``set_alignment`` and a second decode
for phones. Wide beams keep synthetic (robotic) voices from falling off the
search; ``bestpath`` stays off because its lattice can give a phone fewer
frames than its HMM has states, which breaks the second pass.

Words missing from the dictionary (names, numbers, coinages) get a
pronunciation from espeak-ng, which piper bundles, mapped from IPA to ARPAbet;
a word that cannot be pronounced at all is left out of the alignment and gets
its time from its neighbours.

Timing convention: pocketsphinx reports segment starts about 47 ms earlier
than the acoustic segment labels facecast uses elsewhere (piper's phoneme
alignments, STACK.md); :data:`ALIGN_OFFSET_S` is added to every time so both
sources drive the mouth identically.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from facecast.errors import InputError
from facecast.media.audio import Audio
from facecast.motion.visemes import IPA_TO_ARPABET, is_marker
from facecast.timing import PhonemeTiming, WordTiming

log = logging.getLogger(__name__)

ALIGN_OFFSET_S = 0.047
SAMPLE_RATE = 16000
FRAME_S = 0.01  # pocketsphinx frame rate is 100 per second
# Beams wide enough for TTS voices (STACK.md); alignment is a linear grammar, so
# the cost stays small (about 26x real time on 2 cores).
_BEAMS = {"beam": 1e-100, "wbeam": 1e-80, "pbeam": 1e-100}
_NON_WORDS = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "++NOISE++"})
_WORD_RE = re.compile(r"[0-9A-Za-z\u00C0-\u024F]+(?:['\u2019][A-Za-z]+)*")


@dataclass(frozen=True)
class _Token:
    text: str  # as written in the transcript (punctuation stripped)
    key: str  # the dictionary word pocketsphinx aligns


def _tokens(text: str) -> list[str]:
    return [m.group(0).replace("\u2019", "'") for m in _WORD_RE.finditer(text)]


def ipa_to_arpabet(ipa: str | list[str]) -> list[str]:
    """ARPAbet phones for an espeak IPA string (stress and length marks dropped)."""
    chars = [c for c in (list(ipa) if isinstance(ipa, str) else ipa) if not is_marker(c)]
    out: list[str] = []
    i = 0
    while i < len(chars):
        pair = "".join(chars[i : i + 2])
        if len(pair) == 2 and pair in IPA_TO_ARPABET:
            phone, i = IPA_TO_ARPABET[pair], i + 2
        else:
            phone, i = IPA_TO_ARPABET.get(chars[i], ""), i + 1
        if phone:
            out.append(phone)
    return out


def _pronounce(word: str) -> list[str]:
    """Guess a pronunciation with espeak-ng (US English); [] when it has none."""
    try:
        from facecast.speech import piper_espeak

        with piper_espeak.LOCK:
            sentences = piper_espeak.phonemizer().phonemize("en-us", word)
    except Exception as exc:  # espeak is optional help here, never a reason to fail
        log.debug("espeak could not phonemize %r: %s", word, exc)
        return []
    return ipa_to_arpabet([c for s in sentences for c in s])


def _decoder() -> Any:
    from pocketsphinx import Decoder

    return Decoder(lm=None, loglevel="FATAL", bestpath=False, **_BEAMS)


def _prepare(decoder: Any, text: str) -> list[_Token]:
    """Transcript words as dictionary words, adding espeak pronunciations for unknown ones."""
    tokens: list[_Token] = []
    for raw in _tokens(text):
        key = raw.lower()
        if decoder.lookup_word(key) is None:
            phones = _pronounce(raw)
            if not phones:
                log.info("no pronunciation for %r; it is left out of the alignment", raw)
                continue
            decoder.add_word(key, " ".join(phones), True)
        tokens.append(_Token(raw, key))
    return tokens


def _run(decoder: Any, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _base_word(name: str) -> str:
    return re.sub(r"\(\d+\)$", "", name)


def align_transcript(
    audio: Audio, text: str, *, offset: float = ALIGN_OFFSET_S
) -> tuple[list[WordTiming], list[PhonemeTiming]]:
    """Word and phone timings of ``text`` in ``audio`` (seconds; ARPAbet phones, ``SIL`` pauses).

    ``offset`` is added to pocketsphinx's times (see the module docstring).
    Raises :class:`InputError` with ``code="transcript_alignment_failed"`` when
    the transcript has no alignable words or the audio cannot be aligned to it.
    """
    decoder = _decoder()
    tokens = _prepare(decoder, text)
    if not tokens:
        raise InputError(
            "the transcript has no words that can be aligned",
            code="transcript_alignment_failed",
        )
    samples = np.clip(audio.resampled(SAMPLE_RATE).samples, -1.0, 1.0)
    pcm = (samples * 32767.0).astype("<i2").tobytes()
    duration = len(samples) / SAMPLE_RATE
    try:
        decoder.set_align_text(" ".join(t.key for t in tokens))
        _run(decoder, pcm)
        # No hypothesis at all (silence, noise, far too short) comes back as None.
        first_pass = [
            (_base_word(s.word), s.start_frame, s.end_frame + 1)
            for s in (decoder.seg() or [])
        ]
    except RuntimeError as exc:
        raise InputError(
            f"the speech could not be aligned to the transcript: {exc}",
            code="transcript_alignment_failed",
        ) from exc
    aligned_words = [w for w in first_pass if w[0] not in _NON_WORDS]
    if [w[0] for w in aligned_words] != [t.key for t in tokens]:
        raise InputError(
            "the speech could not be aligned to the transcript (the recogniser did not "
            "reach the end of the text)",
            code="transcript_alignment_failed",
        )

    def sec(frame: float) -> float:
        return float(min(max(frame * FRAME_S + offset, 0.0), duration))

    words = [
        WordTiming(tok.text, sec(b), sec(e))
        for tok, (_, b, e) in zip(tokens, aligned_words, strict=True)
    ]
    phones = _phone_pass(decoder, pcm, first_pass, sec)
    return words, phones


def _phone_pass(
    decoder: Any,
    pcm: bytes,
    first_pass: list[tuple[str, int, int]],
    sec: Callable[[float], float],
) -> list[PhonemeTiming]:
    """Phone timings from the second pass; if it fails, phones spread evenly over each word."""
    try:
        decoder.set_alignment()
        _run(decoder, pcm)
        alignment = decoder.get_alignment()
        phones = [
            (p.name, p.start, p.start + p.duration) for p in alignment.phones()
        ] if alignment is not None else []
    except RuntimeError as exc:
        log.info("phone alignment failed (%s); spreading phones evenly over words", exc)
        phones = []
    if not phones:
        for word, b, e in first_pass:
            if word in _NON_WORDS or word.startswith("+"):
                phones.append(("SIL", b, e))
                continue
            pron = (decoder.lookup_word(word) or "").split() or ["SIL"]
            edges = np.linspace(b, e, len(pron) + 1)
            phones.extend((p, edges[i], edges[i + 1]) for i, p in enumerate(pron))
    out: list[PhonemeTiming] = []
    for name, b, e in phones:  # frames
        label = "SIL" if name.upper() in ("SIL", "<SIL>") or name.startswith("+") else name
        start, end = sec(b), sec(e)
        if end > start:
            out.append(PhonemeTiming(label, start, end))
    return out
