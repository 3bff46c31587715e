"""Colour tags survive every path that makes a video from a video, and match the pixels.

Each source is a short real clip (a face on top, a photo below), once BT.709
limited range and once BT.601 full range, tagged as such. Through each path
with nothing edited where we look (the lower part of the frame), the output
decoded as players decode it (with its tagged matrix and range) must be as
close to the source as a plain x264 re-encode of the same source, and carry
the same tags. A photo render is tagged BT.709 and its colours come out right.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facecast.media import Audio, load_audio, write_audio
from facecast.media.colour import BT709, Colour, video_colour
from facecast.media.video import render_preset
from facecast.media.video_reader import VideoLimits

SIZE = (320, 568)  # a small portrait frame: width, height
FACE_ROWS = 320  # the face square on top; every path may change only these rows
SECONDS = 4.6  # a video avatar needs a 4 s idle stretch
FPS = 25
LIMITS = VideoLimits(min_seconds=1.0)
SOURCES = {
    "bt709_limited": Colour(matrix=1, primaries=1, transfer=1, range=1),
    "bt601_full": Colour(matrix=6, primaries=6, transfer=6, range=2),
}
MARGIN_DB = 0.5
COMPARED = 2 * FPS  # frames compared: the first 2 s of each output
# AVCOL matrix code -> swscale's name for it (the rest decode as BT.601, as FFmpeg does).
_SWS = {1: "itu709", 4: "fcc", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}


def _as_players_decode(frame: av.VideoFrame) -> np.ndarray:
    """RGB with the frame's own matrix and range, explicitly (not the library's default)."""
    colour = Colour.of(frame)
    return frame.reformat(
        format="rgb24",
        src_colorspace=_SWS.get(colour.matrix, "itu601"),
        src_color_range=colour.range or 1,
        dst_color_range=2,
    ).to_ndarray()


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [_as_players_decode(f) for f in c.decode(video=0)]


def _tags(path: Path) -> Colour:
    with av.open(str(path)) as c:
        return Colour.of(next(c.decode(video=0)))


def _psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    n = min(len(a), len(b))
    assert n >= FPS, f"only {n} frames to compare"
    d = np.stack(a[:n]).astype(np.float64) - np.stack(b[:n]).astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(float(np.mean(d * d)), 1e-12)))


def _below_face(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [f[FACE_ROWS + 8 :] for f in frames]


def _write_source(path: Path, frames: list[np.ndarray], colour: Colour) -> Path:
    """Frames converted with ``colour``'s matrix and range by swscale, tagged, at CRF 10."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS, options={"crf": "10", "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        colour.tag(s.codec_context)
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=_SWS.get(colour.matrix, "itu601"),
                dst_color_range=colour.range,
            )
            colour.tag(f)
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _plain_reencode(source: Path, output: Path, crf: int, preset: str) -> Path:
    """What ``ffmpeg -i source -c:v libx264`` does: the decoded planes as they are, tags kept."""
    with av.open(str(source)) as src, av.open(str(output), "w") as out:
        vs = src.streams.video[0]
        s = out.add_stream("libx264", rate=FPS, options={"crf": str(crf), "preset": preset})
        s.width, s.height, s.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        Colour.of(vs.codec_context).tag(s.codec_context)
        for i, f in enumerate(src.decode(vs)):
            g = av.VideoFrame.from_ndarray(f.to_ndarray(), format="yuv420p")
            Colour.of(f).tag(g)
            g.pts = i
            for p in s.encode(g):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return output


