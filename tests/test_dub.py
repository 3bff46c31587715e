"""Video dubbing end to end: real faces, real speech, real encoder, outputs measured from outside.

The always-on source video is made here: the packaged astronaut portrait
speaking one sentence (talking-photo renderer, piper TTS). It is then dubbed
with a different sentence, and the output's lip openings (face mesh, from
:mod:`facecast.quality.lipsync`) must follow the new speech and not the old.
Tests on real people's videos use ../shared/media and skip without it.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from facecast.errors import InputError
from facecast.face import FaceAnalyzer
from facecast.media import Audio, Mp4Writer, load_audio, write_audio
from facecast.media.video_reader import DUB_LIMITS, MP4_H264_LIMITS, VideoLimits, read_frames
from facecast.motion.track import CHANNELS
from facecast.pipeline.dub_video import DubVideoResult, DubVideoSpec, dub_video
from facecast.pipeline.frames import output_rate
from facecast.pipeline.talking_photo import (
    TalkingPhotoResult,
    TalkingPhotoSpec,
    render_talking_photo,
)
from facecast.pipeline.video_loop import Loop, schedule
from facecast.quality.lipsync import lip_opening_series
from facecast.render.dub import JAW_GAP, MouthDubber
from facecast.render.lip_geometry import eye_frame, mouth_gap
from facecast.render.video_face import SEARCH_EVERY, fill_gaps, smooth_landmarks
from media_support import write_still_video

SOURCE_TEXT = ("Good morning. Today I would like to talk about the weather on the coast, "
               "and about the boats that sail from the harbour every day, "
               "whatever the wind and the rain may do.")
NEW_TEXT = ("Papa made a big map of the moon. Bob and Pam bought apples, bananas and "
            "a bottle of milk, then they walked back home by the open market.")


# --------------------------------------------------------------------------- media


def _frames(path: Path) -> list[np.ndarray]:
    return [rgb for _, rgb in read_frames(path)]


def _opening(track_values: np.ndarray) -> np.ndarray:
    """The mouth opening a track asks for (the rig's jaw after closures cancel it)."""
    v = {c: track_values[:, i] for i, c in enumerate(CHANNELS)}
    return v["jaw"] * (1 - v["closure"]) * (1 - 0.8 * v["labiodental"])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], float), np.asarray(b[:n], float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def source_render(tmp_path_factory: pytest.TempPathFactory, astronaut_path: Path
                  ) -> TalkingPhotoResult:
    """About 9 s of the astronaut speaking SOURCE_TEXT, head moving a little (NEW_TEXT
    speaks for about 7.5 s: dubbing it cuts the video)."""
    out = tmp_path_factory.mktemp("dub_src") / "source.mp4"
    return render_talking_photo(TalkingPhotoSpec(photo=astronaut_path, text=SOURCE_TEXT,
                                                 output=out, head_motion=0.6, seed=3))


@pytest.fixture(scope="module")
def source_video(source_render: TalkingPhotoResult) -> Path:
    return source_render.output


@pytest.fixture(scope="module")
def new_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facecast.speech import synthesize

    speech = synthesize(NEW_TEXT)
    return write_audio(tmp_path_factory.mktemp("dub_speech") / "new.wav", speech.audio)


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory: pytest.TempPathFactory, source_video: Path, new_speech: Path
           ) -> tuple[DubVideoResult, list[tuple[float, str]]]:
    stages: list[tuple[float, str]] = []
    out = tmp_path_factory.mktemp("dub_out") / "dubbed.mp4"
    result = dub_video(DubVideoSpec(video=source_video, audio=new_speech, output=out),
                       progress=lambda f, s: stages.append((f, s)))
    return result, stages


# --------------------------------------------------------------------------- the use case


def test_dub_keeps_the_format_and_speaks_the_new_audio(
        dubbed: tuple[DubVideoResult, list[tuple[float, str]]], new_speech: Path,
        source_video: Path) -> None:
    result, stages = dubbed
    audio = load_audio(new_speech)
    with av.open(str(result.output)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264"
        assert (v.codec_context.width, v.codec_context.height) == (512, 512)
        assert float(v.average_rate) == 25
        assert a.codec_context.name == "aac"
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(source_video)) as c:
        source_frames = sum(1 for _ in c.decode(video=0))
    assert frames == result.frames == round(audio.duration * 25) < source_frames
    assert result.loop is None and result.source_frames == result.frames
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"checking video", "tracking face", "rendering", "done"} <= {s for _, s in stages}
    assert result.frames_with_face == result.frames


