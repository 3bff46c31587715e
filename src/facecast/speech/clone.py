"""Voice cloning for TTS: a persistent voice profile from a speech sample, and a
converter that makes a base voice's synthesis sound like that speaker.

What is cloned, and how it is measured (:func:`measure`, the same code for a
reference sample and for the base voice's output, so the two compare like for
like; analysis at 16 kHz):

- **pitch**: Praat autocorrelation pitch (parselmouth), two passes: a wide
  60-700 Hz pass, then a speaker-adapted range (De Looze & Hirst: floor 0.72 x
  the 35th percentile, ceiling 1.9 x the 65th). ``f0_median`` is the median of
  the voiced frames, ``f0_log_std`` the standard deviation of log2 F0 (octaves).
  On the bundled piper voice WORLD's DIO reads 155 Hz (twice Praat's 87 Hz in
  most frames: its harmonics sit 95 Hz apart, with strong odd ones) and Harvest
  wanders between the two, so Praat's tracker is used everywhere, refined per
  frame by WORLD's StoneMask in :func:`convert`.
- **speaking rate**: syllable nuclei per second of speaking time (after de Jong
  & Wempe 2009): peaks of the intensity contour (10 ms steps) at least 2 dB
  prominent over their surrounding dips, no more than 25 dB under the loud
  level (99th percentile), at least 90 ms apart and voiced at the peak.
  Speaking time is the whole sample less pauses (intensity under that
  threshold) of 0.3 s or more: an articulation rate, so pauses between
  sentences do not count. It undercounts true syllables by 10-20 % (piper
  paragraph: 113 found, 143 vowels spoken), alike for every voice, so ratios
  (:func:`rate_factor`) are sound.
- **timbre**: ``envelope`` is the long-term average of WORLD CheapTrick
  spectral envelopes (dB) over the voiced frames, on a fixed grid of 64
  log-spaced points 80 Hz..8 kHz (:data:`ENVELOPE_GRID`). ``formant_scale`` is
  the vocal-tract scale relative to a neutral 17.5 cm tube (F1..F3 = 500, 1500,
  2500 Hz): the weighted geometric mean of median F1..F3 (Burg, voiced frames,
  ceiling 5000-5500 Hz by F0) over those, weighted 0.2/0.3/0.5 towards F3 (F1
  moves most with the vowel, F3 least). Envelopes are compared with
  :func:`envelope_distance`: RMS dB difference of the mean-removed envelopes
  over 100 Hz..5 kHz.

:func:`convert` re-synthesises with WORLD (Praat F0 + StoneMask, CheapTrick,
D4C, 5 ms frames) keeping every frame's time, so the base engine's phoneme
timings stay exact. Unvoiced frames' envelopes are taken with a 15 ms window
rather than WORLD's 6 ms (:data:`UNVOICED_ANALYSIS_F0`: the short one smeared
consonants and cost intelligibility), and the FFT is sized for the lowest F0
analysed or played (:data:`MIN_WORLD_F0`), as WORLD sizes it for its floor:

- F0 is mapped in the log domain to the target's median and spread (spread
  ratio limited to 0.8..1.25);
- envelopes are analysed at the pitch they will be played at when that is
  higher (anti-aliasing: see the comment in :func:`convert`), then warped in
  frequency by the ratio of formant scales (0.8..1.25, and never to a longer
  tract than scale 0.93: see :data:`MIN_WARPED_SCALE`);
- a smooth filter adds what the warp leaves of the long-term envelope
  difference (target less converted, mean-removed, 0.3-octave smoothing,
  limited to +-12 dB, flat above 7 kHz);
- the output keeps the input's RMS loudness, length and sample rate.

A clone's speaking rate is matched by the caller through the base engine's own
length scale (:func:`rate_factor`), never by stretching the audio.

:func:`build_profile` refuses samples that are too short or long, silent
(under -50 dBFS RMS), or not speech: under 15 % of the sounding frames voiced
(noise), under 1 syllable peak per second or a flat pitch (a tone), voicing
held over 1.5 s at a time or pitch frozen between frames (instrument notes).
Sung or spoken-over-music samples may pass; their profile is then off.

Profiles persist as one JSON file each in a :class:`ProfileStore`
(``$FACECAST_HOME/voices/clones``), written atomically.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecast.errors import InputError
from facecast.media.audio import Audio

ANALYSIS_RATE = 16_000  # every measurement runs at this rate (the references are 16 kHz)
FRAME_PERIOD_MS = 5.0  # WORLD frames in convert()
# CheapTrick's window is 3 periods of the F0 it is given. For unvoiced frames (F0 0) WORLD
# falls back to 500 Hz: a 6 ms window, whose noise periodogram changes at random from
# frame to frame. Re-synthesised, fricatives, bursts and aspiration came out smeared:
# WORLD's round trip alone (no change of voice) nearly doubled pocketsphinx's errors on
# the piper voice (47 words of 372 against 25): every clone paid for it, and the 70 Hz
# one, which also met the FFT limit below, failed the intelligibility bar. Pasting the
# original unvoiced stretches back brought the errors to 25, so the loss is there. A
# 15 ms window (200 Hz), of the order of a recogniser's or the ear's frame, gave the
# least cepstral distortion in those frames (mean 4.6 -> 3.4; 3.7 at 100 and 300 Hz,
# where a window starts to straddle neighbouring sounds or stays noisy) and brought the
# round trip to 29-31 errors.
UNVOICED_ANALYSIS_F0 = 200.0
# WORLD sizes its FFT for an F0 floor (3 periods must fit: 1024 points at 22 kHz, good
# down to 65 Hz). convert() sizes it for the lowest F0 it analyses or plays, never under
# this (nor under WORLD's default): a 70 Hz clone's contour reaches 50 Hz, and with 1024
# points CheapTrick silently analysed frames under 65 Hz at 500 Hz and the synthesis
# lost detail: cepstral distortion in voiced frames 3.06 against 2.65 with 2048 points
# (the piper voice's own round trip, whose creaky frames dip to 55 Hz: 2.58 against 2.33).
MIN_WORLD_F0 = 40.0
WORLD_DEFAULT_F0_FLOOR = 71.0  # pyworld's default F0 floor (sets its default FFT size)
MEASURE_STEP_S = 0.01  # pitch/intensity/formant frames in measure()
FORMANT_PIECE_S = 30.0  # formants are tracked piecewise to bound memory
ENVELOPE_GRID = np.geomspace(80.0, 8000.0, 64)  # Hz, the profile's envelope grid
# The band over which envelopes are compared (distance) and the correction's mean is taken.
COMPARE_BAND = (100.0, 5000.0)
# The correction filter stops here: above ~7 kHz a 16 kHz reference holds only the
# resampler's roll-off, which must not be "cloned" into a 22 kHz output.
CORRECTION_TOP_HZ = 7000.0
MAX_CORRECTION_DB = 12.0
NEUTRAL_FORMANTS = (500.0, 1500.0, 2500.0)  # uniform 17.5 cm tube
FORMANT_WEIGHTS = (0.2, 0.3, 0.5)
WARP_RANGE = (0.8, 1.25)  # beyond this the warped voice turns into a cartoon
# Never warp a voice's vocal tract longer than this scale (about a 19 cm tube): the
# bundled piper voice already sits at 0.93, and warping it 4-7 % further down doubled
# to tripled pocketsphinx's word error rate (Praat's "Change gender" did the same),
# while the envelope filter alone got the long-term envelope almost as close.
MIN_WARPED_SCALE = 0.93
# F0 spread is scaled at most this much: a short reference's spread mixes the speaker
# with its language (Mandarin tones: 0.34 octaves) and text, and stretching English
# intonation by 1.3x raised the recogniser's errors by half (measured).
STD_RATIO_RANGE = (0.8, 1.25)
RATE_FACTOR_RANGE = (0.6, 1.6)

MIN_SAMPLE_S = 2.0
MAX_SAMPLE_S = 300.0
SILENT_DBFS = -50.0
MIN_VOICED_FRACTION = 0.15  # of the non-silent frames
MIN_SYLLABLE_RATE = 1.0  # nuclei per second of speaking time
MIN_F0_LOG_STD = 0.03  # octaves; a held note or a tone is flatter than any speech
MAX_SUSTAINED_FRACTION = 0.5  # of voiced time in voiced runs longer than SUSTAINED_RUN_S
SUSTAINED_RUN_S = 1.5
# Pitch "frozen" between frames (under 0.002 octave per 10 ms) in more than half of the
# voiced frame pairs means notes of an instrument or a synthesiser: speech has under 5 %.
STEADY_STEP_OCT = 0.002
MAX_STEADY_FRACTION = 0.5

_ID_RE = re.compile(r"^clone-[0-9a-f]{12}$")
MAX_NAME_CHARS = 100


# --------------------------------------------------------------------------- profiles


@dataclass
class VoiceStats:
    """What :func:`measure` finds in any audio: a :class:`VoiceProfile` without identity.

    Accepted wherever a profile is (``convert(source=...)``, :func:`rate_factor`).
    """

    f0_median: float
    f0_log_std: float
    speaking_rate: float
    envelope: np.ndarray
    formant_scale: float
    sample_seconds: float = 0.0
    voiced_fraction: float = 0.0  # of the non-silent frames
    speech_seconds: float = 0.0  # speaking time (pauses of 0.3 s or more excluded)
    syllables: int = 0
    rms_dbfs: float = -np.inf
    sustained_fraction: float = 0.0  # voiced time in runs > SUSTAINED_RUN_S
    steady_fraction: float = 0.0  # voiced frame pairs whose pitch does not move


@dataclass
class VoiceProfile:
    """A cloned voice: who (``id``, ``name``) and how they sound (the measured stats)."""

    id: str  # "clone-<12 hex>"
    name: str
    created: float  # unix time
    f0_median: float  # Hz, voiced frames of the reference
    f0_log_std: float  # spread of log2 F0 (octaves)
    speaking_rate: float  # syllables per second of speaking time (see the module doc)
    envelope: np.ndarray  # dB on ENVELOPE_GRID, long-term average of voiced frames
    formant_scale: float  # vocal-tract scale against a neutral 17.5 cm tube
    language: str | None = None  # optional hint ("en-us", "de"): picks the base voice
    sample_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # diagnostics kept with the profile

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created": self.created,
            "f0_median": round(float(self.f0_median), 3),
            "f0_log_std": round(float(self.f0_log_std), 5),
            "speaking_rate": round(float(self.speaking_rate), 4),
            "envelope": [round(float(v), 3) for v in np.asarray(self.envelope)],
            "formant_scale": round(float(self.formant_scale), 5),
            "language": self.language,
            "sample_seconds": round(float(self.sample_seconds), 3),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoiceProfile:
        try:
            env = np.asarray(d["envelope"], dtype=np.float64)
            if env.shape != ENVELOPE_GRID.shape:
                raise ValueError(f"envelope has {env.size} points, not {ENVELOPE_GRID.size}")
            return cls(
                id=str(d["id"]),
                name=str(d["name"]),
                created=float(d["created"]),
                f0_median=float(d["f0_median"]),
                f0_log_std=float(d["f0_log_std"]),
                speaking_rate=float(d["speaking_rate"]),
                envelope=env,
                formant_scale=float(d["formant_scale"]),
                language=d.get("language"),
                sample_seconds=float(d.get("sample_seconds", 0.0)),
                extra=dict(d.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a voice profile: {exc}", code="bad_profile") from exc


VoiceLike = VoiceProfile | VoiceStats


# --------------------------------------------------------------------------- analysis


def _dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def _pitch(samples: np.ndarray, fs: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Praat AC pitch in two passes (wide, then fitted to the speaker): times, F0 (0: unvoiced)."""
    import parselmouth

    snd = parselmouth.Sound(samples.astype(np.float64), fs)
    pitch = snd.to_pitch_ac(time_step=step, pitch_floor=60.0, pitch_ceiling=700.0)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    if len(voiced) >= 20:
        # A speaker-adapted range removes most octave jumps (De Looze & Hirst 2008).
        q35, q65 = np.percentile(voiced, [35, 65])
        floor = float(np.clip(0.72 * q35, 50.0, 400.0))
        ceiling = float(np.clip(1.9 * q65, floor * 2.5, 900.0))
        pitch = snd.to_pitch_ac(time_step=step, pitch_floor=floor, pitch_ceiling=ceiling)
        f0 = pitch.selected_array["frequency"]
    return np.asarray(pitch.xs()), np.nan_to_num(f0)


