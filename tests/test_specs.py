"""The request specs check themselves, the same way for every door, and their rules
are written once (:mod:`facecast.rules`, :mod:`facecast.pipeline.specs`)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facecast import rules
from facecast.errors import InputError
from facecast.pipeline import specs
from facecast.pipeline.dub_video import DubVideoSpec, dub_video
from facecast.pipeline.specs import DubOptions, RenderOptions, TtsOptions
from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo
from facecast.pipeline.video_avatar import MAX_NAME

SRC = Path(specs.__file__).resolve().parents[1]  # src/facecast
RULES = SRC / "rules.py"

# (options, the code that refuses them): one code per rule
BAD_LOOKS = [
    ({"size": "huge"}, "bad_size"),
    ({"size": "9000x100"}, "bad_size"),
    ({"size": "640x360", "aspect": "16:9"}, "bad_size"),
    ({"aspect": "4:5"}, "bad_aspect"),
    ({"fps": rules.MIN_FPS - 1}, "bad_fps"),
    ({"fps": rules.MAX_FPS + 1}, "bad_fps"),
    ({"head_motion": -0.1}, "bad_head_motion"),
    ({"head_motion": rules.MAX_HEAD_MOTION + 0.1}, "bad_head_motion"),
    ({"prompt": "x" * (rules.MAX_PROMPT_CHARS + 1)}, "prompt_too_long"),
    ({"prompt": "smile\x00"}, "invalid_characters"),
    ({"expression": "no-such-template"}, "unknown_expression"),
]
GOOD_LOOKS = [
    {},
    {"size": "720p", "aspect": "9:16"},
    {"size": "640x360"},
    {"fps": rules.MIN_FPS},
    {"fps": rules.MAX_FPS},
    {"head_motion": 0.0},
    {"head_motion": rules.MAX_HEAD_MOTION},
    {"prompt": "x" * rules.MAX_PROMPT_CHARS},
    {"expression": "happy"},
]


def _code(check: Any) -> str:
    with pytest.raises(InputError) as err:
        check()
    return err.value.code


@pytest.mark.parametrize(("fields", "code"), [*BAD_LOOKS, ({"quality": "ultra"}, "bad_quality")])
def test_render_options_refuse_with_one_code_per_rule(fields: dict[str, Any], code: str) -> None:
    assert _code(RenderOptions(**fields).check) == code


@pytest.mark.parametrize("fields", [*GOOD_LOOKS, {"quality": "pro", "watermark": True}])
def test_render_options_accept_values_at_their_limits(fields: dict[str, Any]) -> None:
    RenderOptions(**fields).check()  # raises on a refusal


@pytest.mark.parametrize("aspect", list(rules.ASPECTS))
def test_every_listed_aspect_is_rendered(aspect: str) -> None:
    RenderOptions(size="720p", aspect=aspect).check()


@pytest.mark.parametrize(
    "fields",
    [{}, {"fps": 30, "aspect": "1:1", "prompt": "nod", "expression": "happy", "quality": "pro"}],
)
def test_render_options_round_trip_through_the_jobs_json(fields: dict[str, Any]) -> None:
    options = RenderOptions(**fields)
    stored = json.loads(json.dumps({**options.to_params(), "inputs": {"photo": 1}}))
    assert RenderOptions.from_params(stored) == options


def test_a_stored_job_without_options_takes_the_specs_defaults() -> None:
    options = RenderOptions.from_params({"inputs": {}, "text": "hi"})
    assert options == RenderOptions()
    assert options.fps == rules.DEFAULT_FPS and options.size == rules.DEFAULT_SIZE
    kwargs = options.engine_kwargs()
    assert kwargs["fps"] == rules.DEFAULT_FPS and kwargs["crf"] == specs.QUALITY["std"]["crf"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "bad_request"),  # neither audio nor text
        ({"audio": "speech.wav", "text": "hello"}, "bad_request"),
        *(({"text": "hello", **look}, code) for look, code in BAD_LOOKS),
    ],
)
def test_talking_photo_spec_refuses(fields: dict[str, Any], code: str, tmp_path: Path) -> None:
    spec = TalkingPhotoSpec(photo=tmp_path / "p.png", output=tmp_path / "o.mp4", **fields)
    assert _code(spec.check) == code


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "bad_request"),
        ({"text": "hello", "fps": 0}, "bad_fps"),
        ({"text": "hello", "aspect": "4:5"}, "bad_aspect"),
        ({"text": "hello", "prompt": "x" * (rules.MAX_PROMPT_CHARS + 1)}, "prompt_too_long"),
    ],
)
def test_python_callers_are_refused_before_any_work(
    fields: dict[str, Any],
    code: str,
    tmp_path: Path,
    astronaut_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import facecast.pipeline.talking_photo as tp

    def no_work(*_a: Any, **_k: Any) -> None:
        raise AssertionError("work started before the spec was checked")

    monkeypatch.setattr(tp, "load_image", no_work)
    monkeypatch.setattr(tp, "check_face", no_work)
    stages: list[str] = []
    out = tmp_path / "o.mp4"
    spec = TalkingPhotoSpec(photo=astronaut_path, output=out, **fields)
    assert _code(lambda: render_talking_photo(spec, lambda _f, s: stages.append(s))) == code
    assert stages == [] and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "bad_request"),
        ({"audio": "a.wav", "text": "hello"}, "bad_request"),
        ({"text": "hello", "face_index": -1}, "bad_request"),
    ],
)
def test_dub_spec_refuses_before_reading_the_video(
    fields: dict[str, Any], code: str, tmp_path: Path
) -> None:
    # the video does not exist: reading it first would fail with another code
    spec = DubVideoSpec(video=tmp_path / "missing.mp4", output=tmp_path / "o.mp4", **fields)
    assert _code(spec.check) == code
    assert _code(lambda: dub_video(spec)) == code


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"rate": rules.RATE_RANGE[1] + 0.1}, "bad_rate"),
        ({"pitch": rules.PITCH_RANGE[0] - 1}, "bad_pitch"),
        ({"volume": rules.VOLUME_RANGE[1] + 0.1}, "bad_volume"),
        ({"format": "ogg"}, "bad_format"),
    ],
)
def test_tts_options_refuse_with_one_code_per_rule(fields: dict[str, Any], code: str) -> None:
    assert _code(TtsOptions(**fields).check) == code


@pytest.mark.parametrize(
    ("options", "code"),
    [(DubOptions(face_index=-1), "bad_request"), (DubOptions(quality="ultra"), "bad_quality")],
)
def test_dub_options_refuse_with_one_code_per_rule(options: DubOptions, code: str) -> None:
    assert _code(options.check) == code


def test_dub_options_round_trip_and_default_old_jobs() -> None:
    options = DubOptions(face_index=2, quality="pro")
    options.check()
    assert DubOptions.from_params(json.loads(json.dumps(options.to_params()))) == options
    assert DubOptions.from_params({"inputs": {"video": 3}}) == DubOptions()


def test_tts_options_round_trip_and_default_old_jobs() -> None:
    options = TtsOptions(rate=rules.RATE_RANGE[0], format="wav")
    options.check()
    assert TtsOptions.from_params(json.loads(json.dumps(options.to_params()))) == options
    assert TtsOptions.from_params({"text": "hi"}) == TtsOptions()


def test_clean_spec_refuses_to_overwrite_its_input_before_reading_it(tmp_path: Path) -> None:
    from facecast.pipeline.clean_video import CleanVideoSpec, clean_video

    video = tmp_path / "missing.mp4"  # reading it first would fail with another code
    spec = CleanVideoSpec(video=video, output=video)
    assert _code(spec.check) == "bad_request"
    assert _code(lambda: clean_video(spec)) == "bad_request"


@pytest.mark.parametrize(
    "fields",
    [{"name": " "}, {"name": "x" * (MAX_NAME + 1)}, {"face_index": -1}, {"max_height": 63}],
)
def test_video_avatar_spec_refuses_before_touching_files(
    fields: dict[str, Any], tmp_path: Path
) -> None:
    from facecast.pipeline.video_avatar import VideoAvatarSpec, create_video_avatar

    spec = VideoAvatarSpec(
        **{"video": tmp_path / "missing.mp4", "folder": tmp_path / "pkg", "name": "Ann", **fields}
    )
    assert _code(spec.check) == "bad_request"
    assert _code(lambda: create_video_avatar(spec)) == "bad_request"
    assert not (tmp_path / "pkg").exists()


# ---- the doors translate, the rules live once -------------------------------------------


def test_native_wire_offers_what_the_renderer_takes() -> None:
    from facecast.api.native import wire as schemas

    schema = schemas.TalkingPhotoCreate.model_json_schema()["properties"]
    enums = [s.get("enum") for s in schema["aspect"]["anyOf"] if "enum" in s]
    assert enums == [list(rules.ASPECTS)]
    assert schema["fps"]["default"] == rules.DEFAULT_FPS
    assert (schema["fps"]["minimum"], schema["fps"]["maximum"]) == (rules.MIN_FPS, rules.MAX_FPS)
    prompt = [s for s in schema["prompt"]["anyOf"] if s.get("type") == "string"]
    assert prompt[0]["maxLength"] == rules.MAX_PROMPT_CHARS


def test_native_composition_limits_are_the_renderers() -> None:
    from facecast.api.native import wire as schemas
    from facecast.render.compose import Composition

    schema = schemas.CompositionIn.model_json_schema()["properties"]
    assert (schema["scale"]["minimum"], schema["scale"]["maximum"]) == (
        rules.MIN_SCALE,
        rules.MAX_SCALE,
    )
    assert schema["corner_radius"]["maximum"] == rules.MAX_CORNER_RADIUS
    assert schema["layers"]["maxItems"] == rules.MAX_LAYERS
    Composition(scale=rules.MAX_SCALE, corner_radius=rules.MAX_CORNER_RADIUS)  # accepted
    with pytest.raises(InputError):
        Composition(scale=rules.MAX_SCALE * 1.01)


def test_cli_render_options_come_from_the_rules() -> None:
    from facecast.cli import render

    params = {p.name: p for p in render.params}
    assert list(params["aspect"].type.choices) == list(rules.ASPECTS)
    assert params["fps"].default == rules.DEFAULT_FPS
    assert (params["fps"].type.min, params["fps"].type.max) == (rules.MIN_FPS, rules.MAX_FPS)
    assert params["size"].default == rules.DEFAULT_SIZE
    assert (params["scale"].type.min, params["scale"].type.max) == (
        rules.MIN_SCALE,
        rules.MAX_SCALE,
    )
    assert params["corner_radius"].type.max == rules.MAX_CORNER_RADIUS


class _Stop(Exception):
    """Raised by a stand-in pipeline once it has seen what the runner built."""


def _context(tmp_path: Path, params: dict[str, Any], inputs: dict[str, Path]) -> Any:
    from facecast.service.runners import RunContext
    from facecast.service.settings import Settings

    return RunContext(
        job_id=1,
        account_id=1,
        params=params,
        inputs=inputs,
        workdir=tmp_path,
        progress=lambda _f, _s: None,
        settings=Settings(home=tmp_path),
    )


@pytest.mark.parametrize(
    "options", [RenderOptions(), RenderOptions(fps=30, quality="pro", aspect="1:1", seed=7),
                RenderOptions(captions="vtt", burn_captions=True, caption_position="top")]
)
def test_the_runner_reads_the_stored_options_back(
    options: RenderOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facecast.pipeline.talking_photo as tp
    from facecast.service.runners import run_talking_photo

    seen: list[TalkingPhotoSpec] = []

    def render(spec: TalkingPhotoSpec, _progress: Any = None) -> None:
        seen.append(spec)
        raise _Stop

    monkeypatch.setattr(tp, "render_talking_photo", render)
    # an older job kept only what differed from the defaults: the spec fills the rest
    stored = {k: v for k, v in options.to_params().items() if v != getattr(RenderOptions(), k)}
    ctx = _context(tmp_path, {**stored, "text": "hi", "inputs": {}}, {"photo": tmp_path / "p"})
    with pytest.raises(_Stop):
        run_talking_photo(ctx)
    spec = seen[0]
    for name, value in options.engine_kwargs().items():
        assert getattr(spec, name) == value, name
    spec.check()


def test_the_tts_runner_reads_the_stored_options_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facecast.speech as speech
    from facecast.service.runners import run_tts

    seen: list[dict[str, Any]] = []

    def synthesize(_text: str, _voice: str | None, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise _Stop

    monkeypatch.setattr(speech, "synthesize", synthesize)
    with pytest.raises(_Stop):
        run_tts(_context(tmp_path, {"text": "hi", "pitch": 2.0}, {}))
    defaults = TtsOptions()
    assert seen == [{"rate": defaults.rate, "pitch": 2.0, "volume": defaults.volume}]


@pytest.mark.parametrize(
    ("args", "code"),
    [(["-o", "speech.ogg"], "bad_format"), (["--rate", "5", "-o", "speech.wav"], "bad_rate")],
)
def test_the_tts_command_checks_the_spec_before_speaking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: str
) -> None:
    from click.testing import CliRunner

    import facecast.speech as speech
    from facecast.cli import main

    def synthesize(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("synthesised before the request was checked")

    monkeypatch.setattr(speech, "synthesize", synthesize)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["tts", "--text", "Hello.", *args])
    assert result.exit_code == 2, result.output
    assert f"[{code}]" in result.output
    assert not list(tmp_path.iterdir()), "nothing is written"


def _too_many_layers_in_the_renderer() -> None:
    from facecast.render.composition import Composition, ImageLayer

    layer = ImageLayer("#ff0000", x=0, y=0, width=8, height=8)
    Composition(layers=(layer,) * (rules.MAX_LAYERS + 1))


def _too_many_layers_in_the_service() -> None:
    from facecast.service.composition import CompositionSpec, LayerSpec, ingest

    layer = LayerSpec(color="#ff0000", width=8, height=8)
    ingest(None, 0, CompositionSpec(layers=(layer,) * (rules.MAX_LAYERS + 1)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "door", [_too_many_layers_in_the_renderer, _too_many_layers_in_the_service]
)
def test_too_many_layers_is_one_rule_with_one_code(door: Any) -> None:
    with pytest.raises(InputError) as err:
        door()
    assert err.value.code == "bad_layer"
    assert str(rules.MAX_LAYERS) in str(err.value)


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _typed_again(tree: ast.Module, number: float | None, words: str | None) -> list[int]:
    """Lines of ``tree`` that write ``number`` as a number, or ``words`` in a string."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant):
            continue
        value = node.value
        if (number is not None and type(value) is type(number) and value == number) or (
            words is not None and isinstance(value, str) and re.search(words, value)
        ):
            lines.append(node.lineno)
    return lines


