"""Composition: backgrounds, the cut-out person, placement, masks and layers, on a real face."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from facecast.cli import main
from facecast.errors import InputError
from facecast.media import Audio, Mp4Writer, write_audio
from facecast.motion.track import CHANNELS
from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
from facecast.render.animator import PortraitAnimator
from facecast.render.compose import Compositor
from facecast.render.composition import (
    ColorFill,
    Composition,
    ImageFill,
    ImageLayer,
    VideoFill,
    parse_background,
    parse_color,
    parse_layer,
    parse_position,
)
from facecast.render.matte import foreground_colors, shape_mask

GREEN = (0, 200, 60)
MOUTH = np.array([0.5 if c == "jaw" else 0.0 for c in CHANNELS], np.float32)
STILL = np.zeros(4, np.float32)


@pytest.fixture(scope="module")
def cutout(astronaut: np.ndarray, landmarks: np.ndarray
           ) -> tuple[Compositor, PortraitAnimator]:
    """The astronaut cut out onto green, 640x360, animated with head motion."""
    comp = Compositor(Composition(background=GREEN, replace_background=True), astronaut,
                      landmarks, 640, 360)
    animator = PortraitAnimator(comp.avatar, comp.landmarks)
    assert animator.head is not None, "the head moves"
    comp.follow(animator.head)
    return comp, animator


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.6 s of syllable-like bursts (noise under a 4 Hz envelope): the mouth follows it."""
    rate = 16_000
    t = np.arange(int(1.6 * rate)) / rate
    rng = np.random.default_rng(1)
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    samples = (0.3 * envelope * rng.standard_normal(len(t))).astype(np.float32)
    return write_audio(tmp_path_factory.mktemp("speech") / "bursts.wav", Audio(samples, rate))


def rgba_png(path: Path, size: tuple[int, int], rgb: tuple[int, int, int],
             alpha: np.ndarray) -> Path:
    h, w = size
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = rgb[::-1]
    img[..., 3] = alpha
    cv2.imwrite(str(path), img)
    return path


def test_colors_and_backgrounds_parse(tmp_path: Path) -> None:
    assert parse_color("#0f0") == (0, 255, 0)
    assert parse_color("#00FF80") == (0, 255, 128)
    assert parse_color("rgb(0, 255, 0)") == (0, 255, 0)
    assert parse_color("12, 34, 56") == (12, 34, 56)
    assert parse_color((1, 2, 3)) == (1, 2, 3)
    for bad in ("#12345", "rgb(0,0,300)", "green-ish"):
        with pytest.raises(InputError) as err:
            parse_color(bad)
        assert err.value.code == "bad_color"
    image = tmp_path / "bg.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    video = tmp_path / "bg.mp4"
    video.write_bytes(b"x")
    assert parse_background("#000000") == ColorFill((0, 0, 0))
    assert parse_background(str(image)) == ImageFill(image)
    assert parse_background(video) == VideoFill(video)
    with pytest.raises(InputError) as err:
        parse_background(tmp_path / "missing.png")
    assert err.value.code == "bad_background"


def test_options_parse_and_bad_compositions_are_refused() -> None:
    assert parse_position("50%,25%") == ((0.5, 0.25), "fraction")
    assert parse_position("960, 540") == ((960.0, 540.0), "px")
    layer = parse_layer("#ff0000@10,20,30x40,below,opacity=0.5")
    assert (layer.source, layer.x, layer.y, layer.width, layer.height) == (
        (255, 0, 0), 10, 20, 30, 40)
    assert layer.z < 0 and layer.opacity == 0.5
    assert Composition(background="#102030").background == ColorFill((16, 32, 48))
    refusals = [
        (lambda: parse_position("50%,10"), "bad_composition"),
        (lambda: parse_layer("logo.png"), "bad_layer"),
        (lambda: ImageLayer("#ff0000", x=0, y=0), "bad_layer"),  # a colour needs a size
        (lambda: Composition(replace_background=True), "bad_composition"),
        (lambda: Composition(canvas=(3840, 3840)), "bad_size"),
        (lambda: Composition(canvas=(641, 360)), "bad_size"),
        (lambda: Composition(mask="star"), "bad_composition"),  # type: ignore[arg-type]
        (lambda: Composition(scale=0.0), "bad_composition"),
    ]
    for make, code in refusals:
        with pytest.raises(InputError) as err:
            make()
        assert err.value.code == code
    assert Composition(canvas=(2160, 3840)).canvas == (2160, 3840), "9:16 4K is allowed"


