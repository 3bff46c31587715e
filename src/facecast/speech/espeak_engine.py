"""Many-language text-to-speech with espeak-ng, returning audio plus exact phoneme and word timings.

espeak-ng is driven in-process through ctypes on the ``libespeak-ng.so`` that
the ``espeakng-loader`` package bundles (with its ``espeak-ng-data``), so no
system package and no network is needed. The library runs in
``AUDIO_OUTPUT_SYNCHRONOUS`` mode with phoneme events and IPA phoneme names:
``espeak_Synth`` returns only when the whole text is spoken, and a callback
receives the 16-bit samples together with timed events (word, phoneme, end).

Timings come from the events' ``sample`` field (an absolute sample index that
restarts at 0 on every ``espeak_Synth`` call), so they are sample-exact:

- every phoneme ends where the next one starts and the last one ends at the end
  of the audio; time before the first phoneme, and espeak's own pauses (events
  with an empty name), become ``"_"`` entries, so the durations add up exactly to
  the audio's length;
- a word spans its own phonemes (from the start of its first to the end of its
  last, pauses excluded), and its text is sliced from the input. espeak reports
  ``text_position`` as a 1-based index in *characters* (code points) of the
  input, but its ``length`` is unreliable ("it's" -> 2, "你好" -> 1) and one input
  word may give several events ("1984", "$12.50"), so a word is the whitespace
  token that its events fall in; inside tokens of scripts written without spaces
  (Chinese, Japanese, Thai...) each event starts a word of its own.

Phoneme names are espeak's IPA, up to 8 UTF-8 bytes each, with stress marks
attached to the vowel (``"ˈoʊ"``, ``"ˈɪɹ"``, ``"tɕh"``); see
:mod:`facecast.motion.visemes` (``strip_ipa``) for the plain symbol. Mandarin
tones are not in the names. Language-switch markers (``"(en)"``, emitted when a
voice reads foreign script, e.g. the Japanese voice reading kanji as "Chinese
letter" in English) carry no sound and are dropped.

Parameter mapping (espeak's own parameters, no post-processing):

- ``rate`` x: ``espeakRATE = round(175 * x)`` words per minute (175 is espeak's
  default), x in 0.5..2.0.
- ``pitch`` s semitones: ``espeakPITCH = clip(round(50 + 5 * s), 0, 100)`` and
  ``espeakRANGE = round(50 * 2 ** ((PITCH - 50) / 50))``. espeak scales the
  voice's base pitch by ``2 ** ((PITCH - 50) / 50)`` (one octave over 50 units),
  but leaves the intonation range alone, so the range is scaled along; measured
  on the median F0 of en-US, de, fr, cmn and en-US+f3 this moves about 0.19-0.2
  semitone per unit, hence 5 units per semitone: accurate to about 0.3 semitone
  within +-8, and it saturates beyond about +-10 (+12 gives about +10, -12
  about -9 semitones) because espeak clamps the parameter to 0..100.
- ``volume`` v: ``espeakVOLUME = round(100 * v)`` (100 = espeak's default
  level), v in 0..2; above 1 espeak's limiter keeps peaks in range.

espeak-ng is one global, non-thread-safe C library: every call into it holds
one module lock, so concurrent callers are served one after another. The
library is loaded and initialised lazily on first use.
"""

from __future__ import annotations

import ctypes
import math
import re
import threading
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecast.errors import FacecastError, InputError
from facecast.media.audio import Audio
from facecast.rules import PITCH_RANGE, RATE_RANGE, VOLUME_RANGE
from facecast.speech.piper_tts import MAX_TEXT_CHARS, Speech
from facecast.timing import PhonemeTiming, WordTiming

DEFAULT_WPM = 175  # espeak's default speaking rate; rate=1.0
PITCH_UNITS_PER_SEMITONE = 5.0  # measured, see the module docstring
PAUSE = "_"  # phoneme label for silence (leading silence and espeak's pauses)