def _f0_at(times: np.ndarray, p_times: np.ndarray, p_f0: np.ndarray) -> np.ndarray:
    """Pitch sampled at other frame times (nearest frame: keeps voicing decisions crisp)."""
    if not len(p_times):
        return np.zeros(len(times))
    idx = np.clip(np.round((times - p_times[0]) / (p_times[1] - p_times[0] if len(p_times) > 1
                                                      else 1.0)), 0, len(p_times) - 1)
    return p_f0[idx.astype(int)]


def _log_stats(f0: np.ndarray) -> tuple[float, float]:
    v = f0[f0 > 0]
    if len(v) < 2:
        return 0.0, 0.0
    lf = np.log2(v)
    return float(2.0 ** np.median(lf)), float(np.std(lf))


def _formant_ceiling(f0_median: float) -> float:
    """Praat's usual advice, 5000 Hz for men and 5500 for women, interpolated on F0."""
    if f0_median <= 0:
        return 5250.0
    return float(np.interp(f0_median, [110.0, 200.0], [5000.0, 5500.0]))


def _formant_scale(samples: np.ndarray, fs: int, voiced_times: np.ndarray,
                   f0_median: float) -> float:
    """Vocal-tract scale against a neutral tube from median F1..F3 (Burg) of voiced frames."""
    import parselmouth
    from parselmouth.praat import call

    if len(voiced_times) < 5:
        return 1.0
    ceiling = _formant_ceiling(f0_median)
    values: list[list[np.ndarray]] = [[], [], []]
    # 30 s pieces: Burg resamples to twice the ceiling, and five minutes in one go
    # cost ~200 MB more at its peak.
    piece = int(FORMANT_PIECE_S * fs)
    for start in range(0, len(samples), piece):
        part = samples[start : start + piece + int(0.05 * fs)]  # overlap one window
        t0 = start / fs
        want = voiced_times[(voiced_times >= t0) & (voiced_times < t0 + FORMANT_PIECE_S)] - t0
        if len(want) == 0 or len(part) < int(0.1 * fs):
            continue
        snd = parselmouth.Sound(part.astype(np.float64), fs)
        fm = snd.to_formant_burg(time_step=MEASURE_STEP_S, max_number_of_formants=5,
                                 maximum_formant=ceiling, window_length=0.025)
        ft = np.asarray(fm.xs())
        if not len(ft):
            continue
        idx = np.clip(np.round((want - ft[0]) / fm.dt), 0, len(ft) - 1).astype(int)
        for i in range(3):
            values[i].append(call(fm, "To Matrix", i + 1).values[0][idx])
    logs = []
    for vals_list, neutral, weight in zip(values, NEUTRAL_FORMANTS, FORMANT_WEIGHTS,
                                          strict=True):
        vals = np.concatenate(vals_list) if vals_list else np.zeros(0)
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if len(vals) < 5:
            return 1.0
        logs.append(weight * np.log(np.median(vals) / neutral))
    return float(np.exp(np.sum(logs) / np.sum(FORMANT_WEIGHTS)))