def test_lips_follow_the_new_speech_not_the_old(
        dubbed: tuple[DubVideoResult, list[tuple[float, str]]],
        source_render: TalkingPhotoResult) -> None:
    result, _ = dubbed
    # Measured by an independent face mesh on the encoded MP4s.
    _, out_open = lip_opening_series(result.output)
    _, src_open = lip_opening_series(source_render.output)
    old = _opening(source_render.track.values)
    new = _opening(result.track.values)
    # The source's lips followed the old speech (so the checks below mean something) ...
    assert _corr(src_open, old) > 0.6
    # ... and the dubbed lips follow the new speech, and neither the old speech nor the
    # old lips.
    assert _corr(out_open, new) > 0.5
    assert abs(_corr(out_open, old)) < 0.3
    assert abs(_corr(out_open, src_open)) < 0.3


def test_outside_the_lower_face_is_the_source(
        dubbed: tuple[DubVideoResult, list[tuple[float, str]]], source_video: Path) -> None:
    result, _ = dubbed
    src, out = _frames(source_video), _frames(result.output)
    with FaceAnalyzer() as fa:
        lm = fa.analyze(src[0]).landmarks
    fr = eye_frame(lm)
    # Everything above the nose tip, and everything beside or below the jaw region.
    nose_y = int(lm[1, 1] - 0.05 * fr.iod)
    x0 = int(lm[:, 0].min() - 0.4 * fr.iod)
    x1 = int(lm[:, 0].max() + 0.4 * fr.iod)
    y1 = int(lm[152, 1] + 0.8 * fr.iod)
    box = (slice(nose_y, y1), slice(x0, x1))
    worst, lower = float("inf"), []
    for s, o in zip(src, out, strict=False):
        lower.append(_psnr(s[box], o[box]))
        s, o = s.copy(), o.copy()
        s[box] = o[box] = 0  # compare the rest of the frame only
        worst = min(worst, _psnr(s, o) - 10 * np.log10(s.size / (s.size - s[box].size)))
    assert worst >= 40.0
    # ... while the lower face did change.
    assert np.mean(lower) < 38


def test_longer_speech_loops_without_a_jump(tmp_path: Path, source_video: Path,
                                            new_speech: Path) -> None:
    speech = load_audio(new_speech)
    long = write_audio(tmp_path / "long.wav", Audio(np.concatenate(
        [speech.samples, speech.samples[: speech.sample_rate * 3]]), speech.sample_rate))
    out = tmp_path / "looped.mp4"
    result = dub_video(DubVideoSpec(video=source_video, audio=long, output=out))
    assert result.loop is not None
    assert result.frames == round(load_audio(long).duration * 25) > result.source_frames
    frames = _frames(out)
    src = _frames(source_video)
    # Frame-to-frame change over the upper face (the mouth changes with speech anyway):
    # where the video jumps back, it must look like the source's ordinary motion.
    with FaceAnalyzer() as fa:
        lm = fa.analyze(src[0]).landmarks
    top = slice(0, int(lm[1, 1]))

    def step(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a[top].astype(int) - b[top].astype(int)).mean())

    normal = [step(a, b) for a, b in pairwise(src)]
    end, start = result.loop
    jumps = range(end, result.frames - 1, end - start)  # output frame before each jump
    around = [step(frames[k], frames[k + 1]) for j in jumps for k in range(j - 6, j + 2)]
    assert len(around) >= 8
    assert max(around) <= 1.5 * max(normal) + 0.3
    # A plain cut from the end frame to the frame after the start would show more.
    assert step(src[end], src[start + 1]) > max(around)


