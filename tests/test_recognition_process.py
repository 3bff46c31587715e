"""Speech recognition in a child process (facecast.motion.recognition_process), as the
audio-only talking photo uses it: the child's words, phones and mouth track are the
in-process ones; a child that dies is replaced by recognising in-process; a render that
fails early leaves no child behind; and it works from a daemonic, forked worker process
(the service's Huey workers are such). Piper TTS speech (always) and a real render of
the packaged astronaut.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

import facecast.motion as motion
from facecast.errors import InputError
from facecast.media.audio import Audio
from facecast.motion.recognition import Recognition, recognise
from facecast.motion.recognition_process import RecognitionProcess
from facecast.pipeline.talking_photo import TalkingPhotoSpec, mouth_track, render_talking_photo

SENTENCE = ("Peter picked a bunch of bright blue berries before the movie began, "
            "and Mom baked a big apple pie for the boys.")


@pytest.fixture(scope="module")
def speech() -> Audio:
    from facecast.speech import synthesize

    return synthesize(SENTENCE).audio


@pytest.fixture(scope="module")
def here(speech: Audio) -> Recognition:
    """The recognition made in this process."""
    return recognise(speech)


def _same(a: Recognition, b: Recognition) -> None:
    assert a.words == b.words
    assert a.phonemes == b.phonemes
    assert (a.posterior, a.acoustic, a.speech_s) == (b.posterior, b.acoustic, b.speech_s)


_BEFORE: set[int] = set()  # this process's children when the running test began


@pytest.fixture(autouse=True)
def _children_before() -> None:
    """Servers that another test file's session fixtures keep (the suite's worker runs
    several files) were there before the test: they are not its children."""
    _BEFORE.clear()
    _BEFORE.update(p.pid for p in psutil.Process().children(recursive=True))


def _children() -> list[psutil.Process]:
    """The live children started since the test began, but multiprocessing's resource
    tracker: the first process started with 'spawn' here (a live session's, in an
    earlier test) starts it, and it stays, by design, for as long as this process lives."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.pid not in _BEFORE and p.status() != psutil.STATUS_ZOMBIE
            and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]


def test_the_child_hears_what_this_process_hears(speech: Audio, here: Recognition) -> None:
    with RecognitionProcess() as child:
        child.send(speech)
        heard = child.result()
        assert child.in_child
    assert here.confident and len(here.words) >= 12
    _same(heard, here)
    # and so the mouth drawn from it is the same, value for value
    ours, theirs = mouth_track(speech, [], 25.0, heard=here), mouth_track(speech, [], 25.0,
                                                                           heard=heard)
    assert ours.source == theirs.source == "recognised"
    assert np.array_equal(ours.values, theirs.values)
    assert not _children()  # answered, reaped


@pytest.mark.parametrize("when", ["before the audio", "while decoding"])
def test_a_killed_child_is_replaced_by_recognising_here(speech: Audio, here: Recognition,
                                                        when: str) -> None:
    with RecognitionProcess() as child:
        assert child.pid is not None
        if when == "before the audio":
            os.kill(child.pid, signal.SIGKILL)
            child.send(speech)
        else:
            child.send(speech)
            os.kill(child.pid, signal.SIGKILL)  # it is still importing or decoding
        heard = child.result()
        assert not child.in_child
    _same(heard, here)
    assert not _children()


def test_a_render_that_fails_on_its_audio_leaves_no_child(tmp_path: Path,
                                                          astronaut_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(64))
    out = tmp_path / "x.mp4"
    with pytest.raises(InputError) as err:
        render_talking_photo(TalkingPhotoSpec(photo=astronaut_path, audio=broken, output=out))
    assert err.value.code in {"unreadable_audio", "no_audio_stream"}, err.value.code
    assert not out.exists()
    assert not _children()


def test_a_render_recognises_in_a_child_and_draws_the_same_mouth(
        tmp_path: Path, astronaut_path: Path, speech: Audio, here: Recognition) -> None:
    from facecast.media import write_audio

    wav = write_audio(tmp_path / "speech.wav", speech)
    result = render_talking_photo(TalkingPhotoSpec(photo=astronaut_path, audio=wav,
                                                   output=tmp_path / "r.mp4", size="256x256",
                                                   export_visemes=tmp_path / "t.json"))
    assert not _children()
    assert result.timings["recognition_wait"] >= 0.0  # it was recognised beside the set-up
    # the same samples recognised here (WAV's 16 bits round them: recognise them again)
    from facecast.media import load_audio

    expected = mouth_track(load_audio(wav), [], 25.0)
    assert result.track.source == "recognised"
    n = min(len(expected), len(result.track))
    assert n >= result.frames - 1
    assert np.array_equal(result.track.values[:n], expected.values[:n])


def _recognise_in(samples: np.ndarray, rate: int, answers: Any) -> None:
    """Runs in a daemonic forked process, as a render in a Huey worker does."""
    with RecognitionProcess() as child:
        child.send(Audio(samples, rate))
        heard = child.result()
        answers.put((child.in_child, [w.word for w in heard.words]))


def test_it_works_in_a_daemonic_forked_worker(speech: Audio, here: Recognition) -> None:
    ctx = multiprocessing.get_context("fork")
    answers = ctx.Queue()
    worker = ctx.Process(target=_recognise_in, args=(speech.samples, speech.sample_rate,
                                                     answers), daemon=True)
    worker.start()
    try:
        in_child, words = answers.get(timeout=120)
    finally:
        worker.join(timeout=30)
    assert worker.exitcode == 0
    # a multiprocessing child would have been refused here ("daemonic processes are not
    # allowed to have children") and recognised in the worker instead
    assert in_child
    assert words == [w.word for w in here.words]


