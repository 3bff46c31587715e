"""Phoneme timings -> :class:`MouthTrack`, with coarticulation (dominance model).

Each phoneme pulls every mouth channel towards its viseme target with a
dominance that is flat over the phoneme's own span and decays beyond it
(Cohen & Massaro 1993). A channel's value at time t is the dominance-weighted
mean of all targets, so a vowel's jaw opening flows into its consonants, lip
rounding reaches ahead over several consonants, and a p/b/m (which owns the
``closure`` channel) shuts the lips at its centre whatever surrounds it.

:func:`merge_markers` first turns piper/espeak token streams into real
phonemes: stress, length and punctuation tokens carry durations of their own in
piper's alignments, and those durations are folded into their neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facecast.motion.track import CHANNELS, MouthTrack
from facecast.motion.visemes import (
    AFFRICATES,
    DIPHTHONGS,
    SILENCE,
    STRESS_MARKS,
    TIE_BARS,
    is_marker,
    is_silence,
    strip_ipa,
    viseme_for,
)
from facecast.timing import PhonemeTiming

# A pause between words shorter than this is coarticulation, not rest: the mouth
# would not visibly settle, so its time goes to the neighbouring sounds.
MIN_PAUSE_S = 0.08
# Lips lead the sound they make (anticipatory articulation, ~40-80 ms in real
# speech; the project's lip-sync measure wants 0..+120 ms). Timings from piper or
# the aligner mark acoustic segments, so the track is drawn this much earlier.
DEFAULT_LEAD_S = 0.06
# Anticipatory influence lasts this much longer than carry-over, per channel
# (jaw, spread, round, closure, labiodental, teeth, tongue): jaw and lip shape are
# prepared early (rounding most of all), lip and tongue contact just in time.
ANTICIPATION = np.array([1.5, 1.5, 2.0, 1.0, 1.0, 1.5, 1.0])
DECAY_POWER = 1.5
# Lip contact is held this long past the middle of a p/b/m/f/v as heard.
CONTACT_HOLD_S = 0.01
# Shortest lip contact (p b m f v) shown, seconds: one 25 fps video frame.
MIN_CONTACT_S = 0.04
_STOPS = frozenset("pbtdkɡgqcɟʔ") | frozenset({"P", "B", "T", "D", "K", "G", "CH", "JH"})


def _is_stop(phoneme: str) -> bool:
    base = strip_ipa(phoneme)
    return phoneme in _STOPS or base[:1] in _STOPS or base in _STOPS


def _split_cluster(p: PhonemeTiming) -> list[PhonemeTiming]:
    """A joined diphthong or affricate as two timed parts; anything else unchanged."""
    key = "".join(ch for ch in p.phoneme if ch not in TIE_BARS)
    if key[:1].isupper():  # ARPAbet: AY1 -> AY
        key = key.rstrip("012")
    base = strip_ipa(key)
    for table in (DIPHTHONGS, AFFRICATES):
        for name in (key, base):
            if name in table:
                first, second, share = table[name]
                mid = p.start + share * (p.end - p.start)
                return [PhonemeTiming(first, p.start, mid), PhonemeTiming(second, mid, p.end)]
    return [p]


def merge_markers(
    phonemes: Sequence[PhonemeTiming], *, min_pause: float = MIN_PAUSE_S
) -> list[PhonemeTiming]:
    """Real phonemes and pauses only, with every marker's time given to a neighbour.

    - stress marks (ˈ ˌ) go to the next sound of the same word: piper voices the
      stressed vowel's onset during the stress token;
    - length and modifier marks (ː ʰ combining marks, tone digits) extend the sound
      before them; a tie bar joins its two neighbours into one sound;
    - a run of gap tokens (space, punctuation, ^ $ _) becomes a ``SIL`` pause when
      it lasts ``min_pause`` or more, or opens/closes the utterance; otherwise it is
      split between its neighbours, except that a stop next to it takes all of it
      (piper voices a stop's closure in the space before or after the word);
    - joined diphthongs/affricates ("aɪ", "t͡ʃ") become two timed parts, so the
      lips can glide; separate characters ("o", "ʊ") already are.

    Boundaries are only moved, never created or lost, so durations sum exactly
    as before (gaps in the input stay gaps).
    """
    items = [
        p for p in phonemes
        if p.end > p.start or not is_marker(p.phoneme) or p.phoneme in TIE_BARS
    ]
    # Pass 1: tie bars and joined tokens.
    joined: list[PhonemeTiming] = []
    i = 0
    while i < len(items):
        p = items[i]
        if p.phoneme in TIE_BARS and joined and i + 1 < len(items):
            prev, nxt = joined.pop(), items[i + 1]
            joined.append(PhonemeTiming(prev.phoneme + nxt.phoneme, prev.start, nxt.end))
            i += 2
            continue
        joined.append(p)
        i += 1

    # Pass 2: classify; stress/modifiers attach to a neighbour, gaps group into runs.
    out: list[PhonemeTiming] = []
    pending_start: float | None = None  # stress-mark time waiting for the next sound
    gap: list[PhonemeTiming] = []

    def flush_gap(next_phone: PhonemeTiming | None) -> PhonemeTiming | None:
        """Resolve the pending gap run; return ``next_phone`` with its start adjusted."""
        nonlocal gap
        if not gap:
            return next_phone
        g0, g1 = gap[0].start, gap[-1].end
        gap = []
        prev = out[-1] if out and not is_silence(out[-1].phoneme) else None
        at_edge = not out or next_phone is None
        contiguous_prev = prev is not None and abs(prev.end - g0) < 1e-9
        contiguous_next = next_phone is not None and abs(next_phone.start - g1) < 1e-9
        if at_edge or g1 - g0 >= min_pause or not (contiguous_prev or contiguous_next):
            if out and is_silence(out[-1].phoneme) and abs(out[-1].end - g0) < 1e-9:
                out[-1] = PhonemeTiming(SILENCE, out[-1].start, g1)
            else:
                out.append(PhonemeTiming(SILENCE, g0, g1))
            return next_phone
        if not contiguous_prev:
            share_prev = 0.0
        elif not contiguous_next:
            share_prev = 1.0
        else:
            prev_stop = _is_stop(prev.phoneme) if prev else False
            next_stop = next_phone is not None and _is_stop(next_phone.phoneme)
            share_prev = 1.0 if prev_stop and not next_stop else 0.0 if next_stop and not (
                prev_stop
            ) else 0.5
        cut = g0 + share_prev * (g1 - g0)
        if prev is not None and contiguous_prev:
            out[-1] = PhonemeTiming(prev.phoneme, prev.start, cut)
        if next_phone is not None and contiguous_next:
            next_phone = PhonemeTiming(next_phone.phoneme, cut, next_phone.end)
        return next_phone

    for p in joined:
        tok = p.phoneme
        if is_silence(tok):
            if pending_start is not None:  # a stress mark with no sound after it
                gap.append(PhonemeTiming(" ", pending_start, p.start))
                pending_start = None
            gap.append(p)
            continue
        if tok and all(ch in STRESS_MARKS for ch in tok):
            if pending_start is None:
                pending_start = p.start
            continue
        if is_marker(tok):  # length / modifier: extend the previous sound
            if out and not is_silence(out[-1].phoneme) and not gap and pending_start is None:
                out[-1] = PhonemeTiming(out[-1].phoneme + tok, out[-1].start, p.end)
            elif pending_start is None:
                pending_start = p.start
            continue
        cur = p
        if pending_start is not None:
            cur = PhonemeTiming(cur.phoneme, pending_start, cur.end)
            pending_start = None
        flushed = flush_gap(cur)
        assert flushed is not None
        out.extend(_split_cluster(flushed))
    if pending_start is not None:
        last_end = joined[-1].end
        if out and not gap and abs(out[-1].end - pending_start) < 1e-9:
            out[-1] = PhonemeTiming(out[-1].phoneme, out[-1].start, last_end)
        else:
            gap.append(PhonemeTiming(" ", pending_start, last_end))
    flush_gap(None)
    # Labels: drop length/modifier marks kept on the sound, so tables see the base.
    return [
        PhonemeTiming(SILENCE if is_silence(p.phoneme) else _clean_label(p.phoneme), p.start, p.end)
        for p in out
    ]


def _clean_label(phoneme: str) -> str:
    if phoneme[:1].isupper():
        return phoneme
    base = strip_ipa(phoneme)
    return base or phoneme


def track_from_phonemes(
    phonemes: list[PhonemeTiming],
    duration: float,
    fps: float = 100.0,
    *,
    lead: float = DEFAULT_LEAD_S,
) -> MouthTrack:
    """A mouth track of ``duration`` seconds at ``fps`` from timed phonemes (IPA or ARPAbet).

    Markers are merged first (:func:`merge_markers`); time not covered by any
    phoneme is rest. ``lead`` seconds of anticipation draw the mouth ahead of
    the sound (0 for acoustically exact timing).
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    n = max(1, round(duration * fps))
    phones = _fill_gaps(merge_markers(phonemes), duration)
    t = np.arange(n, dtype=np.float64) / fps + lead

    # Far from every phoneme the face is at rest: a weak rest target everywhere.
    num = np.zeros((n, len(CHANNELS)))
    den = np.full((n, len(CHANNELS)), 1e-3)
    for p in phones:
        if p.end <= p.start:
            continue
        vis = viseme_for(p.phoneme)
        centre = 0.5 * (p.start + p.end)
        half = 0.5 * (p.end - p.start)
        # Flat top over the inner part of the phoneme, then a fall of the form
        # exp(-(d / reach)^1.5) (Cohen & Massaro's exp(-theta |tau|^c)); c > 1
        # makes short-reach channels (lip contact) let go cleanly.
        plateau = 0.6 * half
        if vis.kind in ("bilabial", "labiodental"):
            # Lip contact must last long enough to be seen: at 25 fps a 23 ms /m/
            # could fall between two video frames.
            plateau = max(plateau, MIN_CONTACT_S / 2)
        reach = vis.reach_array()
        span = 6.0 * float(reach.max()) + 0.05
        lo = int(np.searchsorted(t, p.start - span))
        hi = int(np.searchsorted(t, p.end + span))
        if hi <= lo:
            continue
        tt = t[lo:hi]
        dist = np.maximum(np.abs(tt - centre) - plateau, 0.0)
        # Anticipation reaches further than carry-over (lips prepare the next sound).
        stretch = np.where((tt < centre)[:, None], ANTICIPATION[None, :], 1.0)
        dom = vis.dominance_array() * np.exp(
            -((dist[:, None] / stretch / reach[None, :]) ** DECAY_POWER)
        )
        num[lo:hi] += dom * vis.target_array()
        den[lo:hi] += dom
    values = np.clip(num / den, 0.0, 1.0)
    _hold_lip_contacts(values, phones, t, lead)
    values = _smooth(values, fps)
    return MouthTrack(fps, values, source="phonemes",
                      meta={"phonemes": len(phones), "lead_s": lead})


def _hold_lip_contacts(values: np.ndarray, phones: list[PhonemeTiming], t: np.ndarray,
                       lead: float) -> None:
    """Keep the lips shut from the anticipated contact until the sound is heard.

    Lips close ahead of a /p b m/ (or meet the teeth ahead of /f v/) and stay so
    into the burst or friction. Drawing the whole track ``lead`` early would
    otherwise release them before the phoneme is heard, when piper's bilabials
    last only 25-45 ms; holding past the phoneme's middle would eat into a short
    vowel after it. ``t`` is the phoneme time of each sample.
    """
    for p in phones:
        kind = viseme_for(p.phoneme).kind
        if kind not in ("bilabial", "labiodental"):
            continue
        channel = CHANNELS.index("closure" if kind == "bilabial" else "labiodental")
        hold_until = 0.5 * (p.start + p.end) + lead + CONTACT_HOLD_S
        sel = (t >= p.start) & (t <= min(hold_until, p.end + lead))
        values[sel, channel] = np.maximum(values[sel, channel], 1.0)


def _fill_gaps(phones: list[PhonemeTiming], duration: float) -> list[PhonemeTiming]:
    """``phones`` with explicit pauses wherever nothing is said, from 0 to ``duration``.

    Without them a phoneme's dominance tail would be the only voice in an
    uncovered stretch and hold the mouth open through it.
    """
    out: list[PhonemeTiming] = []
    t = 0.0

    def add(p: PhonemeTiming) -> None:
        # One long pause, not several short ones: its flat top then spans it all.
        if out and p.phoneme == SILENCE == out[-1].phoneme and p.start <= out[-1].end + 1e-6:
            out[-1] = PhonemeTiming(SILENCE, out[-1].start, max(out[-1].end, p.end))
        else:
            out.append(p)

    for p in sorted(phones, key=lambda q: q.start):
        if p.start > t + 1e-6:
            add(PhonemeTiming(SILENCE, t, p.start))
        add(p)
        t = max(t, p.end)
    if duration > t + 1e-6:
        add(PhonemeTiming(SILENCE, t, duration))
    return out


def _smooth(values: np.ndarray, fps: float, sigma_s: float = 0.012) -> np.ndarray:
    """A light Gaussian blur: removes the kinks where plateaus meet their decay."""
    sigma = sigma_s * fps
    if sigma < 0.5:
        return values
    from scipy.ndimage import gaussian_filter1d

    return np.clip(gaussian_filter1d(values, sigma, axis=0, mode="nearest"), 0.0, 1.0)