def test_shorter_speech_cuts_the_video_and_cli_reports(tmp_path: Path, source_video: Path,
                                                       new_speech: Path) -> None:
    from facecast.cli import main

    speech = load_audio(new_speech)
    short = write_audio(tmp_path / "short.wav",
                        Audio(speech.samples[: int(2.2 * speech.sample_rate)], speech.sample_rate))
    out = tmp_path / "short.mp4"
    res = CliRunner().invoke(main, ["dub", "--video", str(source_video), "--audio", str(short),
                                    "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "512x512 at 25 fps" in res.output
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 55


def test_frames_without_a_face_pass_through(tmp_path: Path, source_video: Path,
                                            new_speech: Path) -> None:
    # The first second and a stretch in the middle show an empty room instead of the face.
    src = tmp_path / "gaps.mp4"
    blank = np.full((512, 512, 3), (90, 110, 120), np.uint8)
    cv2.rectangle(blank, (100, 300), (400, 480), (60, 60, 50), -1)
    faceless = set(range(25)) | set(range(80, 100))
    with Mp4Writer(src, 512, 512, 25, crf=12) as w:
        for i, (_, rgb) in enumerate(read_frames(source_video)):
            w.write(blank if i in faceless else rgb)
    result = dub_video(DubVideoSpec(video=src, audio=new_speech, output=tmp_path / "out.mp4"))
    # The face is found again within a few frames of coming back (the search runs
    # every SEARCH_EVERY frames while there is none).
    expected = result.source_frames - len(faceless)
    assert expected - 2 * (SEARCH_EVERY - 1) <= result.frames_with_face <= expected
    inp, out = _frames(src), _frames(result.output)
    for i in sorted(faceless):
        assert _psnr(inp[i], out[i]) > 42
    # Faced frames right after a faceless stretch are dubbed (fading in), not failed.
    assert _psnr(inp[40], out[40]) < 60


def test_the_chosen_face_speaks_when_there_are_two(tmp_path: Path, source_video: Path,
                                                   new_speech: Path) -> None:
    # A big and a small copy of the speaker side by side.
    src = tmp_path / "two.mp4"
    with Mp4Writer(src, 768, 512, 25, crf=12) as w:
        for _, rgb in read_frames(source_video):
            frame = np.full((512, 768, 3), 40, np.uint8)
            frame[:, :512] = rgb
            frame[128:384, 512:768] = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
            w.write(frame)
    speech = load_audio(new_speech)
    short = write_audio(tmp_path / "short.wav",
                        Audio(speech.samples[: int(2.5 * speech.sample_rate)], speech.sample_rate))
    changed = {}
    for index in (0, 1):
        out = tmp_path / f"face{index}.mp4"
        dub_video(DubVideoSpec(video=src, audio=short, output=out, face_index=index))
        inp, res = _frames(src), _frames(out)
        big = np.mean([_psnr(a[:, :512], b[:, :512]) for a, b in zip(inp, res, strict=False)])
        small = np.mean([_psnr(a[:, 512:], b[:, 512:]) for a, b in zip(inp, res, strict=False)])
        changed[index] = (big, small)
    # Re-encoding alone leaves about 42 dB; a re-voiced face is well below that.
    assert changed[0][0] + 4 < changed[0][1]  # the largest face speaks by default
    assert changed[1][1] + 4 < changed[1][0]  # or the one chosen
    with pytest.raises(InputError) as err:
        dub_video(DubVideoSpec(video=src, audio=short, output=tmp_path / "x.mp4", face_index=2))
    assert err.value.code == "face_not_found"
    assert not (tmp_path / "x.mp4").exists()


def test_variable_frame_rate_input_comes_out_constant(tmp_path: Path, source_video: Path,
                                                      new_speech: Path) -> None:
    # Frames 30 ms and 50 ms apart in turn: 25 fps on average, never two gaps alike.
    src = tmp_path / "vfr.mp4"
    with av.open(str(src), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 512, 512, "yuv420p"
        s.codec_context.time_base = s.time_base = Fraction(1, 1000)
        t = 0
        for i, (_, rgb) in enumerate(read_frames(source_video)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += 30 if i % 2 == 0 else 50
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    speech = load_audio(new_speech)
    short = write_audio(tmp_path / "short.wav",
                        Audio(speech.samples[: int(3 * speech.sample_rate)], speech.sample_rate))
    out = tmp_path / "out.mp4"
    result = dub_video(DubVideoSpec(video=src, audio=short, output=out))
    assert result.fps == 25.0
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        pts = [f.pts for f in c.decode(stream)]
        base = stream.time_base
    steps = {round(float((b - a) * base), 4) for a, b in pairwise(pts)}
    assert steps == {0.04}
    assert len(pts) == 75


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "make", "code", "limits"),
    [
        ("short.mp4", lambda p: write_still_video(p, 3.0), "video_too_short", DUB_LIMITS),
        # KreadoAI's lip-sync rules (MP4/MOV, H.264); the native defaults take both
        ("mpeg4.mp4", lambda p: write_still_video(p, 6.0, codec="mpeg4"), "unsupported_codec",
         MP4_H264_LIMITS),
        ("movie.mkv", lambda p: write_still_video(p, 6.0, fmt="matroska"),
         "unsupported_container", MP4_H264_LIMITS),
        ("movie.ts", lambda p: write_still_video(p, 6.0, fmt="mpegts"), "unsupported_container",
         DUB_LIMITS),
        ("garbage.mp4", lambda p: p.write_bytes(b"not a video at all" * 100), "unreadable_video",
         DUB_LIMITS),
        ("empty_room.mp4", lambda p: write_still_video(p, 5.2), "no_face", DUB_LIMITS),
    ],
)
def test_bad_video_is_refused_with_its_reason(tmp_path: Path, new_speech: Path, name: str,
                                              make, code: str, limits: VideoLimits) -> None:
    video = tmp_path / name
    make(video)
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as err:
        dub_video(DubVideoSpec(video=video, audio=new_speech, output=out, limits=limits))
    assert err.value.code == code
    assert video.name in err.value.message or code == "no_face"
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))


