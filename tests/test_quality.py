"""Tests of the offline lip-sync measure (facecast.quality.lipsync).

The always-on tests use media made here: tone bursts for the audio envelope,
and the packaged astronaut portrait whose mouth is opened by a known envelope
while a 2 kHz tone follows the same envelope a known time later. The tests on
real talking-head videos (../shared/media) calibrate the measure and skip
cleanly without that folder.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facecast.media import Audio, Mp4Writer, load_audio, write_audio
from facecast.quality.lipsync import (
    FROZEN_MOTION,
    REAL_MOTION_RANGE,
    LipSyncScore,
    audio_envelope,
    lip_gap_at,
    lip_motion,
    lip_opening_series,
    measure_lipsync,
    score_series,
)

FPS = 25
SR = 16_000


def _delayed(audio: Audio, ms: float) -> Audio:
    """``audio`` played ``ms`` later (silence in front); earlier when negative."""
    n = round(ms / 1000.0 * audio.sample_rate)
    if n >= 0:
        samples = np.concatenate([np.zeros(n, np.float32), audio.samples])
    else:
        samples = audio.samples[-n:]
    return Audio(samples, audio.sample_rate)


def _tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --------------------------------------------------------------------------- always on


def test_audio_envelope_passes_1_3_khz_and_rejects_low_tones() -> None:
    silence = np.zeros(round(0.5 * SR), np.float32)
    samples = np.concatenate([silence, _tone(2000, 0.5), silence, _tone(200, 0.5), silence])
    times, env = audio_envelope(Audio(samples, SR), fps=100.0)
    assert np.allclose(np.diff(times), 0.01)
    assert len(times) == pytest.approx(len(samples) / SR * 100, abs=2)
    high = env[(times > 0.6) & (times < 0.9)]
    low = env[(times > 1.6) & (times < 1.9)]
    quiet = env[(times > 2.1) & (times < 2.4)]
    # Same amplitude, 10x lower frequency: the band-pass must take it far down.
    assert high.mean() - low.mean() > np.log(30.0)
    assert np.ptp(high) < 0.1  # steady tone, steady envelope
    assert quiet.max() <= low.max() + 1e-6
    # Zero-phase filtering and centred windows: the burst starts where it starts.
    onset = times[np.argmax(env > (high.mean() + quiet.mean()) / 2)]
    assert onset == pytest.approx(0.5, abs=0.02)


@pytest.fixture(scope="module")
def still_video(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("still") / "still.mp4"
    h, w = astronaut.shape[:2]
    with Mp4Writer(path, w, h, FPS) as writer:
        for _ in range(30):
            writer.write(astronaut)
    return path


def test_still_portrait_gives_constant_opening_in_every_frame(still_video: Path) -> None:
    times, opening = lip_opening_series(still_video)
    assert len(times) == 30
    assert np.allclose(np.diff(times), 1 / FPS)
    assert times[0] == pytest.approx(0.0)
    assert np.isfinite(opening).all()
    # The astronaut smiles with her teeth showing: a small, steady gap.
    assert 0.02 < np.median(opening) < 0.3
    assert np.ptp(opening) < 0.02
    assert lip_motion(times, opening) < FROZEN_MOTION, "a still mouth reads as frozen"


def _mouth_frames(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Remap grids and the mouth line of the portrait, found with the bare face mesh."""
    from facecast.face.landmarks import FaceMesh

    with FaceMesh(static_image_mode=True) as mesh:
        found = mesh.process(image)
    assert found, "the face mesh finds no face in the packaged portrait"
    h, w = image.shape[:2]
    lm = found[0]
    mx = (lm[13, 0] + lm[14, 0]) / 2 * w
    my = (lm[13, 1] + lm[14, 1]) / 2 * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx, mx, my


def _open_mouth(image: np.ndarray, grids: tuple, d: float) -> np.ndarray:
    """Drop the lower lip and jaw by ``d`` px and paint the mouth cavity between."""
    yy, xx, mx, my = grids
    wy = np.clip((my + 45 - yy) / 40.0, 0, 1) * (yy >= my)
    wx = np.clip(1.6 * (1 - np.abs(xx - mx) / 40.0), 0, 1)
    out = cv2.remap(image, xx, (yy - d * wy * wx).astype(np.float32), cv2.INTER_LINEAR)
    if d > 0.5:
        axes = (17, max(1, round(d / 2)))
        cv2.ellipse(out, (round(mx), round(my + d / 2)), axes, 0, 0, 360, (60, 20, 25), -1)
    return out


