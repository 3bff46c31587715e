"""Expression templates and prompts: the rig's expression channels on a real face, the
templates' tracks, the prompt parser, real renders measured with the face mesh (brows
and eyes, nods and shakes, a camera zoom), previews and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from facecast.errors import InputError
from facecast.face import FaceAnalyzer, check_face
from facecast.motion.expressions import (
    FACE_CHANNELS,
    TEMPLATES,
    ExpressionPlan,
    expression_track,
    get_template,
)
from facecast.motion.life import GESTURE_LIMITS, life_track, with_gestures
from facecast.motion.prompt import parse_prompt
from facecast.motion.track import CHANNELS
from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
from facecast.render.rig import (
    BROW_RAISE,
    BROWS,
    EYES,
    EYES_WIDE,
    FURROW_DOWN,
    FURROW_IN,
    LOWER_INNER,
    LOWER_OUTER,
    RIG_CHANNELS,
    SMILE_OUT,
    SMILE_UP,
    SQUINT_LOWER,
    UPPER_INNER,
    UPPER_OUTER,
    FaceRig,
)

LIPS = sorted(set(UPPER_OUTER + LOWER_OUTER + UPPER_INNER + LOWER_INNER))
JAW = [152, 148, 377, 176, 400, 149, 378]  # chin and the jaw line below the mouth
STABLE = [33, 133, 362, 263, 168, 6, 10, 151, 9]  # eye corners, nose bridge, forehead


@pytest.fixture(scope="module")
def rig(landmarks: np.ndarray) -> FaceRig:
    return FaceRig(landmarks)


def moved(rig: FaceRig, **values: float) -> np.ndarray:
    """Displacement of every landmark from the rest pose, in IOD units, as (right, down)."""
    rest = rig.pose(np.zeros(len(RIG_CHANNELS)))
    v = np.zeros(len(RIG_CHANNELS))
    for name, value in values.items():
        v[RIG_CHANNELS.index(name)] = value
    d = rig.pose(v) - rest
    fr = rig.frame
    return np.stack([d @ fr.right, d @ fr.down], axis=1) / fr.iod


# ---- the rig ---------------------------------------------------------------------------------


def test_new_channels_come_after_the_existing_ones() -> None:
    # The mouth track's channels first, in its order (the tongue, added after the teeth,
    # is the track's last), then the blinks, then the expressions.
    assert RIG_CHANNELS[:9] == ("jaw", "spread", "round", "closure", "labiodental", "teeth",
                                "tongue", "blink_left", "blink_right")
    assert RIG_CHANNELS[9:] == FACE_CHANNELS


def test_brow_raise_lifts_brows_and_forehead_only(rig: FaceRig) -> None:
    d = moved(rig, brow_raise=1.0)
    brows = [i for side in BROWS.values() for i in side]
    assert d[brows, 1] == pytest.approx(-BROW_RAISE, abs=0.002), "brows up by the full amount"
    assert np.abs(d[brows, 0]).max() < 0.002, "straight up"
    top = d[10, 1]  # the forehead's top follows, less
    assert -BROW_RAISE * 0.6 < top < -BROW_RAISE * 0.2
    lids = [i for eye in EYES.values() for i in eye["upper"] + eye["lower"]]
    assert not d[lids].any() and not d[LIPS].any() and not d[JAW].any()


def test_brow_furrow_pulls_the_inner_brows_down_and_together(rig: FaceRig) -> None:
    d = moved(rig, brow_furrow=1.0)
    inner_r, inner_l = 107, 336  # the brows' inner ends (image left, image right)
    outer_r, outer_l = 70, 300
    for inner in (inner_r, inner_l):
        assert d[inner, 1] == pytest.approx(FURROW_DOWN, rel=0.25), "inner brow down"
    assert d[inner_r, 0] == pytest.approx(FURROW_IN, rel=0.3), "towards the nose"
    assert d[inner_l, 0] == pytest.approx(-FURROW_IN, rel=0.3)
    for outer in (outer_r, outer_l):
        assert 0 < d[outer, 1] < 0.5 * FURROW_DOWN, "outer ends follow less"
    assert not d[LIPS].any() and not d[JAW].any()


def test_smile_lifts_the_corners_and_cheeks_not_the_chin(rig: FaceRig) -> None:
    d = moved(rig, smile=1.0)
    assert d[61] == pytest.approx([-SMILE_OUT, -SMILE_UP], abs=0.01), "left corner up and out"
    assert d[291] == pytest.approx([SMILE_OUT, -SMILE_UP], abs=0.01)
    assert np.abs(d[[13, 14]]).max() < 0.005, "the lips' middle stays (closed lips stay shut)"
    assert d[[145, 374], 1].max() < -0.01, "lower lids up a little"
    assert d[[205, 425], 1].max() < -0.01, "cheeks up"
    assert not d[JAW].any(), "the chin and jaw line do not move"
    frown = moved(rig, smile=-0.5)
    assert frown[61, 1] > 0.02 and frown[291, 1] > 0.02, "a negative smile: corners down"


def test_eye_channels_move_the_lids(rig: FaceRig) -> None:
    wide, squint = moved(rig, eyes_wide=1.0), moved(rig, squint=1.0)
    for up, lo in ((159, 145), (386, 374)):
        assert wide[up, 1] == pytest.approx(-EYES_WIDE, abs=0.004) and wide[lo, 1] == 0
        assert squint[lo, 1] == pytest.approx(-SQUINT_LOWER, abs=0.004) and squint[up, 1] > 0
    for d in (wide, squint):
        assert not d[LIPS].any() and not d[JAW].any()
        brows = [i for side in BROWS.values() for i in side]
        assert not d[brows].any()


def test_expression_channels_compose_with_mouth_and_blinks(rig: FaceRig) -> None:
    jaw = moved(rig, jaw=1.0)
    both = moved(rig, jaw=1.0, brow_raise=1.0, eyes_wide=1.0)
    assert np.allclose(both[LIPS], jaw[LIPS]), "brows and eyes leave the mouth alone"
    rest = rig.pose(np.zeros(len(RIG_CHANNELS)))
    opening = float(np.linalg.norm(rest[159] - rest[145]))
    for extra in ({"eyes_wide": 1.0}, {"squint": 1.0}, {"smile": 1.0}):
        v = np.zeros(len(RIG_CHANNELS))
        v[RIG_CHANNELS.index("blink_left")] = v[RIG_CHANNELS.index("blink_right")] = 1.0
        for name, value in extra.items():
            v[RIG_CHANNELS.index(name)] = value
        p = rig.pose(v)
        gap = (p[145] - p[159]) @ rig.frame.down  # lower minus upper lid, + = open
        assert -0.02 * opening < gap < 0.2 * opening, f"a blink still closes with {extra}"


def test_warp_region_holds_the_forehead(astronaut: np.ndarray, landmarks: np.ndarray) -> None:
    from facecast.render.animator import PortraitAnimator

    animator = PortraitAnimator(astronaut, landmarks, head_motion=False)
    top = rig_top = animator.rig.pose(np.zeros(len(RIG_CHANNELS)))[:468, 1].min()
    assert animator.region.y0 < top, "the warped region reaches above the forehead"
    mouth = np.zeros(len(CHANNELS), np.float32)
    plain = animator.render(mouth, 0.0, None)
    raised = animator.render(mouth, 0.0, None, np.array([1, 0, 0, 0, 0], np.float32))
    r = animator.region
    diff = np.abs(raised.astype(int) - plain).sum(axis=2)
    brow_y = int(landmarks[[105, 334], 1].mean())
    assert diff[brow_y - 6:brow_y + 6, r.x0:r.x1].mean() > 2, "the brows moved"
    assert not diff[: max(int(rig_top) - 30, 0)].any(), "nothing above the head moved"


# ---- templates and tracks --------------------------------------------------------------------


def test_catalogue_ids_keys_and_lookup() -> None:
    assert [t.id for t in TEMPLATES] == list(range(1, len(TEMPLATES) + 1))
    keys = {t.key for t in TEMPLATES}
    assert {"natural", "happy", "amazed", "serious", "thinking", "nodding",
            "shaking_head"} <= keys
    assert all(t.name and t.name_zh and t.description for t in TEMPLATES)
    assert get_template(None).key == "natural" and get_template(3).key == "amazed"
    assert get_template("3").key == "amazed" and get_template("Shaking head").key == "shaking_head"
    assert get_template("惊讶").key == "amazed"
    with pytest.raises(InputError) as err:
        get_template("grumpy")
    assert err.value.code == "unknown_expression"
    assert "happy" in err.value.message and "natural" in err.value.message
    with pytest.raises(InputError):
        get_template(99)


def test_natural_changes_nothing_and_tracks_are_deterministic() -> None:
    assert ExpressionPlan(get_template("natural").controls).is_neutral()
    n, fps = 200, 25.0
    activity = np.clip(np.sin(np.arange(n) / 3.0), 0, 1)
    activity[80:110] = 0  # a pause
    natural = expression_track(get_template("natural"), fps, n, activity, seed=1)
    assert not natural.face.any() and not natural.head.any()
    assert np.all(natural.gain == 1) and np.all(natural.zoom == 1)
    a = expression_track(get_template("happy"), fps, n, activity, seed=4)
    b = expression_track(get_template("happy"), fps, n, activity, seed=4)
    c = expression_track(get_template("happy"), fps, n, activity, seed=5)
    assert np.array_equal(a.face, b.face) and np.array_equal(a.head, b.head)
    assert not np.array_equal(a.face, c.face)
    smile = a.face[:, FACE_CHANNELS.index("smile")]
    # happy smiles more in pauses (0.75) than while speaking (0.45)
    assert smile[90:100].mean() > smile[20:60].mean() + 0.1
    amazed = expression_track(get_template("amazed"), fps, n, activity, seed=1)
    assert amazed.face[:, FACE_CHANNELS.index("brow_raise")].min() > 0.5
    assert amazed.face[:, FACE_CHANNELS.index("eyes_wide")].min() > 0.5


def _crossings(x: np.ndarray) -> int:
    x = x - x.mean()
    return int(np.sum(np.signbit(x[1:]) != np.signbit(x[:-1])))


def test_nodding_and_shaking_tracks_oscillate() -> None:
    n, fps = 250, 25.0
    nod = expression_track(get_template("nodding"), fps, n, None, seed=2).head
    shake = expression_track(get_template("shaking_head"), fps, n, None, seed=2).head
    # 10 s at 1.4 nods a second: about 14 dips (28 crossings); dy only
    assert 20 <= _crossings(nod[:, 2]) <= 40 and np.ptp(nod[:, 2]) > 0.06
    assert not nod[:, 1].any()
    assert 25 <= _crossings(shake[:, 1]) <= 45 and np.ptp(shake[:, 1]) > 0.1
    assert np.corrcoef(shake[:, 1], shake[:, 0])[0, 1] > 0.9, "roll follows the shake"
    assert not shake[:, 2].any()
    life = life_track(n, fps, seed=2)
    moving = with_gestures(life, shake * 3.0)  # far too much: held within the bounds
    assert np.all(np.abs(moving.head) <= GESTURE_LIMITS + 1e-6)


# ---- prompts ---------------------------------------------------------------------------------


def test_prompt_phases_camera_and_intensity() -> None:
    text = "while talking, excitedly shaking head, then smiling; slow zoom in"
    plan = parse_prompt(text)
    assert plan.unused == []
    assert [(p.start, p.end) for p in plan.phases] == [(0.0, 0.5), (0.5, 1.0)]
    first, later = plan.phases[0].changes, plan.phases[1].changes
    shake = first["shake"]
    assert shake.during == "speech" and shake.amplitude > 0.07 and shake.rate > 1.8, \
        "excitedly: bigger and faster"
    assert "smile" not in first and "shake" not in later and later["smile"].speech > 0.5
    assert plan.camera is not None
    assert (plan.camera.start_zoom, plan.camera.start, plan.camera.end) == (1.0, 0.0, 1.0)
    assert plan.camera.end_zoom > 1.1
    track = expression_track(plan.plan(), 25.0, 100, None)
    smile = track.face[:, FACE_CHANNELS.index("smile")]
    assert smile[:30].max() < 0.05 < smile[-30:].min(), "smiling comes later"
    assert np.ptp(track.head[:40, 1]) > 0.1 and np.ptp(track.head[-30:, 1]) < 0.01
    assert track.zoom[0] == pytest.approx(1.0, abs=1e-3) and track.zoom[-1] > 1.15


def test_prompt_reports_what_it_cannot_do() -> None:
    text = "Smiles and waves hand, walks to the door; camera pans left while nodding slowly"
    plan = parse_prompt(text)
    assert plan.unused == ["waves hand", "walks to the door", "camera pans left"]
    assert all(part in text for part in plan.unused)
    assert set(plan.changes) >= {"smile", "nod"} and plan.changes["nod"].rate < 1.4
    assert parse_prompt("dances on the table").unused == ["dances on the table"]
    assert parse_prompt("dances on the table").is_empty()
    leftover = parse_prompt("smiling at the dog")
    assert leftover.unused == ["dog"] and "smile" in leftover.changes
    assert parse_prompt("looking at the camera, smiling").unused == ["looking at the camera"]


def test_klings_documented_prompt() -> None:
    # The example of Kling's avatar API: the head and mood are rendered, the body is not.
    text = ("While talking, excitedly shaking head, finally reaching out and making a fist, "
            "deciding to set off, hopping happily")
    plan = parse_prompt(text)
    assert plan.unused == ["finally reaching out", "making a fist", "deciding to set off",
                           "hopping"]
    assert plan.changes["shake"].during == "speech" and plan.changes["smile"].speech > 0.3


def test_prompt_timing_negation_moods_and_chinese() -> None:
    plan = parse_prompt("slightly happy, at the end raise eyebrows")
    assert plan.changes["smile"].pause == pytest.approx(0.75 * 0.5)
    assert [(round(p.start, 2), p.end) for p in plan.phases] == [(0.67, 1.0)]
    assert plan.phases[0].changes["brow_raise"].speech > 0.7
    assert parse_prompt("serious, without smiling").changes["smile"].speech == 0.0
    tilt = parse_prompt("tilt head to the left")
    assert tilt.changes["tilt"] < 0 and tilt.unused == []
    zh = parse_prompt("说话时开心地点头，然后摇头，最后镜头推近")
    assert zh.unused == []
    assert zh.phases[0].changes["nod"].during == "speech" and "shake" in zh.phases[1].changes
    assert zh.camera is not None and zh.camera.start == pytest.approx(2 / 3)
    assert parse_prompt("微笑，挥手").unused == ["挥手"], "a Chinese clause with no keyword"
    out = parse_prompt("zoom out quickly")
    assert out.camera is not None and out.camera.start_zoom > out.camera.end_zoom == 1.0
    assert out.camera.end < 0.5, "a quick move is over early"
    with pytest.raises(InputError) as err:
        parse_prompt("smile " * 500)
    assert err.value.code == "prompt_too_long"


# ---- real renders ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facecast.speech import save_speech, synthesize

    folder = tmp_path_factory.mktemp("expr-speech")
    speech = synthesize("Hello there! I can nod my head, and shake it too.")
    audio, _ = save_speech(speech, folder / "speech.wav")
    return audio


def frames_of(path: Path, step: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0))
                if i % step == 0]


def render(tmp: Path, photo: Path, wav: Path, name: str, **kw: object):
    spec = TalkingPhotoSpec(photo=photo, audio=wav, output=tmp / f"{name}.mp4", **kw)
    return render_talking_photo(spec)


def brow_and_eye(lm: np.ndarray) -> tuple[float, float]:
    """Brow height above the upper lids and the eye opening, in IOD units."""
    iod = float(np.linalg.norm(lm[[33, 133], :2].mean(0) - lm[[362, 263], :2].mean(0)))
    brows = [i for side in BROWS.values() for i in side]
    upper = [159, 386, 158, 385, 160, 387]
    lower = [145, 374, 153, 380, 144, 373]
    return (float(lm[upper, 1].mean() - lm[brows, 1].mean()) / iod,
            float(lm[lower, 1].mean() - lm[upper, 1].mean()) / iod)


def test_amazed_raises_brows_and_opens_eyes_in_the_video(
        tmp_path: Path, astronaut_path: Path, speech_wav: Path) -> None:
    # The head is kept still so that every difference is the face's own.
    natural = render(tmp_path, astronaut_path, speech_wav, "natural", head_motion=0.0,
                     blinks=False)
    amazed = render(tmp_path, astronaut_path, speech_wav, "amazed", head_motion=0.0,
                    blinks=False, expression="amazed")
    assert natural.expression == "natural" and amazed.expression == "amazed"
    a_frames, n_frames = frames_of(amazed.output, 8), frames_of(natural.output, 8)
    with FaceAnalyzer() as fa:
        a = np.array([brow_and_eye(fa.analyze(f).landmarks) for f in a_frames])
        n = np.array([brow_and_eye(fa.analyze(f).landmarks) for f in n_frames])
    # The rig lifts the brows by 0.07-0.09 IOD and the lids by ~0.03; the mesh, which
    # holds brows close to its face model, sees about 0.03 and 0.025 of it.
    assert (a[:, 0] - n[:, 0]).mean() > 0.015, "brows higher above the eyes"
    assert (a[:, 1] - n[:, 1]).mean() > 0.012, "eyes open wider"
    lm = check_face(a_frames[0]).analysis.landmarks
    brow_y = int(lm[[105, 334], 1].mean())
    x0, x1 = int(lm[[70], 0][0]), int(lm[[300], 0][0])
    diffs = [np.abs(x.astype(int) - y).mean() for x, y in zip(a_frames, n_frames, strict=True)]
    brow_diff = np.mean([np.abs(x[brow_y - 8:brow_y + 8, x0:x1].astype(int)
                                - y[brow_y - 8:brow_y + 8, x0:x1]).mean()
                         for x, y in zip(a_frames, n_frames, strict=True)])
    assert brow_diff > 3 * np.mean(diffs), "the change is in the brow region"
    corner = (slice(0, 60), slice(0, 60))
    # Two separate H.264 encodes: the rate control may round a background block a few
    # levels differently, so judge the corner as a whole, not its single worst pixel.
    corner_diffs = [np.abs(x[corner].astype(int) - y[corner]) for x, y in
                    zip(a_frames, n_frames, strict=True)]
    assert all(d.mean() <= 1.0 and np.percentile(d, 99) <= 6 for d in corner_diffs), \
        "the background is untouched"


def head_path(frames: list[np.ndarray]) -> np.ndarray:
    """The stable face points' centre per frame, in IOD units of the first frame, less
    its slow drift (facecast's own head motion wanders over a second or more)."""
    with FaceAnalyzer() as fa:
        lms = [fa.analyze(f).landmarks for f in frames]
    iod = float(np.linalg.norm(lms[0][33, :2] - lms[0][263, :2]))
    path = np.array([lm[STABLE, :2].mean(axis=0) for lm in lms]) / iod
    return path - gaussian_filter1d(path, 6, axis=0, mode="nearest")  # ~0.5 s at 12.5 Hz


def test_nodding_and_shaking_move_the_head_in_the_video(
        tmp_path: Path, astronaut_path: Path, speech_wav: Path) -> None:
    nod = render(tmp_path, astronaut_path, speech_wav, "nod", expression="nodding", seed=3)
    shake = render(tmp_path, astronaut_path, speech_wav, "shake", expression="shaking_head",
                   seed=3)
    pn, ps = head_path(frames_of(nod.output, 2)), head_path(frames_of(shake.output, 2))
    # Same seed, same natural motion: nodding moves the head up and down more than
    # shaking does, shaking moves it sideways more than nodding does. The nods follow the
    # speech's stresses, whose timing piper varies from one synthesis of the same text to
    # the next (up-down 0.018-0.025 over three, against the shake's 0.008-0.011): 1.5x.
    assert pn[:, 1].std() > 1.5 * ps[:, 1].std() and pn[:, 1].std() > 0.012
    assert ps[:, 0].std() > 3 * pn[:, 0].std() and ps[:, 0].std() > 0.025
    assert _crossings(pn[:, 1]) >= 4 and _crossings(ps[:, 0]) >= 4, "back and forth"


def test_prompt_zooms_the_camera_and_reports_unused_parts(
        tmp_path: Path, astronaut_path: Path, speech_wav: Path) -> None:
    result = render(tmp_path, astronaut_path, speech_wav, "zoom", size="256x256",
                    prompt="smiling and waving hand; slow zoom in")
    assert result.prompt_unused == ["waving hand"]
    assert any("zoom in" in a for a in result.prompt_actions)
    frames = frames_of(result.output)
    assert frames[0].shape == (256, 256, 3), "the canvas keeps its size"
    # five frames at each end: one frame's box moves with a blink or a turn of the head
    # (piper times the speech afresh each run, and the motion with it)
    with FaceAnalyzer() as fa:
        firsts = [fa.detect(f)[0] for f in frames[:5]]
        lasts = [fa.detect(f)[0] for f in frames[-5:]]
    ratio = np.median([b.w for b in lasts]) / np.median([b.w for b in firsts])
    assert ratio == pytest.approx(1.2, abs=0.06), "later frames show a larger face"
    # the zoom keeps the face in the picture, nearer the middle
    assert abs(lasts[-1].center[0] - 128) < abs(firsts[0].center[0] - 128) + 10


def test_unknown_expression_is_refused_before_any_work(tmp_path: Path,
                                                       astronaut_path: Path) -> None:
    out = tmp_path / "never.mp4"
    started = time.perf_counter()
    with pytest.raises(InputError) as err:
        render_talking_photo(TalkingPhotoSpec(photo=astronaut_path, text="Hello.", output=out,
                                              expression="grumpy"))
    assert err.value.code == "unknown_expression" and "amazed" in err.value.message
    assert time.perf_counter() - started < 1.0 and not out.exists()


def test_previews_render_once(tmp_path: Path) -> None:
    from facecast.pipeline.expression_previews import render_expression_previews

    videos = render_expression_previews(tmp_path, ["nodding"])
    assert videos == [tmp_path / "nodding.mp4"]
    thumb = tmp_path / "nodding.jpg"
    assert thumb.read_bytes()[:2] == b"\xff\xd8"
    with av.open(str(videos[0])) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (256, 256)
        assert 2.0 < c.duration / 1e6 < 5.0
    stamp = videos[0].stat().st_mtime_ns, thumb.stat().st_mtime_ns
    assert render_expression_previews(tmp_path, ["nodding"]) == videos
    assert (videos[0].stat().st_mtime_ns, thumb.stat().st_mtime_ns) == stamp, "kept, not redone"


# ---- command line ----------------------------------------------------------------------------


def facecast(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facecast.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_lists_the_catalogue() -> None:
    proc = facecast("expressions", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert [t["key"] for t in listed] == [t.key for t in TEMPLATES]
    assert listed[2]["name_zh"] == "惊讶" and "brow_raise" in listed[2]["controls"]


def test_cli_render_with_expression_and_prompt(tmp_path: Path, astronaut_path: Path,
                                               speech_wav: Path) -> None:
    out = tmp_path / "cli.mp4"
    proc = facecast("render", "--photo", str(astronaut_path), "--audio", str(speech_wav),
                    "-o", str(out), "--size", "256x256", "--expression", "happy",
                    "--prompt", "nodding and waving hand", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "expression happy" in proc.stdout and "nod" in proc.stdout
    assert "warning: prompt parts not used: 'waving hand'" in proc.stderr
    assert out.stat().st_size > 10_000