def test_masks_are_anti_aliased_shapes() -> None:
    circle = shape_mask("circle", 200, 100, 0.0, 0, 0, 200, 100)
    assert circle is not None and circle.shape == (100, 200)
    assert circle[50, 100] == 1.0 and circle[2, 2] == 0.0 and circle[50, 10] == 0.0
    assert circle.sum() == pytest.approx(np.pi * 50**2, rel=0.01)
    edge = circle[(circle > 0) & (circle < 1)]
    assert len(edge) > 100, "the rim is anti-aliased, not a hard step"
    rect = shape_mask("rect", 100, 80, 0.25, 10, 10, 120, 100)
    assert rect is not None
    assert rect[50, 60] == 1.0 and rect[50, 5] == 0.0
    assert rect[11, 11] == 0.0, "a rounded corner is cut"
    assert rect[11, 60] == 1.0, "the straight edge is kept"
    assert shape_mask("none", 10, 10, 0.0, 0, 0, 10, 10) is None


def test_foreground_colours_remove_the_old_background() -> None:
    # A soft-edged orange disc photographed on light grey: edge pixels mix the two.
    yy, xx = np.mgrid[0:120, 0:120].astype(np.float32)
    alpha = np.clip((40.0 - np.hypot(xx - 60, yy - 60)) / 8.0, 0.0, 1.0).astype(np.float32)
    orange, grey = np.array([230, 110, 30], np.float32), np.array([200, 200, 210], np.float32)
    image = (alpha[..., None] * orange + (1 - alpha[..., None]) * grey).astype(np.uint8)
    fg = foreground_colors(image, alpha).astype(np.float32)
    edge = (alpha > 0.05) & (alpha < 0.95)
    err = np.abs(fg[edge] - orange).max(axis=1)
    naive = np.abs(image[edge].astype(np.float32) - orange).max(axis=1)
    assert naive.mean() > 40, "the test edge really is contaminated"
    assert err.mean() < 12 and np.percentile(err, 95) < 25


def test_layers_land_where_asked_with_alpha_and_z(tmp_path: Path, astronaut: np.ndarray,
                                                  landmarks: np.ndarray) -> None:
    ramp = np.tile(np.linspace(0, 255, 50).astype(np.uint8), (20, 1))
    logo = rgba_png(tmp_path / "logo.png", (20, 50), (255, 0, 0), ramp)
    comp = Compositor(Composition(
        background="#203040", position=(400, 60), units="px", anchor="top_left", scale=0.5,
        layers=[ImageLayer(logo, x=10, y=300, width=100),                 # alpha ramp, 2x
                ImageLayer("#0000ff", x=410, y=70, width=40, height=40),  # over the avatar
                ImageLayer("#ffff00", x=420, y=80, width=40, height=40, z=-1),  # under it
                ImageLayer("#ffffff", x=600, y=0, width=100, height=30, opacity=0.5)]),
        astronaut, landmarks, 640, 360)
    out = comp.compose(comp.avatar)
    # The avatar: the portrait scaled to 180x180 with its top-left corner at (400, 60).
    assert (comp.rows, comp.cols) == (slice(60, 240), slice(400, 580))
    assert np.array_equal(out[60:240, 400:580][50:, 50:], comp.avatar[50:, 50:])
    assert tuple(out[10, 10]) == (32, 48, 64), "background colour elsewhere"
    assert tuple(out[75, 415]) == (0, 0, 255), "layer above the avatar covers it"
    assert not np.array_equal(out[110, 455], [255, 255, 0]), "layer below is hidden by it"
    # The PNG's alpha ramp, scaled 2x: transparent at its left end, opaque at its right.
    assert tuple(out[320, 11].tolist()) == pytest.approx((32, 48, 64), abs=6)
    assert tuple(out[320, 108].tolist()) == pytest.approx((250, 1, 1), abs=6)
    mid = out[320, 60].astype(int)
    assert 110 < mid[0] < 160 and mid[2] < 64
    assert tuple(out[10, 620].tolist()) == pytest.approx(((32 + 255) / 2, (48 + 255) / 2,
                                                          (64 + 255) / 2), abs=1), "opacity 0.5"
    assert tuple(out[10, 599]) == (32, 48, 64) and tuple(out[31, 620]) == (32, 48, 64)