def _syllables(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A speech-like opening envelope in [0, 1] at 1 kHz: ~5 syllables/s with closures."""
    rng = np.random.default_rng(seed)
    knots_t = np.arange(0, seconds + 0.2, 0.2)
    knots = rng.uniform(0.2, 1.0, len(knots_t))
    knots[rng.random(len(knots_t)) < 0.3] = 0.0  # p/b/m-like closures
    t = np.arange(round(seconds * 1000)) / 1000.0
    env = np.interp(t, knots_t, knots)
    kernel = np.hanning(61)
    env = np.convolve(env, kernel / kernel.sum(), mode="same")
    return t, np.clip(env, 0.0, 1.0)


def _tone_following(t: np.ndarray, env: np.ndarray) -> Audio:
    n = round(t[-1] * SR) + 1
    ts = np.arange(n) / SR
    amp = 0.02 + 0.6 * np.interp(ts, t, env)
    return Audio((amp * np.sin(2 * np.pi * 2000 * ts)).astype(np.float32), SR)


SYNTH_SECONDS = 8.0
SYNTH_DELAY_MS = 80.0


@pytest.fixture(scope="module")
def synthetic_talk(
    tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """An MP4 whose mouth opens with an envelope; a WAV of it 80 ms later (lips lead)."""
    folder = tmp_path_factory.mktemp("synth")
    t, env = _syllables(SYNTH_SECONDS, seed=3)
    audio = _delayed(_tone_following(t, env), SYNTH_DELAY_MS)
    grids = _mouth_frames(astronaut)
    h, w = astronaut.shape[:2]
    video = folder / "talk.mp4"
    with Mp4Writer(video, w, h, FPS, audio) as writer:
        for i in range(round(SYNTH_SECONDS * FPS)):
            d = 12.0 * float(np.interp(i / FPS, t, env))
            writer.write(_open_mouth(astronaut, grids, d))
    wav = write_audio(folder / "talk.wav", audio)
    return video, wav, t, env


def test_synthetic_mouth_follows_envelope_with_known_lag(
    synthetic_talk: tuple[Path, Path, np.ndarray, np.ndarray],
) -> None:
    video, wav, _, _ = synthetic_talk
    score = measure_lipsync(video, wav)
    assert isinstance(score, LipSyncScore)
    assert score.frames == score.faces_found == round(SYNTH_SECONDS * FPS)
    assert score.duration == pytest.approx(SYNTH_SECONDS, abs=0.1)
    # Sign convention: the sound comes 80 ms after the lips, so the lag is +80.
    assert score.best_lag_ms == pytest.approx(SYNTH_DELAY_MS, abs=20)
    assert score.peak_correlation > 0.6
    assert score.correlation_at_zero < score.peak_correlation
    assert set(score.to_dict()) == {
        "best_lag_ms",
        "peak_correlation",
        "correlation_at_zero",
        "frames",
        "faces_found",
        "duration",
        "motion",
    }
    # The synthetic mouth opens and closes with the envelope: it moves, as real speakers'.
    assert not score.frozen and score.motion > REAL_MOTION_RANGE[0]


def test_synthetic_own_track_and_foreign_envelope(
    synthetic_talk: tuple[Path, Path, np.ndarray, np.ndarray],
) -> None:
    video, _, _, _ = synthetic_talk
    own = measure_lipsync(video)  # the MP4's AAC track: same lag within AAC's framing
    assert own.best_lag_ms == pytest.approx(SYNTH_DELAY_MS, abs=40)
    assert own.peak_correlation > 0.6
    t2, env2 = _syllables(SYNTH_SECONDS, seed=11)
    times, opening = lip_opening_series(video)
    foreign = score_series(times, opening, _tone_following(t2, env2))
    assert foreign.peak_correlation < own.peak_correlation - 0.3


def test_lip_gap_at_closures_is_smaller_than_at_open_syllables(
    synthetic_talk: tuple[Path, Path, np.ndarray, np.ndarray],
) -> None:
    video, _, t, env = synthetic_talk
    frame_t = np.arange(round(SYNTH_SECONDS * FPS)) / FPS
    frame_env = np.interp(frame_t, t, env)
    closed = frame_t[frame_env < 0.05]
    wide = frame_t[frame_env > 0.7]
    assert len(closed) >= 5 and len(wide) >= 5
    gaps_closed = lip_gap_at(video, closed)
    gaps_wide = lip_gap_at(video, wide)
    assert np.nanmean(gaps_closed) < 0.75 * np.nanmean(gaps_wide)
    # Nearest frame: a time just off a frame returns that frame's value.
    assert lip_gap_at(video, [closed[0] + 0.004])[0] == pytest.approx(gaps_closed[0])


# --------------------------------------------------------------------------- real videos

OBAMA = "videos/obama_weekly_address_20s.mp4"
# Measured on this video (see the module docstring of facecast.quality.lipsync):
# its soundtrack is about 250 ms late, so the lips lead by ~250 ms.
OBAMA_LAG_MS = 250.0


@pytest.fixture(scope="module")
def obama(shared_media: Path) -> tuple[Path, np.ndarray, np.ndarray, Audio, LipSyncScore]:
    video = shared_media / OBAMA
    times, opening = lip_opening_series(video)
    audio = load_audio(video)
    return video, times, opening, audio, measure_lipsync(video)


def _foreign_speech(shared_media: Path, seconds: float) -> Audio:
    """Other people's speech, concatenated to cover the whole video."""
    names = [
        "hdtf_RD_Radio31_000.wav",
        "librivox_austen_0870.wav",
        "zh_chinese_news_sadtalker.wav",
        "de_german_sadtalker_deyu.wav",
    ]
    parts = [load_audio(shared_media / "speech" / n, SR).samples for n in names]
    samples = np.concatenate(parts)
    assert len(samples) >= seconds * SR
    return Audio(samples, SR)


def test_real_video_own_audio_scores_in_sync(obama: tuple) -> None:
    _, times, opening, _, score = obama
    assert score.frames == score.faces_found == 500
    assert np.allclose(np.diff(times), 0.04)
    assert score.best_lag_ms == pytest.approx(OBAMA_LAG_MS, abs=100)
    assert score.peak_correlation > 0.35
    assert np.nanmin(opening) < 0.02 < 0.15 < np.nanmax(opening)


def test_real_video_lag_follows_a_known_audio_shift(obama: tuple) -> None:
    _, times, opening, audio, score = obama
    for shift in (-400.0, -200.0, 200.0):
        moved = score_series(times, opening, _delayed(audio, shift))
        # Delaying the sound by d ms means the lips lead by d ms more.
        assert moved.best_lag_ms - score.best_lag_ms == pytest.approx(shift, abs=30), shift
        assert moved.peak_correlation == pytest.approx(score.peak_correlation, abs=0.05)


def test_real_video_true_audio_beats_shifted_and_foreign(obama: tuple, shared_media: Path) -> None:
    _, times, opening, audio, score = obama
    # +400 ms puts the true pairing at ~+650 ms, outside the +-600 ms search: what
    # is left is chance correlation, as for someone else's voice.
    late = score_series(times, opening, _delayed(audio, 400.0))
    foreign = score_series(times, opening, _foreign_speech(shared_media, 20.0))
    assert late.peak_correlation < score.peak_correlation - 0.1
    assert foreign.peak_correlation < score.peak_correlation - 0.1
    assert foreign.duration == pytest.approx(score.duration, abs=0.1)


def test_real_video_without_audio_track_tracks_the_mouth(shared_media: Path) -> None:
    video = shared_media / "videos" / "klobuchar_10s_noaudio.mp4"
    times, opening = lip_opening_series(video)
    assert len(times) == 250 and np.isfinite(opening).all()
    # Closed lips (m, p, b) and open vowels both occur in 10 s of speech.
    assert np.nanmin(opening) < 0.02 < 0.2 < np.nanmax(opening)
    score = measure_lipsync(video, shared_media / "videos" / "klobuchar_10s_audio.wav")
    # 10 s is too short to judge (chance peaks reach 0.3-0.5); only check it ran.
    assert score.faces_found == 250
    assert abs(score.best_lag_ms) <= 600
