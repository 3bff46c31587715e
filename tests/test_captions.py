"""Captions: cue rules, SRT / WebVTT files, timing against the output's own audio, burned
text read back by OCR, the API's caption file, and speech that needs its text."""

from __future__ import annotations

import base64
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from click.testing import CliRunner

from facecast.captions import (
    CaptionBurner,
    CaptionStyle,
    Cue,
    build_cues,
    parse_captions,
    shown_words,
    to_srt,
    to_vtt,
    write_captions,
)
from facecast.errors import InputError
from facecast.rules import (
    CAPTION_GAP_S,
    CAPTION_LINE_CHARS,
    CAPTION_MAX_LINES,
    CAPTION_MAX_S,
    CAPTION_MIN_S,
)
from facecast.timing import WordTiming

if TYPE_CHECKING:
    from app_support import App
    from facecast.pipeline.talking_photo import TalkingPhotoResult

# Within this of an independent forced alignment of the output's own audio (the bar).
WORD_START_TOLERANCE_S = 0.150

LONG_TEXT = (
    "Good evening, and welcome to the news. Tonight we look at the rain that fell over the "
    "city for three days, the roads that flooded, and the people who helped their neighbours "
    "when the water came into their homes. The mayor said on Monday that the city would pay "
    "for the repairs, but many families are still waiting for the money. Here is our report "
    "from the river, where the clean-up began this morning. Volunteers carried sandbags, "
    "pumped out cellars and cooked for hundreds of people in the school hall; some of them "
    "had not slept since the weekend. The forecast for tomorrow is dry. Thank you for "
    "watching, and good night."
)


def spoken(text: str, *, seed: int = 0) -> list[WordTiming]:
    """Words timed like speech (piper speaks ~15 characters a second): ~55 ms a character,
    short pauses after commas, longer after sentences (spelled without punctuation, as
    the speech engines give them)."""
    rng = np.random.default_rng(seed)
    out, t = [], 0.4
    for token in text.split():
        length = 0.055 * len(token) + rng.uniform(0.04, 0.08)
        out.append(WordTiming(re.sub(r"[^\w'-]", "", token), t, t + length))
        t += length + rng.uniform(0.02, 0.08)
        if token[-1] in ",;":
            t += 0.25
        elif token[-1] in ".?!":
            t += 0.5
    return out


@pytest.fixture(scope="module")
def long_cues() -> list[Cue]:
    return build_cues(shown_words(spoken(LONG_TEXT), LONG_TEXT))


def test_cues_follow_subtitle_rules(long_cues: list[Cue]) -> None:
    cues = long_cues
    assert len(cues) >= 8
    # every word of the text, once and in order, with its punctuation
    assert " ".join(" ".join(c.lines) for c in cues) == LONG_TEXT
    for c in cues:
        assert 1 <= len(c.lines) <= CAPTION_MAX_LINES, c
        assert all(len(line) <= CAPTION_LINE_CHARS for line in c.lines), c
        assert c.start == c.words[0].start, "a cue starts with its first word"
        assert CAPTION_MIN_S - 1e-6 <= c.end - c.start <= CAPTION_MAX_S + 1e-6, c
        assert len(c.words) > 1, f"a one-word cue (orphan): {c}"
        assert all(len(line.split()) > 1 for line in c.lines), f"a one-word line: {c}"
    for a, b in itertools.pairwise(cues):
        assert b.start - a.end >= CAPTION_GAP_S - 1e-6, (a, b)
    # breaks at phrase boundaries: no cue or line ends on an article, most cues end a
    # sentence or a clause
    ends = [line.split()[-1] for c in cues for line in c.lines]
    assert not [e for e in ends if e.lower() in {"a", "an", "the", "their", "of", "to"}], ends
    at_punctuation = sum(c.lines[-1][-1] in ".,;!?" for c in cues)
    assert at_punctuation >= 0.75 * len(cues), [c.text for c in cues]
    # two-line cues are used where one line would be too long, not split needlessly
    assert all(len(" ".join(c.lines)) > CAPTION_LINE_CHARS for c in cues if len(c.lines) == 2)


def test_a_long_sentence_without_punctuation_still_keeps_the_limits() -> None:
    text = " ".join(["word"] * 120)
    cues = build_cues(shown_words(spoken(text), text))
    assert sum(len(c.words) for c in cues) == 120
    for c in cues:
        assert len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines)
        assert c.end - c.start <= CAPTION_MAX_S + 1e-6