def test_size_limit_and_bad_speech_are_refused(tmp_path: Path, source_video: Path,
                                               new_speech: Path) -> None:
    out = tmp_path / "out.mp4"
    small = VideoLimits(max_bytes=10_000)
    with pytest.raises(InputError) as err:
        dub_video(DubVideoSpec(video=source_video, audio=new_speech, output=out, limits=small))
    assert err.value.code == "file_too_large" and "MB" in err.value.message
    blip = write_audio(tmp_path / "blip.wav", Audio(np.zeros(4000, np.float32), 16000))
    with pytest.raises(InputError) as err:
        dub_video(DubVideoSpec(video=source_video, audio=blip, output=out))
    assert err.value.code == "audio_too_short"
    with pytest.raises(InputError) as err:
        dub_video(DubVideoSpec(video=source_video, output=out))
    assert err.value.code == "bad_request"
    assert not out.exists()


def test_cli_prints_one_line_errors(tmp_path: Path, new_speech: Path) -> None:
    from facecast.cli import main

    video = write_still_video(tmp_path / "short.mp4", 2.0)
    res = CliRunner().invoke(main, ["dub", "--video", str(video), "--audio", str(new_speech),
                                    "-o", str(tmp_path / "o.mp4"), "--no-progress"])
    assert res.exit_code == 2
    assert "[video_too_short]" in res.output and "5 s" in res.output
    res = CliRunner().invoke(main, ["dub", "--video", str(video), "-o", str(tmp_path / "o.mp4")])
    assert res.exit_code == 2 and "exactly one of --audio or --text" in res.output


# --------------------------------------------------------------------------- engine parts


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> np.ndarray:
    with FaceAnalyzer() as fa:
        return fa.analyze(astronaut).landmarks[:468, :2]


def _open_mouth(landmarks: np.ndarray, dubber: MouthDubber, jaw: float) -> np.ndarray:
    fr = eye_frame(landmarks)
    loc = fr.local(landmarks.astype(np.float64))
    return fr.point(loc + jaw * dubber.rig.basis[0])


def test_neutral_closes_an_open_mouth_and_channels_reopen_it(face: np.ndarray) -> None:
    dubber = MouthDubber(face)
    opened = _open_mouth(face, dubber, 0.8)
    assert mouth_gap(opened) > 0.18
    fr = eye_frame(opened)
    loc = fr.local(opened)
    closed = fr.point(dubber.rig.target(loc, np.zeros(len(CHANNELS), np.float32)))
    assert abs(mouth_gap(closed)) < 0.01
    jaw = np.zeros(len(CHANNELS), np.float32)
    jaw[0] = 0.5
    reopened = fr.point(dubber.rig.target(loc, jaw))
    assert mouth_gap(reopened) == pytest.approx(0.5 * JAW_GAP, abs=0.02)
    # Nothing above the nose moves.
    above = loc[:, 1] < 0.6
    assert np.abs(reopened[above] - opened[above]).max() < 1e-9