def test_the_motion_package_still_exports_its_names() -> None:
    """Its names load on first use (so the recogniser's child skips SciPy)."""
    for name in motion.__all__:
        assert getattr(motion, name) is not None
    assert motion.recognise is recognise
    with pytest.raises(AttributeError):
        _ = motion.no_such_name


@pytest.fixture(scope="module")
def long_speech(speech: Audio) -> Audio:
    """The sentence three times with pauses between (over 15 s: recognised in two chunks)."""
    pause = np.zeros(int(0.4 * speech.sample_rate), np.float32)
    return Audio(np.concatenate([speech.samples, pause, speech.samples, pause, speech.samples]),
                 speech.sample_rate)


def test_the_child_answers_the_first_chunk_before_the_whole(long_speech: Audio) -> None:
    parts: list[Recognition] = []
    here = recognise(long_speech, on_chunk=parts.append)
    with RecognitionProcess() as child:
        child.send(long_speech)
        first = child.next_part()
        whole = child.next_part()
        assert child.in_child and child.next_part() is whole and child.result() is whole
    assert first.partial and not whole.partial and len(parts) == 1
    _same(first, parts[0])
    assert first.until_s == parts[0].until_s
    _same(whole, here)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory, long_speech: Audio
             ) -> tuple[Path, Audio, Recognition, Recognition]:
    """``long_speech`` as a WAV, the samples as a render reads them back (16 bits) and
    their recognition here: the first chunk's part and the whole."""
    from facecast.media import load_audio, write_audio

    wav = write_audio(tmp_path_factory.mktemp("long") / "speech.wav", long_speech)
    audio = load_audio(wav)
    parts: list[Recognition] = []
    whole = recognise(audio, on_chunk=parts.append)
    assert len(parts) == 1
    return wav, audio, parts[0], whole


def test_a_render_started_on_the_first_chunk_draws_the_whole_ones_frames(
        tmp_path: Path, astronaut_path: Path,
        long_wav: tuple[Path, Audio, Recognition, Recognition]) -> None:
    """The render starts on the recogniser's first chunk; its mouth track is the whole
    recognition's, and the part's tracks give the frames it drew before the whole came:
    mouth and blinks equal, the head's nod within 0.001 IOD."""
    from facecast.pipeline.talking_photo import PROGRESSIVE_MARGIN_S, speech_tracks

    wav, audio, part, whole = long_wav
    spec = TalkingPhotoSpec(photo=astronaut_path, audio=wav, output=tmp_path / "r.mp4",
                            size="256x256")
    result = render_talking_photo(spec)
    assert not _children()
    n = result.frames
    track, life = speech_tracks(audio, whole, spec, n)
    assert result.track.source == "recognised"
    assert np.array_equal(result.track.values, track.values)
    drawn = int(result.timings["frames_before_whole"])
    assert drawn == int((part.until_s - PROGRESSIVE_MARGIN_S) * 25) > 50  # type: ignore[operator]
    ptrack, plife = speech_tracks(audio, part, spec, n)
    assert np.array_equal(ptrack.values[:drawn], track.values[:drawn])
    assert np.array_equal(plife.blink[:drawn], life.blink[:drawn])
    assert np.abs(plife.head[:drawn] - life.head[:drawn]).max() < 1e-3
    # after the margin the part's mouth is not the whole's: the margin is needed
    assert not np.array_equal(ptrack.values[drawn:], track.values[drawn:])


def test_a_confident_part_of_an_unconfident_whole_is_rendered_again(
        tmp_path: Path, astronaut_path: Path, monkeypatch: pytest.MonkeyPatch,
        speech: Audio) -> None:
    """Frames drawn on a confident first chunk are thrown away when the whole is not
    confident: the video is the spectral track's, as if the render had waited."""
    import facecast.motion.recognition as recognition
    from facecast.media import load_audio, write_audio

    # The sentence twice, then backwards (English-like sound, no English words): the
    # first chunk is surer than the whole.
    pause = np.zeros(int(0.4 * speech.sample_rate), np.float32)
    mixed = Audio(np.concatenate([speech.samples, pause, speech.samples, pause,
                                  speech.samples[::-1].copy()]), speech.sample_rate)
    wav = write_audio(tmp_path / "mixed.wav", mixed)
    audio = load_audio(wav)
    parts: list[Recognition] = []
    whole = recognise(audio, on_chunk=parts.append)
    assert len(parts) == 1 and parts[0].confidence > whole.confidence + 0.01
    # the bar between the two (read at each use, in this process: the child only hears)
    monkeypatch.setattr(recognition, "MIN_CONFIDENCE",
                        (parts[0].confidence + whole.confidence) / 2)
    assert parts[0].confident and not whole.confident
    result = render_talking_photo(TalkingPhotoSpec(photo=astronaut_path, audio=wav,
                                                   output=tmp_path / "r.mp4", size="256x256"))
    assert not _children()
    assert result.track.source == "audio"
    assert "frames_before_whole" not in result.timings  # rendered again, as a whole
    expected = mouth_track(audio, [], 25.0, heard=whole)
    # the render fits the track to round(duration x fps) frames, one more than the
    # resampled track when piper's random timing leaves the audio just past a half frame
    n = min(len(result.track), len(expected))
    assert len(result.track) - n <= 1
    assert np.array_equal(result.track.values[:n], expected.values[:n])
    assert result.frames == len(result.track)