def test_the_modules_are_scanned() -> None:
    paths = {p.relative_to(SRC).as_posix() for p, _ in _modules()}
    assert {
        "rules.py",
        "cli/render.py",
        "api/native/wire.py",
        "service/core.py",
        "pipeline/talking_photo.py",
    } <= paths
    # the scan sees the owner's own literals
    assert _typed_again(ast.parse(RULES.read_text()), rules.MAX_PROMPT_CHARS, None)
    assert _typed_again(ast.parse(RULES.read_text()), rules.MAX_AUDIO_S, None)


def test_the_prompt_limit_is_written_once() -> None:
    found = {
        p.relative_to(SRC).as_posix(): lines
        for p, tree in _modules()
        if p != RULES
        and (
            lines := _typed_again(tree, rules.MAX_PROMPT_CHARS, rf"\b{rules.MAX_PROMPT_CHARS} char")
        )
    }
    assert found == {}


def test_the_audio_length_is_written_once() -> None:
    """A 600 s video limit or lag window may exist; the audio rule is not written again:
    no number beside an audio name, no "1 to 600 s" in help or descriptions."""
    top, low = rules.MAX_AUDIO_S, rules.MIN_AUDIO_S
    words = rf"\b{low:g} (to|and) {top:g} s"
    found: dict[str, list[int]] = {}
    for path, tree in _modules():
        if path == RULES:
            continue
        lines = _typed_again(tree, None, words)
        for node in ast.walk(tree):
            # MAX_AUDIO_S = 600.0, or a comparison of a number with the audio limit's value
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and node.value.value in (low, top)
                and any(isinstance(t, ast.Name) and "AUDIO" in t.id for t in node.targets)
            ):
                lines.append(node.lineno)
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value == top
                for c in [node.left, *node.comparators]
            ):
                lines.append(node.lineno)
        if lines:
            found[path.relative_to(SRC).as_posix()] = lines
    assert found == {}


def test_the_fps_default_is_written_once() -> None:
    """No request shape, door or runner gives fps a default of its own."""
    found: dict[str, list[int]] = {}
    for path, tree in _modules():
        rel = path.relative_to(SRC)
        if rel.parts[0] not in ("api", "service", "pipeline") and not rel.name.startswith("cli"):
            continue
        lines = []
        for node in ast.walk(tree):
            default = None
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                default = node.value if node.target.id == "fps" else None
            elif isinstance(node, ast.keyword):
                default = node.value if node.arg == "fps" else None
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "fps"
            ):
                default = node.args[1]
            elif isinstance(node, ast.arguments):  # def f(..., fps=25)
                named = (
                    [*node.posonlyargs, *node.args][-len(node.defaults) :] if node.defaults else []
                )
                pairs = [
                    *zip(named, node.defaults, strict=True),
                    *zip(node.kwonlyargs, node.kw_defaults, strict=True),
                ]
                default = next((d for a, d in pairs if a.arg == "fps"), None)
            if isinstance(default, ast.Constant) and default.value == rules.DEFAULT_FPS:
                lines.append(node.lineno)
        if lines:
            found[rel.as_posix()] = lines
    assert found == {}