# speak_lib.h enums and flags.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_BUFFER_MS = 0  # 0: espeak's default (60 ms per callback)
_GENDERS = {1: "male", 2: "female"}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h): 40 bytes on 64-bit Linux."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character index into the input
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # sample index since the start of this espeak_Synth
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` (speak_lib.h)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        # (priority byte, NUL-terminated language)* then a 0 byte: read as raw memory.
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


# int callback(short *wav, int numsamples, espeak_EVENT *events); wav as void* so
# string_at can copy it without building a ctypes array.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclass(frozen=True)
class EspeakVoiceInfo:
    """One espeak-ng voice (a language or regional variety)."""

    identifier: str  # espeak's voice file id, e.g. "gmw/en-US", "gmw/de", "sit/cmn"
    name: str  # e.g. "English (America)"
    language: str  # primary language code (listed first by espeak), e.g. "en-us", "de", "cmn"
    languages: tuple[str, ...]  # every language code the voice is listed for
    gender: str | None  # "male" / "female" / None
    age: int  # 0 when unknown
    priorities: tuple[int, ...] = field(default=(), repr=False, compare=False)


@dataclass
class _Run:
    """What one espeak_Synth call delivered through the callback."""

    chunks: list[bytes] = field(default_factory=list)
    # (type, sample, text_position, payload): payload is the phoneme's bytes for
    # phoneme events, the reported length for word events.
    events: list[tuple[int, int, int, bytes | int]] = field(default_factory=list)
    error: BaseException | None = None


_LOCK = threading.RLock()
_lib: ctypes.CDLL | None = None
_data_dir: Path | None = None
_sample_rate: int | None = None
_voices: tuple[EspeakVoiceInfo, ...] | None = None
_variants: tuple[EspeakVoiceInfo, ...] | None = None
_active: _Run | None = None  # the run the callback appends to (set under _LOCK)

SAMPLE_RATE: int  # espeak_Initialize's answer (22050); read lazily via __getattr__


def __getattr__(name: str) -> int:
    # Module-level lazy attribute: importing this module must not load the library.
    if name == "SAMPLE_RATE":
        return _ensure_init()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _on_synth(wav: int | None, numsamples: int, events: ctypes.Array) -> int:
    """espeak's synth callback: copy samples and the events we use; 0 = go on."""
    run = _active
    if run is None:
        return 0
    try:
        if numsamples > 0 and wav:
            run.chunks.append(ctypes.string_at(wav, numsamples * 2))
        if events:
            i = 0
            while True:
                ev = events[i]
                kind = ev.type
                if kind == _EVENT_LIST_TERMINATED:
                    break
                if kind == _EVENT_PHONEME:
                    run.events.append((kind, ev.sample, ev.text_position, ev.id.string))
                elif kind == _EVENT_WORD:
                    run.events.append((kind, ev.sample, ev.text_position, ev.length))
                i += 1
    except BaseException as exc:  # never let an exception unwind through C
        run.error = exc
        return 1  # abort synthesis
    return 0


# Module-level so the C function pointer outlives every call (ctypes does not
# keep it alive for the library).
_CALLBACK = _SynthCallback(_on_synth)


def _ensure_init() -> tuple[ctypes.CDLL, int]:
    """Load and initialise libespeak-ng once; returns (library, sample rate)."""
    global _lib, _sample_rate, _data_dir
    with _LOCK:
        if _lib is not None and _sample_rate is not None:
            return _lib, _sample_rate
        try:
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = Path(espeakng_loader.get_data_path())
        except (ImportError, OSError, RuntimeError) as exc:
            raise FacecastError(f"espeak-ng is not available: {exc}",
                                code="engine_unavailable") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        # The path is the folder that CONTAINS espeak-ng-data (libespeak-ng also
        # accepts the data folder itself since 1.50, older builds do not).
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(data.parent).encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA,
        )
        if rate <= 0:
            raise FacecastError(f"espeak_Initialize failed ({rate}) with data in {data}",
                                code="engine_unavailable")
        lib.espeak_SetSynthCallback(_CALLBACK)
        _lib, _sample_rate, _data_dir = lib, int(rate), data
        return lib, _sample_rate


def _read_languages(address: int | None) -> list[tuple[int, str]]:
    """Decode espeak_VOICE.languages: (priority byte, NUL-terminated code)* then 0."""
    out: list[tuple[int, str]] = []
    if not address:
        return out
    while True:
        priority = ctypes.string_at(address, 1)[0]
        if priority == 0:
            return out
        code = ctypes.string_at(address + 1)
        out.append((priority, code.decode("utf-8", "replace")))
        address += len(code) + 2


def _list(lib: ctypes.CDLL, spec: _Voice | None) -> tuple[EspeakVoiceInfo, ...]:
    # The returned array is espeak's static storage, rewritten by the next call:
    # copy everything out before releasing the lock.
    array = lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    out: list[EspeakVoiceInfo] = []
    i = 0
    while array[i]:
        v = array[i].contents
        langs = _read_languages(v.languages)
        codes = tuple(code for _, code in langs)
        out.append(EspeakVoiceInfo(
            identifier=(v.identifier or b"").decode("utf-8", "replace"),
            name=(v.name or b"").decode("utf-8", "replace").strip(),
            language=codes[0] if codes else "",
            languages=codes,
            gender=_GENDERS.get(v.gender),
            age=int(v.age),
            priorities=tuple(p for p, _ in langs),
        ))
        i += 1
    return tuple(out)


def list_voices() -> list[EspeakVoiceInfo]:
    """Every usable espeak-ng voice (``espeak_ListVoices(NULL)``: one per language or variety).

    Voices whose pronunciation dictionary the bundled data lacks are left out
    (``espeakng-loader`` 0.2.4: Faroese ``gmq/fo``, Karakalpak ``trk/kaa`` and
    the test voice ``art/xex``): espeak would speak them as silence.
    """
    global _voices
    with _LOCK:
        if _voices is None:
            lib, _ = _ensure_init()
            _voices = tuple(v for v in _list(lib, None) if _has_dictionary(v))
        return list(_voices)


def _has_dictionary(voice: EspeakVoiceInfo) -> bool:
    """Whether ``<dictionary>_dict`` exists: the voice file's ``dictionary`` line, else
    the first language's base code (espeak's own rule when it loads a voice)."""
    if _data_dir is None:
        return True
    name = voice.language.split("-", 1)[0]
    try:
        for line in (_data_dir / "lang" / voice.identifier).read_text("utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "dictionary":
                name = parts[1]
                break
    except (OSError, UnicodeDecodeError):
        pass  # no readable voice file: judge by the language code alone
    return (_data_dir / f"{name}_dict").is_file()


def list_variants() -> list[EspeakVoiceInfo]:
    """espeak's voice variants (``f3``, ``m2``, ``Alicia``...), for ``"<voice>+<variant>"``.

    ``identifier`` is the part to put after ``+``; ``gender`` is the variant's.
    """
    global _variants
    with _LOCK:
        if _variants is None:
            lib, _ = _ensure_init()
            spec = _Voice()
            keep = ctypes.c_char_p(b"variant")
            spec.languages = ctypes.cast(keep, ctypes.c_void_p)
            found = _list(lib, spec)
            _variants = tuple(
                EspeakVoiceInfo(v.identifier.split("/", 1)[-1], v.name, "variant",
                                ("variant",), v.gender, v.age)
                for v in found
            )
        return list(_variants)


def _norm(code: str) -> str:
    return code.strip().replace("_", "-").lower()


def resolve_voice(voice: str) -> str:
    """espeak's identifier for a voice id, language code or name (``+variant`` kept).

    Tried in order: identifier (``gmw/en-US``, case-insensitive), language code
    (``en-us``, ``zh``: the voice listing it with the best priority), voice name
    (``English (America)`` or ``English_(America)``), file name (``en-US``), and
    last the base language of a regional code (``de-AT`` -> ``de``). An optional
    ``espeak:`` prefix is ignored. Raises ``InputError(code="unknown_voice")``.
    """
    raw = str(voice or "").strip()
    spec = raw.removeprefix("espeak:")
    base, _, variant = spec.partition("+")
    identifier = _find_voice(base)
    if identifier is None:
        raise InputError(f"unknown espeak-ng voice {raw!r}: use a language code such as "
                         "'en-us', 'de' or 'cmn', or an id from list_voices()",
                         code="unknown_voice", voice=raw)
    if variant:
        names = {v.identifier.lower(): v.identifier for v in list_variants()}
        if variant.lower() not in names:
            raise InputError(f"unknown espeak-ng voice variant {variant!r} in {raw!r}: "
                             "see list_variants()", code="unknown_voice", voice=raw)
        identifier = f"{identifier}+{names[variant.lower()]}"
    return identifier


def _find_voice(query: str) -> str | None:
    if not query:
        return None
    voices = list_voices()
    q = query.lower()
    lang = _norm(query)
    name = q.replace("_", " ")  # espeak --voices prints names with underscores
    for v in voices:
        if v.identifier.lower() == q:
            return v.identifier
    found = _by_language(voices, lang)
    if found is not None:
        return found
    for v in voices:
        if v.name.lower() == name or v.identifier.rsplit("/", 1)[-1].lower() == q:
            return v.identifier
    if "-" in lang:  # a region espeak lacks: the base language ("de-at" -> "de")
        return _by_language(voices, lang.split("-", 1)[0])
    return None


def _by_language(voices: list[EspeakVoiceInfo], code: str) -> str | None:
    """The voice listing ``code`` with espeak's best (lowest) priority, first on ties."""
    best: tuple[int, int] | None = None
    for index, v in enumerate(voices):
        for priority, listed in zip(v.priorities, v.languages, strict=False):
            if listed == code and (best is None or (priority, index) < best):
                best = (priority, index)
    return voices[best[1]].identifier if best is not None else None


def _check(name: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and lo <= x <= hi):
        raise InputError(f"{name} {value!r} is out of range: use {lo:g} to {hi:g}{unit}",
                         code=f"bad_{name}", **{name: str(value), "min": lo, "max": hi})
    return x


def espeak_parameters(rate: float, pitch: float, volume: float) -> dict[str, int]:
    """espeak's RATE / PITCH / RANGE / VOLUME values for facecast's rate, pitch, volume."""
    p = int(min(100, max(0, round(50 + PITCH_UNITS_PER_SEMITONE * pitch))))
    return {
        "rate": int(round(DEFAULT_WPM * rate)),
        "pitch": p,
        # espeak scales the base pitch but not the intonation range: scale it too,
        # or the median F0 moves far less than asked (see the module docstring).
        "range": int(min(100, round(50 * 2 ** ((p - 50) / 50)))),
        "volume": int(round(100 * volume)),
    }


def synthesize(
    text: str, voice: str, *, rate: float = 1.0, pitch: float = 0.0, volume: float = 1.0
) -> Speech:
    """Speak ``text`` with an espeak-ng voice; audio at :data:`SAMPLE_RATE` with timings.

    ``voice``: an identifier (``gmw/de``), a language code (``de``, ``en-us``,
    ``zh``) or a voice name, optionally ``+variant`` (``en-us+f3``). ``rate``
    0.5..2.0 (speed multiplier), ``pitch`` -12..+12 semitones, ``volume`` 0..2.
    Raises :class:`InputError` with code ``empty_text``, ``text_too_long``,
    ``unknown_voice``, ``bad_rate``, ``bad_pitch`` or ``bad_volume``.
    """
    global _active
    if not isinstance(text, str) or not text.strip():
        raise InputError("text is empty", code="empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text has {len(text)} characters, over the {MAX_TEXT_CHARS} limit",
                         code="text_too_long", max_chars=MAX_TEXT_CHARS)
    rate = _check("rate", rate, *RATE_RANGE)
    pitch = _check("pitch", pitch, *PITCH_RANGE, " semitones")
    volume = _check("volume", volume, *VOLUME_RANGE)
    identifier = resolve_voice(voice)
    params = espeak_parameters(rate, pitch, volume)
    # A NUL would end the C string early; espeak reads everything else as text
    # (no SSML, no [[phoneme]] input: those flags are not set).
    data = text.replace("\x00", " ").encode("utf-8")
    run = _Run()
    with _LOCK:
        lib, sample_rate = _ensure_init()
        if lib.espeak_SetVoiceByName(identifier.encode("utf-8")) != 0:
            raise InputError(f"espeak-ng could not load voice {identifier!r}",
                             code="unknown_voice", voice=str(voice))
        # Set every time: the values are global to the library and persist.
        lib.espeak_SetParameter(_RATE, params["rate"], 0)
        lib.espeak_SetParameter(_PITCH, params["pitch"], 0)
        lib.espeak_SetParameter(_RANGE, params["range"], 0)
        lib.espeak_SetParameter(_VOLUME, params["volume"], 0)
        _active = run
        try:
            status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                      None, None)
            lib.espeak_Synchronize()
        finally:
            _active = None
    if run.error is not None:
        raise FacecastError(f"espeak-ng callback failed: {run.error}",
                            code="tts_failed") from run.error
    if status != 0:
        raise FacecastError(f"espeak_Synth failed with status {status}", code="tts_failed")
    pcm = np.frombuffer(b"".join(run.chunks), dtype=np.int16)
    if not len(pcm):
        raise InputError("the text produced no speech", code="empty_text")
    samples = pcm.astype(np.float32) / 32768.0
    phonemes, words = _timings(run.events, text, len(pcm), sample_rate)
    return Speech(Audio(samples, sample_rate), phonemes, words, identifier, text)


# --- timings -------------------------------------------------------------------------


def _timings(
    events: list[tuple[int, int, int, bytes | int]], text: str, total: int, sample_rate: int
) -> tuple[list[PhonemeTiming], list[WordTiming]]:
    """Phoneme and word timings (seconds) from the event stream of one espeak_Synth."""
    groups = _word_groups(events, text)
    # Raw phoneme boundaries in stream order: (start sample, label, word group or -1).
    raw: list[tuple[int, str, int]] = []
    group = -1
    word_index = 0
    last = 0
    for kind, sample, _pos, payload in events:
        if kind == _EVENT_WORD:
            group = groups.event_group[word_index]
            word_index += 1
            continue
        name = payload.decode("utf-8", "ignore") if isinstance(payload, bytes) else ""
        if name.startswith("(") and name.endswith(")"):
            continue  # a language switch marker ("(en)"), not a sound: no time of its own
        # Clamp: starts never go back and never pass the end of the audio.
        last = min(total, max(last, sample))
        raw.append((last, name or PAUSE, group if name else -1))
    if not raw or raw[0][0] > 0:
        raw.insert(0, (0, PAUSE, -1))

    phonemes: list[PhonemeTiming] = []
    spans: dict[int, list[int]] = {}
    for i, (start, label, g) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else total
        if end <= start:
            continue
        if g >= 0:
            span = spans.setdefault(g, [start, end])
            span[1] = end
        if label == PAUSE and phonemes and phonemes[-1].phoneme == PAUSE:
            prev = phonemes.pop()  # one pause, not a run of them
            phonemes.append(PhonemeTiming(PAUSE, prev.start, end / sample_rate))
        else:
            phonemes.append(PhonemeTiming(label, start / sample_rate, end / sample_rate))

    words: list[WordTiming] = []
    prev_end = 0
    for g, word in enumerate(groups.texts):
        if g in spans:
            start, end = spans[g]
        else:  # a word espeak gave no phoneme of its own: zero length at its event
            start = end = min(total, max(prev_end, groups.samples[g]))
        start = max(start, prev_end)
        end = max(end, start)
        words.append(WordTiming(word, start / sample_rate, end / sample_rate))
        prev_end = end
    return phonemes, words


@dataclass
class _Groups:
    texts: list[str]  # one per word
    samples: list[int]  # the first word event's sample, per word
    event_group: list[int]  # word index of every word event, in stream order


_TOKEN = re.compile(r"\S+")


def _word_groups(events: list[tuple[int, int, int, bytes | int]], text: str) -> _Groups:
    """Group word events into the input's words and slice each word's text."""
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    token_starts = [s for s, _ in tokens]
    keys: list[tuple[int, int]] = []  # (token, segment start) per word
    out = _Groups([], [], [])
    for kind, sample, pos, _payload in events:
        if kind != _EVENT_WORD:
            continue
        key = _segment(text, tokens, token_starts, pos - 1)  # text_position is 1-based
        if keys and (key is None or key <= keys[-1]):
            out.event_group.append(len(keys) - 1)  # same word (or out of order): merge
            continue
        if key is None:  # before any token?? keep it as an empty word
            key = (-1, -1)
        keys.append(key)
        out.samples.append(sample)
        out.event_group.append(len(keys) - 1)
    for i, (tok, start) in enumerate(keys):
        if tok < 0:
            out.texts.append("")
            continue
        # Up to the next word's segment: tokens espeak spoke as part of this word
        # (multi-word dictionary entries) stay with it.
        end = keys[i + 1][1] if i + 1 < len(keys) else len(text)
        out.texts.append(_clean_word(text[start:end]))
    return out


def _segment(
    text: str, tokens: list[tuple[int, int]], token_starts: list[int], index: int
) -> tuple[int, int] | None:
    """(token number, segment start) of the word that starts at character ``index``."""
    if not tokens or index < 0:
        return None
    t = bisect_right(token_starts, index) - 1
    if t < 0 or index >= tokens[t][1]:  # in whitespace: the next token
        t += 1
        if t >= len(tokens):
            return None
        return t, tokens[t][0]
    start = tokens[t][0]
    # Scripts without spaces: each event inside the token begins its own word.
    if index > start and (_no_space_script(text[index]) or _no_space_script(text[index - 1])):
        return t, index
    return t, start


def _no_space_script(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x0E00 <= cp <= 0x0FFF  # Thai, Lao, Tibetan
        or 0x1000 <= cp <= 0x109F  # Myanmar
        or 0x1780 <= cp <= 0x17FF  # Khmer
        or 0x3000 <= cp <= 0x30FF  # CJK punctuation, Hiragana, Katakana
        or 0x3400 <= cp <= 0x4DBF  # CJK extension A
        or 0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= cp <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= cp <= 0xFFEF  # full-width forms (，。！)
        or 0x20000 <= cp <= 0x3FFFF  # CJK extensions B+
    )


def _clean_word(raw: str) -> str:
    """The word without surrounding punctuation or spaces ("world," -> "world")."""
    word = " ".join(raw.split())
    stripped = word
    while stripped and (unicodedata.category(stripped[0])[0] == "P" or stripped[0] == " "):
        stripped = stripped[1:]
    while stripped and (unicodedata.category(stripped[-1])[0] == "P" or stripped[-1] == " "):
        stripped = stripped[:-1]
    return stripped or word