@pytest.fixture(scope="module")
def pictures(shared_media: Path) -> list[np.ndarray]:
    """A talking face (Klobuchar) on top and a slowly panning photo below: real content."""
    video = shared_media / "videos" / "klobuchar_10s_noaudio.mp4"
    photo = cv2.imread(str(shared_media / "faces" / "grace_hopper.jpg"))[..., ::-1]
    if not video.exists() or photo is None:
        pytest.skip("shared media missing")
    photo = cv2.resize(photo, (SIZE[0] + 60, SIZE[1] - FACE_ROWS))
    frames: list[np.ndarray] = []
    with av.open(str(video)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= round(SECONDS * FPS):
                break
            frame = np.empty((SIZE[1], SIZE[0], 3), np.uint8)
            frame[:FACE_ROWS] = cv2.resize(
                f.to_ndarray(format="rgb24"), (SIZE[0], FACE_ROWS), interpolation=cv2.INTER_AREA
            )
            x = (i // 4) % 60
            frame[FACE_ROWS:] = photo[:, x : x + SIZE[0]]
            frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory, shared_media: Path) -> Path:
    audio = load_audio(shared_media / "speech" / "pocketsphinx_goforward.wav", 16_000)
    n = round((SECONDS - 0.6) * audio.sample_rate)
    return write_audio(
        tmp_path_factory.mktemp("colour_speech") / "speech.wav",
        Audio(audio.samples[:n], audio.sample_rate),
    )


@pytest.fixture(scope="module", params=sorted(SOURCES))
def source(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pictures: list[np.ndarray],
) -> tuple[Path, Colour]:
    colour = SOURCES[request.param]
    path = tmp_path_factory.mktemp("colour_src") / f"{request.param}.mp4"
    return _write_source(path, pictures, colour), colour


# A step of a path: (its input video, its output, CRF, preset, the input frame its first
# output frame shows). The plain re-encode of the input uses the same CRF and preset.
Step = tuple[Path, Path, int, str, int]


def _dub(src: Path, out: Path, speech: Path) -> list[Step]:
    from facecast.pipeline.dub_video import DubVideoSpec, default_crf, dub_video

    dub_video(DubVideoSpec(video=src, output=out, audio=speech, limits=LIMITS))
    return [(src, out, default_crf(*SIZE), DubVideoSpec.preset, 0)]


def _clean(src: Path, out: Path, speech: Path) -> list[Step]:
    from facecast.pipeline.clean_video import CleanVideoSpec, clean_video

    area = (60, 40, 260, 100)  # inside the face square
    clean_video(CleanVideoSpec(video=src, output=out, watermark_areas=[area], limits=LIMITS))
    return [(src, out, CleanVideoSpec.crf, CleanVideoSpec.preset, 0)]


def _video_avatar(src: Path, out: Path, speech: Path) -> list[Step]:
    from facecast.pipeline.avatar_package import IDLE_CLIP
    from facecast.pipeline.dub_video import default_crf
    from facecast.pipeline.idle_clip import STORE_CRF, STORE_PRESET
    from facecast.pipeline.video_avatar import (
        AvatarRenderSpec,
        VideoAvatarSpec,
        create_video_avatar,
        render_video_avatar,
    )

    folder = out.with_suffix("")
    info = create_video_avatar(
        VideoAvatarSpec(video=src, folder=folder, name="colour", max_height=SIZE[1], limits=LIMITS)
    )
    render_video_avatar(AvatarRenderSpec(avatar=folder, output=out, audio=speech))
    # Two encodes by design (the stored idle clip, then the render): each is checked
    # against a plain re-encode of its own input. The render plays the idle clip from its
    # start, which is frame source_start of the recording; its loop comes after 2 s.
    idle = folder / IDLE_CLIP
    return [
        (src, idle, STORE_CRF, STORE_PRESET, info.source_start),
        (idle, out, default_crf(*SIZE), AvatarRenderSpec.preset, 0),
    ]


def _composed(src: Path, out: Path, speech: Path) -> list[Step]:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
    from facecast.render.composition import Composition

    photo = Path(__file__).resolve().parents[1] / "src" / "facecast" / "assets" / "astronaut.png"
    comp = Composition(
        canvas=SIZE, background=src, avatar_size=(200, 200), position=(SIZE[0] / 2, 140), units="px"
    )
    render_talking_photo(
        TalkingPhotoSpec(photo=photo, output=out, audio=speech, composition=comp), progress=None
    )
    return [(src, out, TalkingPhotoSpec.crf, render_preset(*SIZE), 0)]


PATHS: dict[str, Callable[[Path, Path, Path], list[Step]]] = {
    "dub": _dub,
    "clean": _clean,
    "video_avatar": _video_avatar,
    "composed": _composed,
}


@pytest.mark.parametrize("path_name", sorted(PATHS))
def test_output_keeps_the_source_colour(
    path_name: str, source: tuple[Path, Colour], speech: Path, tmp_path: Path
) -> None:
    src, colour = source
    assert video_colour(src) == colour
    for k, (given, made, crf, preset, first) in enumerate(
        PATHS[path_name](src, tmp_path / "out.mp4", speech)
    ):
        assert _tags(made) == colour, f"{path_name}: {made.name} is tagged {_tags(made)}"
        original = _below_face(_decode(given))[first : first + COMPARED]
        plain = _plain_reencode(given, tmp_path / f"plain{k}.mp4", crf, preset)
        reference = _psnr(_below_face(_decode(plain))[first : first + COMPARED], original)
        ours = _psnr(_below_face(_decode(made))[:COMPARED], original)
        assert ours >= reference - MARGIN_DB, (
            f"{path_name}: {made.name} is {ours:.2f} dB from {given.name} outside the edited "
            f"region, a plain re-encode {reference:.2f} dB"
        )


def test_photo_render_is_bt709_and_its_colours_right(
    shared_media: Path, speech: Path, tmp_path: Path
) -> None:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
    from facecast.render.composition import Composition

    colour = (30, 60, 120)
    comp = Composition(
        canvas=SIZE,
        background=colour,
        avatar_size=(200, 200),
        position=(SIZE[0] / 2, 140),
        units="px",
    )
    out = tmp_path / "photo.mp4"
    render_talking_photo(
        TalkingPhotoSpec(
            photo=shared_media / "faces" / "grace_hopper.jpg",
            output=out,
            audio=speech,
            composition=comp,
        ),
        progress=None,
    )
    assert _tags(out) == BT709
    corner = _decode(out)[10][SIZE[1] - 60 :, :60].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - colour).max() < 2.0, f"background decodes as {corner}, not {colour}"