def test_placement_is_refused_when_the_face_leaves_the_canvas(astronaut: np.ndarray,
                                                              landmarks: np.ndarray) -> None:
    for comp in (Composition(background="#000000", position=(1.0, 0.5)),
                 Composition(background="#000000", position=(2.0, 2.0)),
                 Composition(background="#000000", scale=0.05)):
        with pytest.raises(InputError) as err:
            Compositor(comp, astronaut, landmarks, 640, 360)
        assert err.value.code == "bad_composition"


def test_circle_avatar_crops_around_the_face(astronaut: np.ndarray,
                                             landmarks: np.ndarray) -> None:
    comp = Compositor(Composition(background=(255, 255, 255), mask="circle",
                                  avatar_size=(200, 200), position=(0.25, 0.5)),
                      astronaut, landmarks, 640, 360)
    out = comp.compose(comp.avatar)
    assert (comp.rows, comp.cols) == (slice(80, 280), slice(60, 260))
    assert tuple(out[81, 61]) == (255, 255, 255), "the box corner is outside the circle"
    assert not np.array_equal(out[180, 160], [255, 255, 255])
    # The face sits inside the circle: all its landmarks within the radius of the centre.
    r = np.hypot(*(comp.landmarks[:, :2] - [100, 100]).T)
    assert r.max() < 100


def test_cut_out_person_on_a_new_background(cutout: tuple[Compositor, PortraitAnimator],
                                            astronaut: np.ndarray,
                                            landmarks: np.ndarray) -> None:
    comp, animator = cutout
    frame = animator.render(MOUTH, 0.0, STILL)
    out = comp.compose(frame, STILL)
    box = out[comp.rows, comp.cols]
    # The top corners of the portrait were wall; now they are exactly the new colour.
    assert np.all(box[:40, :40] == GREEN) and np.all(box[:40, -40:] == GREEN)
    # The face is the portrait's own.
    nose = np.round(comp.landmarks[1, :2]).astype(int)
    assert np.abs(box[nose[1], nose[0]].astype(int) - frame[nose[1], nose[0]]).max() <= 1
    # No halo: at the soft edge of the hair, the colour drawn is the hair's, not the
    # light wall's that the photo's own edge pixels carry.
    photo = Compositor(Composition(background=GREEN), astronaut, landmarks, 640, 360).avatar
    alpha = comp.alpha
    assert alpha is not None and photo.shape == comp.avatar.shape
    above = np.zeros(alpha.shape, bool)
    above[: int(comp.landmarks[:, 1].min())] = True  # above the forehead: hair and wall
    ring = above & (alpha > 0.05) & (alpha < 0.6)
    light = lambda img, where: float(img[where].astype(int).sum(axis=1).mean())  # noqa: E731
    hair, wall = light(photo, above & (alpha > 0.99)), light(photo, above & (alpha == 0))
    assert ring.sum() > 50 and wall - hair > 100
    assert abs(light(comp.avatar, ring) - hair) < 0.25 * (wall - hair)
    assert light(photo, ring) - hair > 0.5 * (wall - hair), "the photo's edge is contaminated"


def test_matte_moves_with_the_head(cutout: tuple[Compositor, PortraitAnimator]) -> None:
    comp, animator = cutout
    iod = animator.rig.frame.iod
    nose_x = round(float(comp.landmarks[1, 0]))

    def top_of_head(pose: np.ndarray) -> tuple[int, np.ndarray]:
        out = comp.compose(animator.render(MOUTH, 0.0, pose), pose)[comp.rows, comp.cols]
        col = out[:, nose_x].astype(int)
        top = int(np.argmax(np.abs(col - GREEN).max(axis=1) > 60))
        return top, col[top + 3]

    still_top, still_hair = top_of_head(STILL)
    down = np.array([0.0, 0.0, 0.12, 0.0], np.float32)  # head_motion 2 reaches this
    moved_top, moved_hair = top_of_head(down)
    # The outline follows the head (a still matte would cut the hair or show wall)...
    assert moved_top - still_top == pytest.approx(0.12 * iod, abs=1.5)
    # ...and what shows just inside it is still hair.
    assert np.abs(moved_hair - still_hair).max() < 40
    comp.follow(None)
    try:
        assert top_of_head(down)[0] == still_top, "without a head mover the matte stays"
    finally:
        comp.follow(animator.head)