def test_shown_words_keep_the_writers_spelling() -> None:
    # TTS says "three" and "Mister" for "3" and "Mr."; the caption shows what was written
    words = [WordTiming("It's", 0.1, 0.3), WordTiming("three", 0.35, 0.6),
             WordTiming("o'clock", 0.62, 1.0), WordTiming("Mister", 1.2, 1.5),
             WordTiming("Smith", 1.55, 1.9)]
    shown = shown_words(words, "It's 3 o'clock, Mr. Smith!")
    assert [w.word for w in shown] == ["It's", "3", "o'clock,", "Mr.", "Smith!"]
    assert [w.start for w in shown] == [0.1, 0.35, 0.62, 1.2, 1.55]
    # a lone dash joins its word; a word the speech lacks sits at the previous end
    shown = shown_words(words[:2], "It's - three extra")
    assert [w.word for w in shown] == ["It's -", "three", "extra"]
    assert shown[2].start == shown[1].end


def test_srt_and_webvtt_are_well_formed(long_cues: list[Cue], tmp_path: Path) -> None:
    cues = [*long_cues, Cue(70.0, 3725.5, ("1 < 2 & 3 > 2", "a --> b"))]
    srt = write_captions(cues, tmp_path / "c.srt").read_text(encoding="utf-8")
    vtt = write_captions(cues, tmp_path / "c.vtt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:00,400 --> ") and vtt.startswith("WEBVTT\n\n00:00:00.400 --> ")
    assert "01:02:05,500" in srt and "01:02:05.500" in vtt
    assert "1 &lt; 2 &amp; 3 &gt; 2" in vtt and "1 < 2 & 3 > 2" in srt
    for text, fmt in ((srt, "srt"), (vtt, "vtt")):
        back = parse_captions(text, fmt)
        assert len(back) == len(cues)
        for a, b in zip(back, cues, strict=True):
            assert abs(a.start - b.start) < 6e-4 and abs(a.end - b.end) < 6e-4
        assert "-->" not in " ".join(" ".join(c.lines) for c in back)
    assert [c.lines for c in parse_captions(srt, "srt")][:-1] == [c.lines for c in long_cues]
    with pytest.raises(ValueError):
        parse_captions(srt, "vtt")  # no header
    with pytest.raises(ValueError):
        parse_captions(vtt.replace("00:00:00.400", "00:00:00,400"), "vtt")
    with pytest.raises(InputError) as err:
        write_captions(cues, tmp_path / "c.txt")
    assert err.value.code == "bad_captions"
    assert to_srt([]) == "" and to_vtt([]).startswith("WEBVTT")


def test_burner_draws_only_while_a_cue_shows() -> None:
    frame = np.full((240, 320, 3), 90, np.uint8)
    burner = CaptionBurner([Cue(1.0, 2.0, ("Hello there",))], 320, 240, 25.0,
                           CaptionStyle(size=0.08, position="top"))
    assert np.array_equal(burner.burn(frame.copy(), 10), frame)  # 0.4 s: before the cue
    drawn = burner.burn(frame, 30)
    assert (frame == 90).all(), "the given frame is left as it was (a renderer may reuse it)"
    changed = np.argwhere((drawn != frame).any(axis=2))
    assert len(changed) > 200
    # inside the safe area (5 % of the frame), at the top, centred
    assert changed[:, 0].min() >= 0.05 * 240 - 1 and changed[:, 0].max() < 120
    assert changed[:, 1].min() >= 0.05 * 320 - 1 and changed[:, 1].max() <= 0.95 * 320 + 1
    assert abs((changed[:, 1].min() + changed[:, 1].max()) / 2 - 160) < 4
    with pytest.raises(InputError):
        CaptionBurner([], 320, 240, 25.0, CaptionStyle(colour="white"))


# ---- end to end: a render with captions ------------------------------------------------

SPOKEN = "Good morning, everyone. Today we test the captions."


