"""espeak-ng engine: the real bundled library (espeakng-loader), no mocks."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from facecast.errors import InputError
from facecast.speech import espeak_engine as E
from facecast.speech.piper_tts import Speech

ENGLISH = "The quick brown fox jumps over the lazy dog, and then it's gone again."
GERMAN = "Guten Morgen, wie geht es Ihnen?"
MANDARIN = "你好，今天天气很好"
PUNCT = ".,;:!?\"'()"


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _median_f0(speech: Speech) -> float:
    import parselmouth

    snd = parselmouth.Sound(speech.audio.samples.astype(np.float64), speech.audio.sample_rate)
    # espeak's -12 semitone male voice goes down to ~50 Hz: lower the floor.
    f0 = snd.to_pitch(pitch_floor=30.0, pitch_ceiling=600.0).selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


@pytest.fixture(scope="module")
def samples() -> dict[str, Speech]:
    return {
        "en": E.synthesize(ENGLISH, "en-us"),
        "de": E.synthesize(GERMAN, "de"),
        "cmn": E.synthesize(MANDARIN, "cmn"),
    }


def test_list_voices() -> None:
    voices = E.list_voices()
    assert len(voices) >= 100
    ids = [v.identifier for v in voices]
    assert len(set(ids)) == len(ids)
    langs = {code for v in voices for code in v.languages}
    assert {"en-us", "de", "fr", "es"} <= langs
    assert "cmn" in langs or "zh" in langs
    for v in voices:
        assert isinstance(v, E.EspeakVoiceInfo)
        assert v.identifier and v.name and v.language == v.languages[0]
        assert v.gender in ("male", "female", None)
        assert isinstance(v.age, int) and v.age >= 0
    assert E.list_voices() == voices  # cached, same answer
    assert E.SAMPLE_RATE == 22050


def test_list_variants_has_female_voices() -> None:
    variants = E.list_variants()
    assert len(variants) > 20
    assert any(v.gender == "female" for v in variants)
    assert "f3" in {v.identifier for v in variants}


@pytest.mark.parametrize(
    ("query", "identifier"),
    [
        ("en-us", "gmw/en-US"), ("EN_US", "gmw/en-US"), ("gmw/en-US", "gmw/en-US"),
        ("English_(America)", "gmw/en-US"), ("English (America)", "gmw/en-US"),
        ("zh", "sit/cmn"), ("cmn", "sit/cmn"), ("de", "gmw/de"), ("de-AT", "gmw/de"),
        ("espeak:gmw/de", "gmw/de"), ("fr", "roa/fr"), ("en-us+f3", "gmw/en-US+f3"),
    ],
)
def test_resolve_voice(query: str, identifier: str) -> None:
    assert E.resolve_voice(query) == identifier


@pytest.mark.parametrize("key", ["en", "de", "cmn"])
def test_audio_and_phoneme_timings(samples: dict[str, Speech], key: str) -> None:
    speech = samples[key]
    audio = speech.audio
    assert audio.sample_rate == E.SAMPLE_RATE == 22050
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert _rms(audio.samples) > 0.01
    assert np.abs(audio.samples).max() <= 1.0
    ph = speech.phonemes
    assert len(ph) > 5
    assert abs(sum(p.duration for p in ph) - audio.duration) < 0.010
    assert ph[0].start == 0.0 and ph[-1].end == pytest.approx(audio.duration, abs=1e-9)
    for a, b in itertools.pairwise(ph):
        assert a.start < a.end  # no zero-length entries
        assert a.end == pytest.approx(b.start, abs=1e-9)  # contiguous, no overlap
        assert not (a.phoneme == "_" and b.phoneme == "_")  # pauses merged
    assert all(p.phoneme for p in ph)
    assert sum(p.phoneme != "_" for p in ph) > 5
    assert not any(p.phoneme.startswith("(") for p in ph)  # no language-switch markers


@pytest.mark.parametrize("key", ["en", "de", "cmn"])
def test_word_timings_in_order(samples: dict[str, Speech], key: str) -> None:
    speech = samples[key]
    words = speech.words
    assert words
    prev_end = 0.0
    pos = 0
    for w in words:
        assert w.word
        assert prev_end - 1e-9 <= w.start <= w.end <= speech.audio.duration + 1e-9
        prev_end = w.end
        pos = speech.text.index(w.word, pos) + len(w.word)  # in the text, in order
    # A word spans phonemes: its ends are phoneme boundaries.
    bounds = {round(p.start, 9) for p in speech.phonemes} | {round(speech.audio.duration, 9)}
    assert all(round(w.start, 9) in bounds and round(w.end, 9) in bounds for w in words)


def test_english_words_match_text(samples: dict[str, Speech]) -> None:
    speech = samples["en"]
    assert speech.text == ENGLISH and speech.voice == "gmw/en-US"
    assert [w.word for w in speech.words] == [t.strip(PUNCT) for t in ENGLISH.split()]
    assert speech.words[0].start < 0.05  # speech begins almost at once


def test_german_and_mandarin_words(samples: dict[str, Speech]) -> None:
    assert [w.word for w in samples["de"].words] == [t.strip(PUNCT) for t in GERMAN.split()]
    assert samples["de"].voice == "gmw/de"
    cmn = samples["cmn"]
    assert cmn.voice == "sit/cmn"
    assert "".join(w.word for w in cmn.words) == MANDARIN.replace("，", "")


def test_numbers_and_contractions_stay_one_word() -> None:
    text = "In 1984 I paid $12.50 for well-known things."
    speech = E.synthesize(text, "en-us")
    assert [w.word for w in speech.words] == ["In", "1984", "I", "paid", "$12.50", "for",
                                               "well-known", "things"]


def test_speed_sanity() -> None:
    text = " ".join([ENGLISH] * 6)
    E.synthesize("warm up", "en-us")
    t0 = time.perf_counter()
    speech = E.synthesize(text, "en-us")
    elapsed = time.perf_counter() - t0
    assert speech.audio.duration >= 20.0
    # Typically several hundred times real time; a loose bound avoids flakiness.
    assert speech.audio.duration / elapsed >= 20.0


def test_rate_changes_length() -> None:
    fast = E.synthesize(ENGLISH, "en-us", rate=2.0)
    slow = E.synthesize(ENGLISH, "en-us", rate=0.5)
    assert fast.audio.duration / slow.audio.duration < 0.6


def test_pitch_changes_f0() -> None:
    text = "This is a longer sentence, spoken to measure the pitch of the voice."
    high = _median_f0(E.synthesize(text, "en-us", pitch=12))
    mid = _median_f0(E.synthesize(text, "en-us", pitch=0))
    low = _median_f0(E.synthesize(text, "en-us", pitch=-12))
    assert low < mid < high
    assert 12 * np.log2(high / low) > 12  # close to the 24 asked; espeak saturates near +-10


def test_volume_changes_level() -> None:
    loud = E.synthesize(ENGLISH, "en-us", volume=1.0)
    quiet = E.synthesize(ENGLISH, "en-us", volume=0.5)
    assert _rms(quiet.audio.samples) < 0.7 * _rms(loud.audio.samples)
    assert len(quiet.audio.samples) == pytest.approx(len(loud.audio.samples), rel=0.01)


def test_parameter_mapping() -> None:
    assert E.espeak_parameters(1.0, 0.0, 1.0) == {"rate": 175, "pitch": 50, "range": 50,
                                                  "volume": 100}
    hi = E.espeak_parameters(2.0, 12.0, 2.0)
    assert hi == {"rate": 350, "pitch": 100, "range": 100, "volume": 200}
    lo = E.espeak_parameters(0.5, -12.0, 0.0)
    assert lo["rate"] == 88 and lo["pitch"] == 0 and lo["range"] == 25 and lo["volume"] == 0


def test_variant_voice() -> None:
    speech = E.synthesize("Hello there.", "en-us+f3")
    assert speech.voice == "gmw/en-US+f3"
    assert _rms(speech.audio.samples) > 0.01


@pytest.mark.parametrize(
    ("text", "voice", "kwargs", "code"),
    [
        ("", "en-us", {}, "empty_text"),
        ("   \n", "en-us", {}, "empty_text"),
        ("Hello.", "xx-nope", {}, "unknown_voice"),
        ("Hello.", "en-us+nope", {}, "unknown_voice"),
        ("Hello.", "en-us", {"rate": 5}, "bad_rate"),
        ("Hello.", "en-us", {"rate": float("nan")}, "bad_rate"),
        ("Hello.", "en-us", {"pitch": 30}, "bad_pitch"),
        ("Hello.", "en-us", {"volume": -1}, "bad_volume"),
    ],
)
def test_errors(text: str, voice: str, kwargs: dict, code: str) -> None:
    with pytest.raises(InputError) as info:
        E.synthesize(text, voice, **kwargs)
    assert info.value.code == code
    if code == "unknown_voice":
        assert voice in info.value.message
    if code.startswith("bad_"):
        lo, hi = {"bad_rate": E.RATE_RANGE, "bad_pitch": E.PITCH_RANGE,
                  "bad_volume": E.VOLUME_RANGE}[code]
        assert f"{lo:g} to {hi:g}" in info.value.message


def test_concurrent_threads_match_serial() -> None:
    jobs = [(ENGLISH, "en-us"), (GERMAN, "de"), (MANDARIN, "cmn"), (ENGLISH, "fr")]
    serial = [len(E.synthesize(t, v).audio.samples) for t, v in jobs]
    results: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                t, v = jobs[i]
                results[i] = len(E.synthesize(t, v).audio.samples)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    for i, n in enumerate(serial):
        assert results[i] == pytest.approx(n, rel=0.01)


def test_every_listed_voice_speaks() -> None:
    # Voices whose dictionary the bundled data lacks would speak silence: not listed.
    from pathlib import Path

    import espeakng_loader

    ids = {v.identifier for v in E.list_voices()}
    if not (Path(espeakng_loader.get_data_path()) / "fo_dict").exists():  # 0.2.4 lacks it
        assert "gmq/fo" not in ids
    for v in E.list_voices():
        speech = E.synthesize("Hello 123, test.", v.identifier)
        assert speech.voice == v.identifier
        assert _rms(speech.audio.samples) > 0.005, v.identifier
        assert speech.words, v.identifier
        assert sum(p.duration for p in speech.phonemes) == pytest.approx(speech.audio.duration)