def test_background_video_loops_and_covers(tmp_path: Path, astronaut: np.ndarray,
                                           landmarks: np.ndarray) -> None:
    # A 1 s, 10 fps, 16:9 clip whose frames are distinct greys, then a white frame.
    clip = tmp_path / "bg.mp4"
    levels = [20 * i for i in range(10)]
    with Mp4Writer(clip, 160, 90, fps=10) as writer:
        for v in levels:
            writer.write(np.full((90, 160, 3), v, np.uint8))
    comp = Compositor(Composition(background=clip, position=(0.5, 0.7)),
                      astronaut, landmarks, 180, 320, fps=20)
    try:
        seen = [int(comp.compose(comp.avatar)[5, 5].mean()) for _ in range(50)]
    finally:
        comp.close()
    # 20 output frames per second of a 10 fps clip: each grey twice, in order, looping.
    grid = [levels[(i // 2) % 10] for i in range(50)]
    assert np.abs(np.array(seen) - grid).max() <= 4, seen


def test_render_with_composition_end_to_end(tmp_path: Path, astronaut_path: Path,
                                            speech_wav: Path) -> None:
    out = tmp_path / "composed.mp4"
    result = render_talking_photo(TalkingPhotoSpec(
        photo=astronaut_path, audio=speech_wav, output=out,
        composition=Composition(
            canvas=(360, 640), background="#1e3c78", replace_background=True, mask="circle",
            avatar_size=(300, 300), position=(0.5, 0.35),
            layers=[ImageLayer("#ffffff", x=0, y=560, width=360, height=80)])))
    assert (result.width, result.height) == (360, 640)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(frames) == result.frames == 40
    last = frames[-1]
    assert np.abs(last[20, 20] - (30, 60, 120)).max() < 8, "background colour"
    assert np.abs(last[600, 180] - (255, 255, 255)).max() < 8, "layer at the bottom"
    assert np.abs(last[224, 180] - (30, 60, 120)).max() > 40, "the avatar in the circle"
    assert np.abs(last[80, 40] - (30, 60, 120)).max() < 8, "outside the circle"
    jaw = result.track.channel("jaw")
    a, b = frames[int(np.argmin(jaw))], frames[int(np.argmax(jaw))]
    assert np.abs(a - b).mean(axis=2)[100:360, 40:320].max() > 40, "the mouth moves"


def test_cli_render_options(tmp_path: Path, astronaut_path: Path, speech_wav: Path) -> None:
    out = tmp_path / "cli.mp4"
    runner = CliRunner()
    res = runner.invoke(main, [
        "render", "--photo", str(astronaut_path), "--audio", str(speech_wav), "-o", str(out),
        "--canvas", "320x180", "--background", "#000000", "--mask", "rect",
        "--corner-radius", "0.2", "--position", "25%,50%", "--scale", "0.9",
        "--layer", "#ff0000@300,0,20x20", "--head-motion", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert frame.shape == (180, 320, 3)
    assert np.abs(frame[10, 310] - (255, 0, 0)).max() < 30, "the layer"
    assert np.abs(frame[90, 300]).max() < 10, "black beside the avatar"
    assert frame[10:170, 0:160].mean() > 60, "the avatar left of centre"
    bad = runner.invoke(main, [
        "render", "--photo", str(astronaut_path), "--audio", str(speech_wav), "-o",
        str(tmp_path / "x.mp4"), "--position", "10%,5", "--no-progress"])
    assert bad.exit_code == 2 and "bad_composition" in bad.output
    assert not (tmp_path / "x.mp4").exists()