@pytest.fixture(scope="module")
def small_photo(astronaut_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256 px crop of the bundled portrait around the face."""
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "face.png"
    Image.open(astronaut_path).convert("RGB").crop((110, 10, 366, 266)).save(path)
    return path


@pytest.fixture(scope="module")
def captioned(small_photo: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[TalkingPhotoResult, Path]]:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    out = tmp_path_factory.mktemp("captioned") / "video.mp4"
    result = render_talking_photo(TalkingPhotoSpec(
        photo=small_photo, output=out, text=SPOKEN, size="384x288", head_motion=0.0,
        captions=[out.with_suffix(".srt"), out.with_suffix(".vtt")],
        burn_captions=CaptionStyle(size=0.07)))
    yield result, out


@pytest.mark.slow
def test_caption_starts_match_an_alignment_of_the_outputs_own_audio(
        captioned: tuple[TalkingPhotoResult, Path]) -> None:
    from facecast.media import load_audio
    from facecast.motion.align import align_transcript

    result, out = captioned
    assert result.captions_source == "tts"
    srt = parse_captions(out.with_suffix(".srt").read_text(encoding="utf-8"), "srt")
    vtt = parse_captions(out.with_suffix(".vtt").read_text(encoding="utf-8"), "vtt")
    assert [c.start for c in srt] == [c.start for c in vtt] and len(srt) == 2
    assert [c.text for c in srt] == ["Good morning, everyone.", "Today we test the captions."]
    # an independent measure: the MP4's own (AAC-encoded) audio aligned to the text
    aligned, _ = align_transcript(load_audio(out), SPOKEN)
    starts = {}
    for w in aligned:
        starts.setdefault(w.word.lower(), w.start)
    errors = [abs(c.start - starts[re.sub(r"\W", "", c.lines[0].split()[0]).lower()])
              for c in srt]
    assert max(errors) <= WORD_START_TOLERANCE_S, errors
    # and every word of each cue (the result keeps them) against the alignment
    words = [w for c in result.captions for w in c.words]
    assert len(words) == len(aligned)
    assert max(abs(a.start - b.start) for a, b in zip(words, aligned, strict=True)) \
        <= WORD_START_TOLERANCE_S
    assert srt[-1].end <= result.duration + 1e-3


def unread_captions(video: Path, cues: Sequence[Cue]) -> list[tuple[str, str]]:
    """The cues whose text the project's OCR does not find, in the caption's half of the
    frame in the middle of the cue: (wanted, read) pairs; empty when all are burned in."""
    import av

    from facecast.cleanup.ocr import detect_text

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps, height = float(stream.average_rate), stream.codec_context.height
        wanted = {round((c.start + c.end) / 2 * fps): c.text for c in cues}
        read: dict[int, str] = {}
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                boxes = detect_text(frame.to_ndarray(format="rgb24"), read=True)
                read[i] = " ".join(b.text for b in boxes if b.y1 > height / 2)
    return [(text, read.get(i, "")) for i, text in wanted.items()
            if re.sub(r"\W", "", text).lower() not in re.sub(r"\W", "", read.get(i, "")).lower()]


@pytest.mark.slow
def test_burned_captions_read_back_by_ocr(captioned: tuple[TalkingPhotoResult, Path]) -> None:
    result, out = captioned
    assert len(result.captions) == 2
    assert unread_captions(out, result.captions) == []


def test_recognised_english_is_captioned_and_other_languages_need_the_text(
        shared_media: Path) -> None:
    from facecast.media import Audio, load_audio
    from facecast.pipeline.captioning import make_captions

    english = load_audio(shared_media / "speech" / "pocketsphinx_goforward.wav")
    made = make_captions(english, [], text=None, transcript=None)
    assert made.source == "recognised"
    assert [c.text for c in made.cues] == ["Go forward ten meters"]
    # with its transcript: the transcript's spelling, timed by its forced alignment
    from facecast.motion.align import align_transcript

    aligned, _ = align_transcript(english, "Go forward, 10 meters!")
    made = make_captions(english, aligned, text=None, transcript="Go forward, 10 meters!")
    assert made.source == "transcript"
    assert [c.text for c in made.cues] == ["Go forward, 10 meters!"]
    assert abs(made.cues[0].start - aligned[0].start) < 1e-9
    german = load_audio(shared_media / "speech" / "de_german_sadtalker_deyu.wav")
    german = Audio(german.samples[:german.sample_rate * 5], german.sample_rate)
    with pytest.raises(InputError) as err:
        make_captions(german, [], text=None, transcript=None)
    assert err.value.code == "captions_need_text"
    assert "transcript" in err.value.message


def test_cli_refuses_captions_of_german_audio_before_rendering(
        shared_media: Path, small_photo: Path, tmp_path: Path) -> None:
    from facecast.cli import main
    from facecast.media import Audio, load_audio, write_audio

    german = load_audio(shared_media / "speech" / "de_german_sadtalker_deyu.wav")
    clip = tmp_path / "de.wav"
    write_audio(clip, Audio(german.samples[:german.sample_rate * 4], german.sample_rate))
    out = tmp_path / "de.mp4"
    r = CliRunner().invoke(main, ["render", "--photo", str(small_photo), "--audio", str(clip),
                                  "--captions", str(tmp_path / "de.srt"), "-o", str(out),
                                  "--no-progress"])
    assert r.exit_code == 2, r.output
    assert "[captions_need_text]" in r.output
    assert not out.exists() and not (tmp_path / "de.srt").exists()
    bad = CliRunner().invoke(main, ["render", "--photo", str(small_photo), "--text", "Hi.",
                                    "--captions", str(tmp_path / "x.txt"), "-o", str(out)])
    assert bad.exit_code == 2 and ".srt or .vtt" in bad.output


@pytest.mark.slow
def test_api_job_lists_the_caption_file_and_it_downloads(app: App, small_photo: Path) -> None:
    key = app.account()
    photo = base64.b64encode(small_photo.read_bytes()).decode()
    r = app.client.post("/api/v1/talking-photos", headers=app.native(key), json={
        "photo": {"base64": photo}, "text": "Hello there, and welcome.", "head_motion": 0,
        "captions": {"format": "vtt", "burn": True, "position": "top"}})
    assert r.status_code == 201, r.text
    assert r.json()["input"]["captions"] == "vtt"
    app.run_jobs()
    job = app.client.get(f"/api/v1/jobs/{r.json()['id']}", headers=app.native(key)).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["info"]["captions_source"] == "tts"
    listed = job["result"]["files"]["captions"]
    assert listed["content_type"] == "text/vtt"
    got = app.client.get(listed["url"])
    assert got.status_code == 200 and len(got.content) == listed["size"]
    cues = parse_captions(io.TextIOWrapper(io.BytesIO(got.content), "utf-8").read(), "vtt")
    assert [c.text for c in cues] == ["Hello there, and welcome."]
    # a format the API does not know is refused before a job
    bad = app.client.post("/api/v1/talking-photos", headers=app.native(key), json={
        "photo": {"base64": photo}, "text": "Hi.", "captions": {"format": "ass"}})
    assert bad.status_code in (400, 422), bad.text


# ---- dubs and video avatars: files and burn-in through encode_dub ----------------------

DUB_TEXT = "Hello there, my friends."
BURN_FLAGS = ("--burn-captions", "--caption-size", "0.08")  # legible to OCR at 256 px


@pytest.fixture(scope="module")
def still_video(small_photo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A still 5.5 s video of the portrait (a dub and a video avatar take over 5 s)."""
    from PIL import Image

    from facecast.media import Mp4Writer

    video = tmp_path_factory.mktemp("still") / "still.mp4"
    face = np.asarray(Image.open(small_photo).convert("RGB"))
    with Mp4Writer(video, 256, 256, 25) as writer:
        for _ in range(int(5.5 * 25)):
            writer.write(face)
    return video


def tts_cues(path: Path, fmt: str) -> list[Cue]:
    """The cues of a caption file of :data:`DUB_TEXT` (checked: one cue of it, timed
    like the speech)."""
    cues = parse_captions(path.read_text(encoding="utf-8"), fmt)
    assert [c.text for c in cues] == [DUB_TEXT]
    assert 0 < cues[0].start < 0.3 and cues[0].end > 1.0
    return cues


@pytest.fixture(scope="module")
def dubbed(still_video: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, Path, str]:
    """``facecast dub`` with a caption file and the captions burned in: the video, the
    file and the command's output."""
    from facecast.cli import main

    folder = tmp_path_factory.mktemp("dubbed")
    out, vtt = folder / "dubbed.mp4", folder / "dubbed.vtt"
    r = CliRunner().invoke(main, ["dub", "--video", str(still_video), "--text", DUB_TEXT,
                                  "--captions", str(vtt), *BURN_FLAGS, "-o", str(out),
                                  "--no-progress"])
    assert r.exit_code == 0, r.output
    return out, vtt, r.output


@pytest.mark.slow
def test_dub_writes_captions_of_the_new_speech(dubbed: tuple[Path, Path, str]) -> None:
    _, vtt, said = dubbed
    assert f"wrote {vtt} (1 cues from tts words)" in said
    assert "captions burned in (1 cues from tts words)" in said
    tts_cues(vtt, "vtt")


@pytest.mark.slow
def test_dub_burned_captions_read_back_by_ocr(dubbed: tuple[Path, Path, str]) -> None:
    out, vtt, _ = dubbed
    assert unread_captions(out, tts_cues(vtt, "vtt")) == []


def test_dub_refuses_a_bad_caption_style_before_reading_the_video(tmp_path: Path) -> None:
    from facecast.captions import CaptionStyle
    from facecast.pipeline.dub_video import DubVideoSpec, dub_video

    with pytest.raises(InputError) as err:
        dub_video(DubVideoSpec(video=tmp_path / "missing.mp4", output=tmp_path / "x.mp4",
                               text="Hi.", burn_captions=CaptionStyle(colour="red")))
    assert err.value.code == "bad_captions"


@pytest.fixture(scope="module")
def avatar_env(still_video: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A facecast home whose library has a video avatar ``Still`` of the still video."""
    import os

    from facecast.cli import main

    env = {**os.environ, "FACECAST_HOME": str(tmp_path_factory.mktemp("home"))}
    made = CliRunner().invoke(main, ["avatar", "create", "--video", str(still_video),
                                     "--name", "Still", "--no-progress"], env=env)
    assert made.exit_code == 0, made.output
    return env


@pytest.mark.slow
def test_video_avatar_render_writes_and_burns_captions(avatar_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    from facecast.cli import main

    out, srt = tmp_path / "avatar.mp4", tmp_path / "avatar.srt"
    r = CliRunner().invoke(main, ["render", "--avatar", "Still", "--text", DUB_TEXT,
                                  "--captions", str(srt), *BURN_FLAGS, "-o", str(out),
                                  "--no-progress"], env=avatar_env)
    assert r.exit_code == 0, r.output
    assert "video avatar" in r.output and f"wrote {srt} (1 cues from tts words)" in r.output
    assert unread_captions(out, tts_cues(srt, "srt")) == []


@pytest.mark.slow
def test_api_dub_burns_captions_and_lists_the_file(app: App, still_video: Path) -> None:
    key = app.account()
    video = {"base64": base64.b64encode(still_video.read_bytes()).decode()}

    def job_of(path: str, body: dict[str, object]) -> dict:
        r = app.client.post(path, headers=app.native(key), json=body)
        assert r.status_code == 201, r.text
        app.run_jobs()
        job = app.client.get(f"/api/v1/jobs/{r.json()['id']}", headers=app.native(key)).json()
        assert job["status"] == "succeeded", job
        return job

    def download(job: dict, name: str, to: Path) -> Path:
        got = app.client.get(job["result"]["files"][name]["url"])
        assert got.status_code == 200
        to.write_bytes(got.content)
        return to

    folder = still_video.parent
    dub = job_of("/api/v1/dubs", {"video": video, "text": DUB_TEXT, "captions": {
        "format": "srt", "burn": True, "size": 0.08}})
    assert dub["result"]["info"]["captions_source"] == "tts"
    assert set(dub["result"]["files"]) >= {"video", "captions"}
    cues = tts_cues(download(dub, "captions", folder / "api.srt"), "srt")
    assert unread_captions(download(dub, "video", folder / "api.mp4"), cues) == []
    # burned only: no file is listed
    burned = job_of("/api/v1/dubs", {"video": video, "text": DUB_TEXT, "captions": {
        "format": None, "burn": True, "size": 0.08}})
    assert "captions" not in burned["result"]["files"]
    assert burned["result"]["info"]["caption_cues"] == 1

    # a video avatar: the avatar_video job makes the caption file (and burns them)
    r = app.client.post("/api/v1/avatars", headers=app.native(key),
                        json={"name": "still", "video": video})
    assert r.status_code == 201, r.text
    app.run_jobs()
    spoken = job_of("/api/v1/talking-photos", {"avatar_id": r.json()["id"], "text": DUB_TEXT,
                                               "captions": {"format": "vtt", "burn": True,
                                                            "size": 0.08}})
    assert spoken["result"]["files"]["captions"]["content_type"] == "text/vtt"
    cues = tts_cues(download(spoken, "captions", folder / "avatar.vtt"), "vtt")
    assert unread_captions(download(spoken, "video", folder / "avatar.mp4"), cues) == []