def _mean_db(sp: np.ndarray) -> np.ndarray:
    return np.mean(10.0 * np.log10(np.maximum(sp, 1e-16)), axis=0)


def _on_grid(mean_db: np.ndarray, fs: int) -> np.ndarray:
    return np.interp(ENVELOPE_GRID, np.linspace(0.0, fs / 2.0, len(mean_db)), mean_db)


def _grid_envelope(sp: np.ndarray, fs: int) -> np.ndarray:
    """Mean dB of power envelopes (frames x bins) sampled on ENVELOPE_GRID."""
    return _on_grid(_mean_db(sp), fs)


def _envelope(samples: np.ndarray, fs: int, times: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Long-term CheapTrick envelope of the voiced frames, dB on ENVELOPE_GRID."""
    import pyworld

    voiced = np.flatnonzero(f0 > 0)
    if len(voiced) < 3:
        return np.zeros(len(ENVELOPE_GRID))
    x = samples.astype(np.float64)
    # CheapTrick takes any frame times: analyse only the voiced ones, a few thousand at a
    # time, so 5 minutes of speech never holds one 30000 x 513 matrix.
    total: np.ndarray | None = None
    for start in range(0, len(voiced), 2000):
        idx = voiced[start : start + 2000]
        sp = pyworld.cheaptrick(x, np.ascontiguousarray(f0[idx]),
                                np.ascontiguousarray(times[idx]), fs)
        part = _mean_db(sp) * len(idx)
        total = part if total is None else total + part
    assert total is not None  # three or more voiced frames
    return _on_grid(total / len(voiced), fs)


def _syllables(intensity_t: np.ndarray, intensity: np.ndarray, p_times: np.ndarray,
               p_f0: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Syllable nuclei (de Jong & Wempe): count, speaking time (s) and the active-frame mask."""
    from scipy.signal import find_peaks

    if len(intensity) < 3:
        return 0, 0.0, np.zeros(len(intensity), bool)
    loud = float(np.percentile(intensity, 99))
    threshold = loud - 25.0
    active = intensity > threshold
    # Pauses: silent runs of 0.3 s or more; shorter gaps (stop closures) are speech.
    speaking = active.copy()
    min_pause = int(round(0.3 / MEASURE_STEP_S))
    run_start = None
    for i, a in enumerate(np.append(active, True)):
        if not a and run_start is None:
            run_start = i
        elif a and run_start is not None:
            if i - run_start < min_pause and run_start > 0 and i < len(active):
                speaking[run_start:i] = True
            run_start = None
    peaks, _ = find_peaks(intensity, height=threshold, prominence=2.0,
                          distance=max(1, int(round(0.09 / MEASURE_STEP_S))))
    voiced_at = _f0_at(intensity_t[peaks], p_times, p_f0) > 0
    return int(voiced_at.sum()), float(speaking.sum() * MEASURE_STEP_S), active


def _sustained_fraction(f0: np.ndarray, step: float) -> float:
    """Share of voiced time spent in voiced runs longer than SUSTAINED_RUN_S (held notes)."""
    voiced = np.concatenate([[False], f0 > 0, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(voiced))
    runs = (edges[1::2] - edges[0::2]) * step
    total = runs.sum()
    return float(runs[runs > SUSTAINED_RUN_S].sum() / total) if total > 0 else 0.0


def _steady_fraction(f0: np.ndarray) -> float:
    """Share of consecutive voiced frame pairs whose pitch moves under STEADY_STEP_OCT."""
    pairs = (f0[1:] > 0) & (f0[:-1] > 0)
    if not pairs.any():
        return 0.0
    steps = np.abs(np.diff(np.log2(np.where(f0 > 0, f0, 1.0))))[pairs]
    return float(np.mean(steps < STEADY_STEP_OCT))


def measure(audio: Audio) -> VoiceStats:
    """Pitch, rate and timbre statistics of any speech audio (see the module doc)."""
    import parselmouth

    a = audio.resampled(ANALYSIS_RATE) if audio.sample_rate != ANALYSIS_RATE else audio
    x = a.samples.astype(np.float64)
    fs = a.sample_rate
    seconds = audio.duration
    rms_db = _dbfs(x)
    if len(x) < int(0.1 * fs) or not np.isfinite(rms_db):
        return VoiceStats(0.0, 0.0, 0.0, np.zeros(len(ENVELOPE_GRID)), 1.0, seconds,
                          rms_dbfs=rms_db)
    p_times, p_f0 = _pitch(x, fs, MEASURE_STEP_S)
    snd = parselmouth.Sound(x, fs)
    inten = snd.to_intensity(minimum_pitch=75.0, time_step=MEASURE_STEP_S)
    i_t = np.asarray(inten.xs())
    i_v = inten.values[0]
    syllables, speech_s, active = _syllables(i_t, i_v, p_times, p_f0)
    # Voicing counted over the non-silent frames only: long pauses do not make a
    # sample "not speech", and noise (all active, none voiced) is caught.
    act_at_p = np.interp(p_times, i_t, active.astype(float)) > 0.5 if len(i_t) else \
        np.zeros(len(p_times), bool)
    n_active = int(act_at_p.sum())
    voiced_fraction = float(((p_f0 > 0) & act_at_p).sum() / n_active) if n_active else 0.0
    f0_median, f0_log_std = _log_stats(p_f0)
    voiced_times = p_times[p_f0 > 0]
    return VoiceStats(
        f0_median=f0_median,
        f0_log_std=f0_log_std,
        speaking_rate=syllables / speech_s if speech_s > 0 else 0.0,
        envelope=_envelope(x, fs, p_times, p_f0),
        formant_scale=_formant_scale(x, fs, voiced_times, f0_median),
        sample_seconds=seconds,
        voiced_fraction=voiced_fraction,
        speech_seconds=speech_s,
        syllables=syllables,
        rms_dbfs=rms_db,
        sustained_fraction=_sustained_fraction(p_f0, MEASURE_STEP_S),
        steady_fraction=_steady_fraction(p_f0),
    )


def _compare_band() -> np.ndarray:
    grid, (lo, hi) = ENVELOPE_GRID, COMPARE_BAND
    return (grid >= lo) & (grid <= hi)


def envelope_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS dB difference of two mean-removed long-term envelopes over 100 Hz..5 kHz."""
    band = _compare_band()
    d = np.asarray(a, float)[band] - np.asarray(b, float)[band]
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


# --------------------------------------------------------------------------- profiles


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InputError("a voice needs a name", code="bad_name")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"voice name has {len(name)} characters, over {MAX_NAME_CHARS}",
                         code="bad_name")
    return name


def build_profile(sample: Audio, name: str, *, language: str | None = None) -> VoiceProfile:
    """A voice profile from 2-300 s of one person's speech.

    Raises :class:`InputError` with code ``sample_too_short``, ``sample_too_long``,
    ``sample_silent`` or ``sample_not_speech`` (and ``bad_name``).
    """
    name = check_name(name)
    seconds = sample.duration
    if seconds < MIN_SAMPLE_S:
        raise InputError(f"voice sample lasts {seconds:.2f} s; at least {MIN_SAMPLE_S:g} s "
                         "of speech is needed", code="sample_too_short",
                         seconds=round(seconds, 3), min_seconds=MIN_SAMPLE_S)
    if seconds > MAX_SAMPLE_S:
        raise InputError(f"voice sample lasts {seconds:.1f} s, over the {MAX_SAMPLE_S:g} s "
                         "limit", code="sample_too_long", seconds=round(seconds, 3),
                         max_seconds=MAX_SAMPLE_S)
    level = _dbfs(sample.samples)
    if level < SILENT_DBFS:
        raise InputError(f"voice sample is silent: {level:.1f} dBFS RMS, under "
                         f"{SILENT_DBFS:g} dBFS", code="sample_silent",
                         rms_dbfs=round(level, 1) if np.isfinite(level) else None)
    st = measure(sample)
    reasons = []
    if st.voiced_fraction < MIN_VOICED_FRACTION:
        reasons.append(f"only {st.voiced_fraction:.0%} of its sounding frames are voiced "
                       f"(speech has at least {MIN_VOICED_FRACTION:.0%})")
    else:
        if st.speaking_rate < MIN_SYLLABLE_RATE:
            reasons.append(f"{st.speaking_rate:.2f} syllable-like loudness peaks per second "
                           f"(speech has at least {MIN_SYLLABLE_RATE:g})")
        if st.f0_log_std < MIN_F0_LOG_STD:
            reasons.append(f"its pitch barely moves ({st.f0_log_std:.3f} octaves spread, "
                           f"speech has at least {MIN_F0_LOG_STD:g})")
        if st.sustained_fraction > MAX_SUSTAINED_FRACTION:
            reasons.append(f"{st.sustained_fraction:.0%} of its voiced sound is held for over "
                           f"{SUSTAINED_RUN_S:g} s at a time (notes, not syllables)")
        if st.steady_fraction > MAX_STEADY_FRACTION:
            reasons.append(f"its pitch stands still between steps in {st.steady_fraction:.0%} "
                           f"of voiced frames (speech: under 5%): notes, not a voice")
    if reasons:
        raise InputError("voice sample does not sound like speech: " + "; ".join(reasons),
                         code="sample_not_speech", voiced_fraction=round(st.voiced_fraction, 3),
                         syllables_per_s=round(st.speaking_rate, 2),
                         f0_log_std=round(st.f0_log_std, 4),
                         sustained_fraction=round(st.sustained_fraction, 3),
                         steady_fraction=round(st.steady_fraction, 3))
    return VoiceProfile(
        id=f"clone-{secrets.token_hex(6)}",
        name=name,
        created=time.time(),
        f0_median=st.f0_median,
        f0_log_std=st.f0_log_std,
        speaking_rate=st.speaking_rate,
        envelope=st.envelope,
        formant_scale=st.formant_scale,
        language=language,
        sample_seconds=seconds,
        extra={"voiced_fraction": round(st.voiced_fraction, 3),
               "speech_seconds": round(st.speech_seconds, 2), "syllables": st.syllables},
    )


def rate_factor(target: VoiceLike, base: VoiceLike) -> float:
    """Length-scale multiplier for the base engine so its speaking rate matches the target's.

    > 1 means speak slower (piper's ``length_scale``), clipped to 0.6..1.6; 1.0
    when either rate is unknown.
    """
    if target.speaking_rate <= 0 or base.speaking_rate <= 0:
        return 1.0
    return float(np.clip(base.speaking_rate / target.speaking_rate, *RATE_FACTOR_RANGE))


# --------------------------------------------------------------------------- conversion


def _warp_matrix(m: np.ndarray, fs: int, alpha: float) -> np.ndarray:
    """Each row resampled on frequency so that what was at f lands at alpha * f."""
    n = m.shape[1]
    freqs = np.linspace(0.0, fs / 2.0, n)
    src = np.clip(freqs / alpha, 0.0, fs / 2.0) * (n - 1) / (fs / 2.0)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    # Interpolate log power: linear interpolation of power would fill formant valleys.
    lm = np.log(np.maximum(m, 1e-16))
    return np.exp(lm[:, lo] * (1.0 - w) + lm[:, hi] * w)


def _correction_db(target_env: np.ndarray, converted_env: np.ndarray) -> np.ndarray:
    """Smooth gain (dB on ENVELOPE_GRID) taking the converted envelope to the target's."""
    diff = np.asarray(target_env, float) - np.asarray(converted_env, float)
    usable = ENVELOPE_GRID <= CORRECTION_TOP_HZ
    # Above the top, hold the last usable value rather than chase a resampler's roll-off.
    diff[~usable] = diff[usable][-1]
    # ~0.3 octave moving average (grid step is ~0.1 octave): follows formant regions,
    # not single harmonics or noise in a short reference.
    kernel = np.ones(3) / 3.0
    diff = np.convolve(np.pad(diff, 1, mode="edge"), kernel, mode="valid")
    band = _compare_band()
    diff -= diff[band].mean()  # level is set by the RMS match, not here
    return np.clip(diff, -MAX_CORRECTION_DB, MAX_CORRECTION_DB)


def _gain_on_bins(gain_grid_db: np.ndarray, n_bins: int, fs: int) -> np.ndarray:
    freqs = np.linspace(0.0, fs / 2.0, n_bins)
    logf = np.log(np.maximum(freqs, 1.0))
    return np.interp(logf, np.log(ENVELOPE_GRID), gain_grid_db)  # edges held


def world_f0(x: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame times and F0 (0 = unvoiced) every FRAME_PERIOD_MS: Praat's pitch, which
    does not jump octaves on the piper voice as WORLD's DIO does, refined by StoneMask."""
    import pyworld

    period = FRAME_PERIOD_MS / 1000.0
    times = np.arange(int(len(x) / fs / period) + 1) * period
    p_times, p_f0 = _pitch(x, fs, period)
    f0 = _f0_at(times, p_times, p_f0)
    if np.any(f0 > 0):
        f0 = pyworld.stonemask(x, f0, times, fs)  # refine Praat's estimates per frame
    return times, f0


def world_envelopes(x: np.ndarray, fs: int, times: np.ndarray, f0: np.ndarray,
                    new_f0: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """WORLD spectral envelopes and aperiodicity of ``x``, for re-synthesis at ``new_f0``
    (through a frequency warp of ``alpha``)."""
    import pyworld

    voiced = f0 > 0
    # Envelopes are analysed at the pitch they will be re-sampled at, when that is higher:
    # a CheapTrick envelope taken at 87 Hz keeps ripple finer than the harmonics of a
    # 245 Hz voice, which then sample it at random (aliasing). Analysing at the new F0
    # (seen through the warp) smooths exactly that much; measured, it cut pocketsphinx's
    # errors on a 2.8x higher clone by a third to a half. Lower or equal F0: unchanged.
    # Unvoiced frames get a 15 ms window, not WORLD's 6 ms (see UNVOICED_ANALYSIS_F0).
    analysis_f0 = np.where(voiced, np.maximum(f0, new_f0 / alpha), UNVOICED_ANALYSIS_F0)
    # An FFT long enough for the lowest F0 analysed or played, never shorter than WORLD's
    # default (see MIN_WORLD_F0); no voiced frame left at or under CheapTrick's floor.
    f0_low = min(analysis_f0[voiced].min(), new_f0[voiced].min()) if voiced.any() else 500.0
    fft_size = pyworld.get_cheaptrick_fft_size(
        fs, float(np.clip(f0_low, MIN_WORLD_F0, WORLD_DEFAULT_F0_FLOOR)))
    ct_floor = 3.0 * fs / (fft_size - 3)  # WORLD's GetF0FloorForCheapTrick
    analysis_f0[voiced] = np.maximum(analysis_f0[voiced], 1.01 * ct_floor)
    sp = pyworld.cheaptrick(x, np.ascontiguousarray(analysis_f0), times, fs,
                            fft_size=fft_size)
    ap = pyworld.d4c(x, f0, times, fs, fft_size=fft_size)
    return sp, ap


def convert(audio: Audio, target: VoiceLike, *, source: VoiceLike | None = None) -> Audio:
    """``audio`` (synthesised speech) re-voiced as ``target``: same length, rate, loudness.

    ``source`` is the base voice's own long-term stats (:func:`measure` of a
    longer sample): give it when converting short pieces such as single
    sentences, so the F0 mapping and the timbre filter do not depend on what
    each piece says. Without it they are measured from ``audio`` itself.
    """
    import pyworld

    fs = audio.sample_rate
    x = audio.samples.astype(np.float64)
    in_rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    if len(x) < int(0.1 * fs) or in_rms < 1e-6:
        return Audio(audio.samples.copy(), fs)  # nothing to re-voice
    times, f0 = world_f0(x, fs)
    voiced = f0 > 0

    if source is None:
        src_median, src_std = _log_stats(f0)
        src_scale = _formant_scale(x, fs, times[voiced], src_median)
        src_env = None
    else:
        src_median, src_std = source.f0_median, source.f0_log_std
        src_scale, src_env = source.formant_scale, np.asarray(source.envelope, float)

    # F0: same contour shape in log2, moved to the target's median and spread.
    new_f0 = f0.copy()
    if voiced.any() and src_median > 0 and target.f0_median > 0:
        k = float(np.clip(target.f0_log_std / src_std, *STD_RATIO_RANGE)) if src_std > 0 else 1.0
        lf = np.log2(target.f0_median) + (np.log2(f0[voiced]) - np.log2(src_median)) * k
        new_f0[voiced] = np.clip(2.0**lf, 50.0, 900.0)

    # Vocal-tract length ratio for the frequency warp below.
    alpha = 1.0
    if src_scale > 0 and target.formant_scale > 0:
        lowest = max(WARP_RANGE[0], min(1.0, MIN_WARPED_SCALE / src_scale))
        alpha = float(np.clip(target.formant_scale / src_scale, lowest, WARP_RANGE[1]))

    sp, ap = world_envelopes(x, fs, times, f0, new_f0, alpha)

    # Timbre 1: vocal-tract length, as a frequency warp of every envelope.
    if abs(alpha - 1.0) > 1e-3:
        sp = _warp_matrix(sp, fs, alpha)

    # Timbre 2: what the warp leaves of the long-term envelope difference, as a filter.
    if np.any(target.envelope):
        if src_env is not None and np.any(src_env):
            # The source's long-term envelope, warped the same way (log-frequency shift).
            converted = np.interp(np.log(ENVELOPE_GRID / alpha), np.log(ENVELOPE_GRID), src_env)
        elif voiced.sum() >= 3:
            converted = _grid_envelope(sp[voiced], fs)
        else:
            converted = None
        if converted is not None:
            gain = _gain_on_bins(_correction_db(target.envelope, converted), sp.shape[1], fs)
            sp = sp * 10.0 ** (gain / 10.0)  # sp is power: dB/10

    y = pyworld.synthesize(np.ascontiguousarray(new_f0), np.ascontiguousarray(sp),
                           np.ascontiguousarray(ap), fs, FRAME_PERIOD_MS)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    out_rms = float(np.sqrt(np.mean(y**2)))
    if out_rms > 0:
        y *= in_rms / out_rms
    peak = float(np.abs(y).max())
    if peak > 1.0:  # rare: a brighter timbre can raise peaks; tanh is linear below ~0.3
        y = np.tanh(y)
    return Audio(y.astype(np.float32), fs)


# --------------------------------------------------------------------------- storage


class ProfileStore:
    """Voice profiles as one JSON file each in ``folder``, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, id: str) -> Path:
        if not _ID_RE.match(str(id)):  # also keeps ids from naming paths outside the folder
            raise InputError(f"unknown voice {id!r}", code="unknown_voice", voice=str(id))
        return self.folder / f"{id}.json"

    def save(self, profile: VoiceProfile) -> None:
        path = self._path(profile.id)
        self.folder.mkdir(parents=True, exist_ok=True)
        data = json.dumps(profile.to_dict(), ensure_ascii=False, indent=1)
        tmp = self.folder / f".{profile.id}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # readers see the old file or the new one, never half
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, id: str) -> VoiceProfile:
        path = self._path(id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"unknown voice {id!r}", code="unknown_voice", voice=id) from None
        except (OSError, ValueError) as exc:
            raise InputError(f"voice profile {id!r} is unreadable: {exc}",
                             code="bad_profile") from exc
        return VoiceProfile.from_dict(data)

    def list(self) -> list[VoiceProfile]:
        """Every readable profile, newest first (unreadable files are skipped)."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in self.folder.glob("clone-*.json"):
            try:
                out.append(VoiceProfile.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, InputError):
                continue
        return sorted(out, key=lambda p: p.created, reverse=True)

    def rename(self, id: str, name: str) -> VoiceProfile:
        profile = self.get(id)
        profile.name = check_name(name)
        self.save(profile)
        return profile

    def delete(self, id: str) -> None:
        try:
            self._path(id).unlink()
        except FileNotFoundError:
            raise InputError(f"unknown voice {id!r}", code="unknown_voice", voice=id) from None


def default_store() -> ProfileStore:
    """The user's clone store: ``$FACECAST_HOME/voices/clones``.

    ``FACECAST_HOME`` defaults to ``~/.local/share/facecast``.
    """
    home = os.environ.get("FACECAST_HOME") or str(Path.home() / ".local" / "share" / "facecast")
    return ProfileStore(Path(home) / "voices" / "clones")
