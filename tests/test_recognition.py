"""Speech-aware mouth from sound alone: recognition of untranscribed English with
pocketsphinx (facecast.motion.recognition) and the audio-only path of
talking_photo.mouth_track, which uses it for confident English and the spectral
track otherwise. Piper TTS and espeak-ng (always), ../shared/media (when present).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from facecast.media.audio import Audio, load_audio
from facecast.motion.from_audio import track_from_audio
from facecast.motion.from_phonemes import merge_markers
from facecast.motion.recognition import MIN_CONFIDENCE, Recognition, chunk_bounds, recognise
from facecast.motion.track import MouthTrack
from facecast.pipeline.talking_photo import (
    RECOGNISED_ADVANCE_S,
    RECOGNISED_LEAD_S,
    mouth_track,
)
from facecast.timing import PhonemeTiming

# Rich in p/b/m, with open vowels between them.
SENTENCE = ("Peter picked a bunch of bright blue berries before the movie began, "
            "and Mom baked a big apple pie for the boys.")
BILABIALS_IPA = {"p", "b", "m"}
BILABIALS_ARPABET = {"P", "B", "M"}
NEAR_S = 0.06


@pytest.fixture(scope="module")
def piper_speech() -> tuple[Audio, list[PhonemeTiming]]:
    """Piper's audio and its own phoneme timings (markers merged)."""
    from facecast.speech import synthesize

    speech = synthesize(SENTENCE)
    return speech.audio, merge_markers(speech.phonemes)


@pytest.fixture(scope="module")
def heard(piper_speech: tuple[Audio, list[PhonemeTiming]]) -> Recognition:
    return recognise(piper_speech[0])


def _centres(phones: list[PhonemeTiming], names: set[str]) -> np.ndarray:
    return np.array([(p.start + p.end) / 2 for p in phones
                     if p.phoneme.rstrip("012") in names])


def test_recognised_bilabials_agree_with_piper(
    piper_speech: tuple[Audio, list[PhonemeTiming]], heard: Recognition
) -> None:
    _, truth = piper_speech
    assert heard.confident, heard.summary()
    assert len(heard.words) >= 12, [w.word for w in heard.words]
    expected = _centres(truth, BILABIALS_IPA)
    found = _centres(heard.phonemes, BILABIALS_ARPABET)
    assert len(expected) >= 12
    hits = [np.min(np.abs(found - c)) <= NEAR_S for c in expected] if len(found) else []
    # most (12-16 of 16 over 12 syntheses; piper draws its durations at random)
    assert np.mean(hits) >= 0.65, (np.mean(hits), expected, found)
    # phones are in order, inside the audio, and cover most of the speech
    starts = [p.start for p in heard.phonemes]
    assert starts == sorted(starts)
    assert heard.phonemes[-1].end <= piper_speech[0].duration + 1e-6
    spoken = sum(p.end - p.start for p in heard.phonemes if p.phoneme != "SIL")
    assert spoken >= 0.6 * sum(p.end - p.start for p in truth if p.phoneme != "SIL")


def test_audio_only_track_uses_recognised_phonemes_and_closes_lips(
    piper_speech: tuple[Audio, list[PhonemeTiming]]
) -> None:
    audio, truth = piper_speech
    track = mouth_track(audio, [], 100.0)
    assert track.source == "recognised"
    assert track.meta["recognition"]["confidence"] >= MIN_CONFIDENCE
    closure, jaw = track.channel("closure"), track.channel("jaw")
    t = np.arange(len(track)) / track.fps

    def peak(centre: float, channel: np.ndarray, before: float = 0.03) -> float:
        sel = (t >= centre - before) & (t <= centre + 0.03)
        return float(channel[sel].max()) if sel.any() else 0.0

    # recognised lips close ahead of the sound (lead + advance), so look back that far
    ahead = RECOGNISED_LEAD_S + RECOGNISED_ADVANCE_S + 0.03

    shut = [peak(c, closure, ahead) for c in _centres(truth, BILABIALS_IPA)]
    assert np.mean(np.array(shut) >= 0.8) >= 0.75, shut
    # open vowels open the mouth far more than the lips' contacts
    vowels = _centres(truth, {"a", "æ", "ɑ", "ʌ"})
    assert len(vowels) >= 3
    assert np.median([peak(c, jaw) for c in vowels]) >= 0.3
    # the spectral track alone (the old audio-only path) closes far fewer of them
    spectral = mouth_track(audio, [], 100.0, recognise=False)
    assert spectral.source == "audio"
    old = [peak(c, spectral.channel("closure"), ahead) for c in _centres(truth, BILABIALS_IPA)]
    assert np.mean(np.array(old) >= 0.8) < np.mean(np.array(shut) >= 0.8)


def test_lead_draws_lips_ahead_of_the_sound(
    piper_speech: tuple[Audio, list[PhonemeTiming]], heard: Recognition
) -> None:
    audio, _ = piper_speech
    track = mouth_track(audio, [], 100.0)
    closure = track.channel("closure")
    # A bilabial followed by a real (>= 60 ms) sound that is not another lip contact: in
    # piper's speech, whose durations vary from run to run, "m b" or a clipped vowel
    # would keep the lips together past the check below.
    phones = heard.phonemes
    first = next(p for p, after in itertools.pairwise(phones)
                 if p.phoneme in BILABIALS_ARPABET and after.phoneme not in BILABIALS_ARPABET
                 and after.phoneme != "SIL" and after.end - after.start >= 0.06)
    # closed before the heard bilabial starts (anticipation)
    k = int(round((first.start - RECOGNISED_ADVANCE_S) * track.fps))
    assert closure[k] >= 0.5
    # and open again by the time the sound after it is heard
    k = int(round((first.end + 0.03) * track.fps))
    assert closure[k] < 0.5