def test_dubbed_frame_is_untouched_outside_the_lower_face(astronaut: np.ndarray,
                                                         face: np.ndarray) -> None:
    dubber = MouthDubber(face)
    mouth = np.array([0.8, 0.2, 0.0, 0.0, 0.0, 0.5, 0.0], np.float32)  # CHANNELS order
    out = dubber.render(astronaut, face, mouth)
    changed = np.any(out != astronaut, axis=2)
    ys = np.nonzero(changed)[0]
    fr = eye_frame(face)
    assert changed.sum() > 500  # the mouth opened
    # Every changed pixel lies below the nose tip.
    assert ys.min() >= face[1, 1] - 0.2 * fr.iod
    # Not dubbed at all when the face is absent.
    assert np.array_equal(dubber.render(astronaut, face, mouth, presence=0.0), astronaut)


def test_smoothing_fills_short_gaps_and_fades_at_the_ends() -> None:
    rng = np.random.default_rng(0)
    n = 60
    base = np.linspace(0, 30, n)[:, None, None] + np.zeros((n, 468, 2))
    noisy = (base + rng.normal(0, 1.0, base.shape)).astype(np.float32)
    valid = np.ones(n, bool)
    valid[20:23] = False  # a short drop-out: filled
    valid[40:] = False  # the face leaves: presence fades to 0
    filled = fill_gaps(noisy.copy(), valid, 5)
    assert filled[20:23].all() and not filled[40:].any()
    smooth, presence = smooth_landmarks(noisy, valid, 25.0)
    face_pts = np.setdiff1d(np.arange(468), [13, 14, 61, 291, 152])
    err_raw = np.abs(noisy[5:35, face_pts] - base[5:35, face_pts]).mean()
    err_smooth = np.abs(smooth[5:35, face_pts] - base[5:35, face_pts]).mean()
    assert err_smooth < 0.75 * err_raw
    assert presence[0] == 1.0 and presence[10] == 1.0
    assert 0 < presence[38] < 1 and presence[40:].max() == 0.0


def test_loop_schedule_crossfades_into_the_restart() -> None:
    loop = Loop(start=5, end=20, fade=3)
    plan = list(schedule(40, 21, loop))
    assert len(plan) == 40
    src = [s for s, _, _ in plan]
    assert src[:21] == list(range(21))
    assert src[21:36] == list(range(6, 21))  # after 20 comes 6: frame 20 matches frame 5
    fades = [(s, b, round(w, 2)) for s, b, w in plan[:21] if b is not None]
    assert fades == [(18, 3, 0.25), (19, 4, 0.5), (20, 5, 0.75)]
    assert list(schedule(10, 21, None)) == [(i, None, 0.0) for i in range(10)]


def test_output_rate_snaps_to_standard_rates() -> None:
    assert output_rate(29.97) == Fraction(30000, 1001)
    assert output_rate(25.04) == 25
    assert output_rate(12.5) == Fraction(25, 2)


# --------------------------------------------------------------------------- real people


def test_real_video_dubbed_with_foreign_speech(tmp_path: Path, shared_media: Path) -> None:
    video = shared_media / "videos" / "klobuchar_10s_noaudio.mp4"
    german = shared_media / "speech" / "de_german_sadtalker_deyu.wav"
    if not video.exists() or not german.exists():
        pytest.skip("klobuchar video or German speech missing from shared media")
    out = tmp_path / "klobuchar_de.mp4"
    result = dub_video(DubVideoSpec(video=video, audio=german, output=out))
    assert (result.width, result.height) == (256, 256)
    assert result.frames_with_face >= 0.95 * result.source_frames
    _, out_open = lip_opening_series(out)
    _, src_open = lip_opening_series(video)
    wanted = _opening(result.track.values)
    assert _corr(out_open, wanted) > 0.5
    assert abs(_corr(out_open, src_open)) < 0.25
