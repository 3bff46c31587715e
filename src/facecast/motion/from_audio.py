"""Speech audio -> :class:`MouthTrack` from acoustic features alone (any language).

No transcript, no phonemes, no language model: only what the sound itself
says about the mouth, so English, German, Chinese or anything else work the same.

- jaw: speech-band (300-3000 Hz) level in dB, placed between a robust noise
  floor and the speech's own loud level (percentiles), so the same speech at
  -20 dB gives the same track; nudged by a crude F1 cue (open vowels put more
  energy at 600-1000 Hz).
- spread / round: spectral balance of voiced frames, 1.5-3.5 kHz (F2 of i, e)
  against 200-1000 Hz (where u, o keep nearly all their energy), relative to
  the speaker's own median.
- closure: short dips of the speech band inside speech, followed by a rise
  (stop closures and nasal murmurs: p b m look like this; so do t k n, which is
  why the peak is scaled down when the burst is hissy like an alveolar).
- fricatives (4-8 kHz noise with little low-band energy): small jaw and teeth.
- silence (below floor + margin, with hangover) rests the mouth closed.

Then attack/release smoothing (opens faster than it closes) and an
anticipation lead: lips move about 60 ms before the sound they shape.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_closing, binary_opening, gaussian_filter1d, median_filter

from facecast.errors import InputError
from facecast.media.audio import Audio
from facecast.motion.track import CHANNEL_INDEX, CHANNELS, MouthTrack

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms
NFFT = 512
FRAME_RATE = SAMPLE_RATE / HOP  # analysis frames per second

# Lips lead the sound; the lag the project measures should be 0..+120 ms.
DEFAULT_LEAD_S = 0.06
ATTACK_S = 0.03  # opening time constant
RELEASE_S = 0.055  # closing time constant
# dB above the file's robust noise floor before a frame counts as speech.
SPEECH_MARGIN_DB = 6.0
# Levels this far below the loud speech level map to a closed jaw.
JAW_RANGE_DB = 30.0
_DIGITAL_SILENCE_DB = -95.0
BLOCK_FRAMES = 2000  # 20 s of 10 ms frames per spectrum block


def _frames(padded: np.ndarray, first: int, count: int) -> np.ndarray:
    """Windowed frames ``first .. first + count`` (frame k centred at k * 10 ms)."""
    idx = np.arange(WIN)[None, :] + HOP * (first + np.arange(count))[:, None]
    return padded[idx] * np.hanning(WIN)[None, :]


def _band_db(power: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sel = (freqs >= lo) & (freqs < hi)
    return 10.0 * np.log10(power[:, sel].mean(axis=1) + 1e-12)


def _one_pole(x: np.ndarray, attack_s: float, release_s: float, rate: float) -> np.ndarray:
    """Asymmetric one-pole follower: rises with ``attack_s``, falls with ``release_s``."""
    a_up = 1.0 - np.exp(-1.0 / (attack_s * rate))
    a_down = 1.0 - np.exp(-1.0 / (release_s * rate))
    y = np.empty_like(x)
    state = x[0] if len(x) else 0.0
    for i, v in enumerate(x):
        state += (a_up if v > state else a_down) * (v - state)
        y[i] = state
    return y


def _dip_closures(
    level: np.ndarray, active: np.ndarray, hiss: np.ndarray, rate: float
) -> np.ndarray:
    """Lip-closure evidence (0..1) from short level dips inside speech.

    A dip: a local minimum at least 8 dB under the louder of its surroundings on
    both sides within 150 ms, lasting under ~150 ms, with speech right after it.
    """
    n = len(level)
    out = np.zeros(n)
    if n < 5:
        return out
    w = int(round(0.15 * rate))
    smooth = gaussian_filter1d(level, 1.0)
    is_min = (smooth[1:-1] <= smooth[:-2]) & (smooth[1:-1] < smooth[2:])
    for m in np.flatnonzero(is_min) + 1:
        a, b = max(0, m - w), min(n, m + w + 1)
        left, right = smooth[a:m].max(initial=-np.inf), smooth[m + 1 : b].max(initial=-np.inf)
        depth = min(left, right) - smooth[m]
        if depth < 8.0 or not active[a:m].any() or not active[m + 1 : b].any():
            continue
        # Width at half depth tells a closure (under ~160 ms) from a pause.
        half = smooth[m] + 0.5 * depth
        after = np.flatnonzero(smooth[m:b] >= half)
        before = np.flatnonzero(smooth[a:m][::-1] >= half)
        if not len(after) or not len(before):
            continue
        if (after[0] + before[0]) / rate > 0.16:
            continue
        # A burst: the level climbs back quickly (>= 40% of the depth in 30 ms).
        rise = smooth[min(n - 1, m + after[0] + int(0.03 * rate))] - smooth[m + after[0]]
        burst = float(np.clip(rise / (0.4 * depth), 0.3, 1.0))
        # A hissy release (t, s after the dip) is more likely the tongue than the lips.
        release = hiss[min(n - 1, m + after[0])]
        strength = float(np.clip((depth - 8.0) / 12.0, 0.0, 1.0)) * (1.0 - 0.6 * release)
        # The lips are shut over the bottom of the dip only.
        bottom = smooth[m] + 0.3 * depth
        j0 = int(m)
        while j0 > a and smooth[j0 - 1] <= bottom:
            j0 -= 1
        j1 = int(m)
        while j1 < b - 1 and smooth[j1 + 1] <= bottom:
            j1 += 1
        idx = np.arange(max(0, j0 - 5), min(n, j1 + 6))
        dist = np.maximum(np.maximum(j0 - idx, idx - j1), 0) / rate
        bump = np.exp(-((dist / 0.015) ** 2))
        out[idx] = np.maximum(out[idx], strength * burst * bump)
    return out


def analyse(audio: Audio) -> dict[str, np.ndarray]:
    """Per-frame (10 ms hop) features: band levels in dB, hiss, activity."""
    x = audio.resampled(SAMPLE_RATE).samples.astype(np.float64)
    pad = WIN // 2
    n = int(np.ceil(len(x) / HOP))
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad + WIN + HOP)])
    freqs = np.fft.rfftfreq(NFFT, 1.0 / SAMPLE_RATE)
    bands = {"speech": (300.0, 3000.0), "low": (200.0, 1000.0), "f2": (1500.0, 3500.0),
             "high": (4000.0, 8000.0), "voice": (80.0, 1000.0)}
    feats = {name: np.empty(n) for name in (*bands, "f1")}
    sel = (freqs >= 150.0) & (freqs < 1200.0)
    # Spectra in blocks: whole-track frame and spectrum matrices would cost ~60 MB
    # per minute of speech, and peak memory must not grow with the audio's length.
    for first in range(0, n, BLOCK_FRAMES):
        count = min(BLOCK_FRAMES, n - first)
        power = np.abs(np.fft.rfft(_frames(padded, first, count), NFFT, axis=1)) ** 2
        block = slice(first, first + count)
        for name, (lo, hi) in bands.items():
            feats[name][block] = _band_db(power, freqs, lo, hi)
        # Where the 150-1200 Hz energy sits: a crude F1 (low for i u, high for a).
        p = power[:, sel]
        feats["f1"][block] = (p * freqs[sel]).sum(axis=1) / (p.sum(axis=1) + 1e-20)
    return feats


def track_from_audio(
    audio: Audio, fps: float = 100.0, *, lead: float = DEFAULT_LEAD_S
) -> MouthTrack:
    """A mouth track for ``audio`` (any language) at ``fps`` frames per second.

    ``lead`` seconds of anticipation draw the mouth ahead of the sound.
    Raises :class:`InputError` (``code="empty_audio"``) for audio without samples.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    if len(audio.samples) == 0:
        raise InputError("the audio has no samples", code="empty_audio")
    f = analyse(audio)
    rate = FRAME_RATE
    speech = median_filter(f["speech"], size=3, mode="nearest")
    n = len(speech)

    # Robust levels over frames that hold any signal at all (digital silence such
    # as zero padding would otherwise drag the floor to -120 dB).
    live = speech > _DIGITAL_SILENCE_DB
    ref = speech[live] if live.sum() >= 10 else speech
    loud = float(np.percentile(ref, 95))
    floor = float(np.percentile(ref, 5))
    lo = min(max(loud - JAW_RANGE_DB, floor + SPEECH_MARGIN_DB), loud - 12.0)

    # Speech activity with hangover: bridge gaps under 200 ms, drop blips under 50 ms.
    active = speech > max(floor + SPEECH_MARGIN_DB, lo)
    active = binary_closing(active, structure=np.ones(int(0.2 * rate)))
    active = binary_opening(active, structure=np.ones(int(0.05 * rate)))

    level = np.clip((speech - lo) / (loud - lo), 0.0, 1.2)
    # Hiss: 4-8 kHz noise well above the low band (s z f sh t-bursts).
    hiss = 1.0 / (1.0 + np.exp(-((f["high"] - f["low"]) - 0.0) / 3.0))
    hiss = np.where(active, hiss, 0.0)
    voiced = active & (f["voice"] > lo) & (hiss < 0.5)

    # Openness cue from the F1 proxy: 350 Hz (i, u) -> 0, 850 Hz (a) -> 1.
    openness = np.clip((f["f1"] - 350.0) / 500.0, 0.0, 1.0)
    openness = np.where(voiced, openness, 0.0)
    jaw = np.clip(level, 0.0, 1.0) ** 1.2 * (0.75 + 0.35 * openness)
    jaw *= 1.0 - 0.6 * hiss  # fricatives: teeth nearly together

    # Spread vs round from the spectral balance against the speaker's median.
    balance = gaussian_filter1d(f["f2"] - f["low"], 2.0)
    med = float(np.median(balance[voiced])) if voiced.sum() >= 10 else 0.0
    tilt = np.clip((balance - med) / 10.0, -1.0, 1.0)
    strength = np.clip(level, 0.0, 1.0) * voiced
    spread = np.clip(tilt, 0.0, 1.0) * 0.8 * strength
    rnd = np.clip(-tilt, 0.0, 1.0) * 0.8 * strength * (1.0 - 0.5 * openness)

    # f/v: weak frication with a flat spectrum (4-8 kHz about as strong as
    # 200-1000 Hz), unlike s/z (hiss far above) and voiced closures (all low).
    high_floor = float(np.percentile(f["high"][live], 5)) if live.sum() >= 10 else -120.0
    flat = np.exp(-(((f["high"] - f["low"]) + 5.0) / 10.0) ** 2)
    weak = (speech < loud - 15.0) & (f["high"] > high_floor + 12.0) & active
    labio = gaussian_filter1d(np.where(weak, flat, 0.0), 1.5)
    labio = np.clip((labio - 0.2) / 0.5, 0.0, 1.0) * 0.8

    closure = _dip_closures(speech, active, hiss, rate) * (1.0 - labio)
    jaw *= (1.0 - closure) * (1.0 - 0.5 * labio)
    teeth = np.clip(
        np.maximum(0.8 * hiss, 0.7 * labio) + 0.4 * spread * np.clip(jaw * 2.0, 0.0, 1.0),
        0.0, 1.0,
    )

    values = np.zeros((n, len(CHANNELS)))
    values[:, CHANNEL_INDEX["jaw"]] = jaw
    values[:, CHANNEL_INDEX["spread"]] = spread
    values[:, CHANNEL_INDEX["round"]] = rnd
    values[:, CHANNEL_INDEX["closure"]] = closure
    values[:, CHANNEL_INDEX["labiodental"]] = labio
    values[:, CHANNEL_INDEX["teeth"]] = teeth
    values[~active] = 0.0

    # Anti-chatter: a short zero-phase blur, then attack/release on the opening
    # channels (the mouth opens quickly and settles more slowly).
    values = gaussian_filter1d(values, 1.5, axis=0, mode="nearest")
    for name in ("jaw", "spread", "round", "teeth"):
        c = CHANNEL_INDEX[name]
        values[:, c] = _one_pole(values[:, c], ATTACK_S, RELEASE_S, rate)

    # Anticipation: the value at t is what the sound needs at t + lead. The
    # follower above lags rising edges by about its attack constant, so that is
    # added back to the channels it smoothed.
    t_out = np.arange(max(1, round(audio.duration * fps))) / fps + lead
    t_in = np.arange(n) / rate
    cols = []
    for c, name in enumerate(CHANNELS):
        extra = 0.0 if name in ("closure", "labiodental") else ATTACK_S
        cols.append(np.interp(t_out + extra, t_in, values[:, c], right=0.0))
    out = np.clip(np.stack(cols, axis=1), 0.0, 1.0)
    return MouthTrack(
        fps, out, source="audio",
        meta={"lead_s": lead, "speech_level_db": round(loud, 1), "floor_db": round(floor, 1)},
    )