def test_german_and_noise_fall_back_to_the_spectral_track() -> None:
    from facecast.speech import espeak_engine

    german = espeak_engine.synthesize(
        "Guten Morgen, wie geht es Ihnen? Ich möchte heute mit dem Zug nach Berlin fahren, "
        "und morgen besuche ich meine Großmutter in München.", "de").audio
    rng = np.random.default_rng(0)
    noise = Audio((0.05 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000)
    for audio in (german, noise):
        heard = recognise(audio)
        assert not heard.confident, heard.summary()
        track = mouth_track(audio, [], 25.0)
        assert isinstance(track, MouthTrack)
        assert track.source == "audio"
        assert track.meta["recognition"]["confidence"] < MIN_CONFIDENCE
        json.dumps(track.to_dict(), allow_nan=False)  # the exported track stays strict JSON
    assert recognise(noise).words == [] or recognise(noise).speech_s < 1.0


def test_chunks_cut_long_audio_in_pauses() -> None:
    rate = 16000
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(rate * 50)).astype(np.float32)
    x[rate * 11: rate * 11 + 4800] = 0.0  # a 0.3 s pause 1 s after the first chunk's 10 s
    x[rate * 22: rate * 22 + 4800] = 0.0  # and one about 1 s after the next, as short
    # a single quiet 10 ms (a stop's closure) nearer the 10 s mark is not a pause
    x[rate * 10: rate * 10 + 160] = 0.0
    bounds = chunk_bounds(x, rate)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(x)
    assert all(a < b for a, b in bounds)
    assert all(b0[1] == b1[0] for b0, b1 in itertools.pairwise(bounds))
    assert rate * 11 <= bounds[0][1] <= rate * 11 + 4800
    assert rate * 22 <= bounds[1][1] <= rate * 22 + 4800
    assert len(bounds) == 3  # the last 27.9 s: under 1.5x the next chunk's 20 s
    assert chunk_bounds(x[: rate * 15], rate) == [(0, rate * 15)]  # up to 1.5x 10 s: whole
    # no sliver at the end: the rest after the first cut is at least about half a chunk
    short = chunk_bounds(x[: rate * 16], rate)
    assert len(short) == 2 and short[1][1] - short[1][0] >= int(rate * 4.8)


def test_the_parts_heard_are_the_whole_ones(piper_speech: tuple[Audio, list[PhonemeTiming]]
                                            ) -> None:
    """Speech of over 15 s is decoded in chunks; after each but the last, on_chunk gets
    what was heard so far, which the whole recognition then only extends."""
    audio = piper_speech[0]
    pause = np.zeros(int(0.4 * audio.sample_rate), np.float32)
    twice = Audio(np.concatenate([audio.samples, pause, audio.samples, pause, audio.samples]),
                  audio.sample_rate)
    assert twice.duration > 15.0
    parts: list[Recognition] = []
    whole = recognise(twice, on_chunk=parts.append)
    assert len(parts) == 1 and whole.until_s is None and not whole.partial
    part = parts[0]
    assert part.partial and 3.0 <= part.until_s <= twice.duration - 3.0  # type: ignore[operator]
    assert part.words == whole.words[: len(part.words)] and len(part.words) >= 8
    assert part.phonemes == whole.phonemes[: len(part.phonemes)]
    assert all(w.end <= part.until_s + 0.1 for w in part.words)  # type: ignore[operator]
    assert len(whole.words) > len(part.words) and part.confident and whole.confident


def test_recognise_go_forward(shared_media: Path) -> None:
    heard = recognise(load_audio(shared_media / "speech" / "pocketsphinx_goforward.wav"))
    assert [w.word for w in heard.words] == ["go", "forward", "ten", "meters"]
    assert heard.confident
    names = [p.phoneme for p in heard.phonemes if p.phoneme != "SIL"]
    assert names[:3] == ["G", "OW", "F"], names


@pytest.mark.parametrize("name", ["de_german_sadtalker_deyu.wav",
                                  "zh_chinese_news_sadtalker.wav"])
def test_real_german_and_chinese_fall_back(shared_media: Path, name: str) -> None:
    audio = load_audio(shared_media / "speech" / name)
    track = mouth_track(audio, [], 25.0)
    assert track.source == "audio", track.meta
    # the fallback is exactly the spectral track, so these renders cannot get worse
    spectral = mouth_track(audio, [], 25.0, recognise=False)
    np.testing.assert_array_equal(track.values, spectral.values)
    raw = track_from_audio(audio, 100.0).resampled(25.0)
    np.testing.assert_array_equal(track.values, raw.values)


def test_real_english_is_recognised(shared_media: Path) -> None:
    audio = load_audio(shared_media / "speech" / "librivox_austen_0870.wav")
    heard = recognise(audio)
    assert heard.confident, heard.summary()
    text = " ".join(w.word for w in heard.words)
    for word in ("consider", "how", "much", "power"):
        assert word in text, text


def test_same_audio_same_result(
    piper_speech: tuple[Audio, list[PhonemeTiming]], heard: Recognition
) -> None:
    # a fresh decoder per call: nothing carries over from what was recognised before
    recognise(Audio(np.zeros(16000, np.float32), 16000))
    again = recognise(piper_speech[0])
    assert again.summary() == heard.summary()
    assert again.phonemes == heard.phonemes
