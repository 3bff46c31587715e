"""Free-text prompts -> expression controls, phases and camera moves.

``parse_prompt("while talking, excitedly shaking head, then smiling; slow zoom in")``
reads the text with a small lexicon (English, and Chinese keywords for the
common expressions): the text is cut into clauses at punctuation and at
connectors ("and", "then", "after that", ...); each clause is matched against
actions (smile, frown, raise brows, furrow brows, wide eyes, squint, nod, shake
head, tilt head, keep the head still), moods that name a template (happy,
amazed, serious, thinking, excited, calm, sad, angry), camera moves (zoom /
push in, zoom / pull out) and modifiers:

- intensity: "slightly", "a little" (x0.5) / "very", "excitedly", "big" (x1.5);
- speed: "slowly", "gently" / "quickly", "excitedly";
- when: "while talking" (speech only), "during pauses" (pauses only);
- time: "then", "after that" start the next part of the video; "at first",
  "at the end", "finally" put a clause at the start or end; a camera move without
  its own time marker spans the whole video;
- negation: "without smiling", "no nodding" turn that control off.

Whatever it cannot use (a clause with no known action, or the words of a clause
left over after its actions) is returned in :attr:`PromptPlan.unused` as exact
substrings of the prompt, so callers can tell the user rather than drop it.
No model, no download: a rule parser is predictable and fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facecast.errors import InputError
from facecast.motion.expressions import (
    MAX_NOD,
    MAX_RATE,
    MAX_SHAKE,
    MAX_TILT,
    Camera,
    Controls,
    ExpressionPlan,
    Gesture,
    Level,
    Phase,
    get_template,
)
from facecast.rules import MAX_PROMPT_CHARS

ZOOM_AMOUNT = 0.2  # a plain "zoom in" ends 20 % closer
_DET = r"(?:the\s+|her\s+|his\s+|their\s+|its\s+|one's\s+|both\s+|my\s+|your\s+)?"

Changes = dict[str, Any]


@dataclass
class _Clause:
    start: int  # span in the prompt
    end: int
    connector: str  # "then", "and", "" ...


@dataclass
class _Mods:
    intensity: float = 1.0
    rate: float = 1.0
    during: str | None = None  # "speech" / "pause" / None (both)
    negated: bool = False
    slow: bool = False
    fast: bool = False


# ---- lexicon ---------------------------------------------------------------------------------


def _lvl(value: float, pause: float | None = None) -> Callable[[_Mods], Level]:
    def make(m: _Mods) -> Level:
        v = 0.0 if m.negated else value * m.intensity
        p = 0.0 if m.negated else (value if pause is None else pause) * m.intensity
        v, p = max(min(v, 1.0), -1.0), max(min(p, 1.0), -1.0)
        if m.during == "speech":
            return Level(v, None)
        if m.during == "pause":
            return Level(None, p)
        return Level(v, p)
    return make


def _gesture(amplitude: float, rate: float, limit: float) -> Callable[[_Mods], Gesture]:
    def make(m: _Mods) -> Gesture:
        if m.negated:
            return Gesture()
        return Gesture(min(amplitude * m.intensity, limit), min(rate * m.rate, MAX_RATE),
                       m.during or "always")  # type: ignore[arg-type]
    return make


def _action(**parts: Callable[[_Mods], Any] | float) -> Callable[[_Mods, re.Match[str]], Changes]:
    def make(m: _Mods, _match: re.Match[str]) -> Changes:
        return {k: (v(m) if callable(v) else v) for k, v in parts.items()}
    return make


def _tilt(m: _Mods, match: re.Match[str]) -> Changes:
    # Roll + is clockwise in the image: the head's top goes right. "to the left" means
    # the picture's left.
    side = -1.0 if re.search(r"left|左", match.group(0), re.I) else 1.0
    return {"tilt": 0.0 if m.negated else float(min(3.0 * m.intensity, MAX_TILT) * side)}


def _mood(key: str) -> Callable[[_Mods, re.Match[str]], Changes]:
    def make(m: _Mods, _match: re.Match[str]) -> Changes:
        if m.negated:
            return {}
        out: Changes = {}
        for name, value in get_template(key).controls.changes().items():
            if isinstance(value, Level):
                lv = value.scaled(m.intensity)
                out[name] = Level(lv.speech, None) if m.during == "speech" else \
                    Level(None, lv.pause) if m.during == "pause" else lv
            elif isinstance(value, Gesture):
                out[name] = Gesture(value.amplitude * m.intensity,
                                    min(value.rate * m.rate, MAX_RATE), value.during)
            elif name in ("brow_flash", "tilt"):
                out[name] = value * m.intensity
            else:
                out[name] = value
        return out
    return make


def _w(pattern: str) -> str:
    """An English pattern as whole words."""
    return rf"(?<![\w'])(?:{pattern})(?![\w'])"


# (name, pattern, builder). Order matters only for overlapping matches: earlier wins.
_ACTIONS: list[tuple[str, str, Callable[[_Mods, re.Match[str]], Changes]]] = [
    ("shake head", _w(rf"shak(?:e|es|ing)\s+{_DET}head(?:\s+no)?|head[- ]?shak(?:e|es|ing)")
     + r"|摇头", _action(shake=_gesture(0.07, 1.8, MAX_SHAKE))),
    ("nod", _w(rf"nod(?:s|ded|ding)?(?:\s+{_DET}head)?(?:\s+yes)?|bob(?:s|bing|bed)?\s+{_DET}head")
     + r"|点头", _action(nod=_gesture(0.09, 1.4, MAX_NOD))),
    ("tilt head", _w(rf"(?:(?:tilt(?:s|ed|ing)?|cock(?:s|ed|ing)?|lean(?:s|ed|ing)?)\s+{_DET}head"
                     r"|head\s+tilt(?:ed|s)?)(?:\s+(?:to\s+(?:the\s+)?)?(?:left|right))?")
     + r"|歪头|侧头", _tilt),
    ("still head", _w(rf"keep(?:s|ing)?\s+{_DET}head\s+still|head\s+(?:still|steady)|still\s+head"
                      r"|motionless|without\s+moving|stay(?:s|ing)?\s+still|no\s+head\s+"
                      r"(?:movement|motion)|not\s+moving")
     + r"|头不动|保持不动", _action(head_motion=0.2)),
    ("laugh", _w(r"laugh(?:s|ing|ed)?|chuckl(?:e|es|ed|ing)") + r"|大笑",
     _action(smile=_lvl(0.9), squint=_lvl(0.35), nod=_gesture(0.02, 2.5, MAX_NOD))),
    ("smile", _w(r"smil(?:e|es|ed|ing)|grin(?:s|ning|ned)?|beam(?:s|ing)?") + r"|微笑|笑",
     _action(smile=_lvl(0.6, 0.75), squint=_lvl(0.15))),
    ("raise brows", _w(rf"(?:rais(?:e|es|ed|ing)|lift(?:s|ed|ing)?)\s+{_DET}(?:eye)?brows?"
                       r"|(?:eye)?brows?\s+(?:raised|up|lifted)|raised\s+(?:eye)?brows?"
                       r"|eyebrow\s+flash(?:es)?")
     + r"|挑眉|扬眉", _action(brow_raise=_lvl(0.8))),
    ("furrow brows", _w(rf"(?:furrow(?:s|ed|ing)?|knit(?:s|ted|ting)?|lower(?:s|ed|ing)?|"
                        rf"draw(?:s|ing)?\s+together)\s+{_DET}(?:eye)?brows?"
                        r"|furrowed\s+(?:eye)?brows?|(?:eye)?brows?\s+(?:furrowed|knitted)")
     + r"|锁眉|皱起眉", _action(brow_furrow=_lvl(0.8))),
    ("frown", _w(r"frown(?:s|ed|ing)?|scowl(?:s|ed|ing)?") + r"|皱眉",
     _action(brow_furrow=_lvl(0.7), smile=_lvl(-0.2))),
    ("eyes wide", _w(rf"wide[- ]eyed|eyes\s+(?:wide(?:\s+open)?|widen(?:ed|ing)?)"
                     rf"|widen(?:s|ed|ing)?\s+{_DET}eyes|(?:open(?:s|ing)?\s+)?{_DET}eyes\s+wide")
     + r"|睁大眼睛|瞪大眼睛|瞪眼", _action(eyes_wide=_lvl(0.85))),
    ("squint", _w(rf"squint(?:s|ed|ing)?|narrow(?:s|ed|ing)?\s+{_DET}eyes") + r"|眯眼|眯起眼",
     _action(squint=_lvl(0.8))),
    ("lively", _w(r"animated|lively|expressive(?:ly)?"),
     _action(head_motion=1.5, brow_flash=0.4)),
    ("happy", _w(r"happy|happily|joyful(?:ly)?|cheerful(?:ly)?|delighted|glad|pleased")
     + r"|开心|高兴|快乐|愉快", _mood("happy")),
    ("amazed", _w(r"amazed|amazement|surprised|surprise|astonished|shocked|stunned|in\s+awe"
                  r"|awestruck|wow(?:ed)?") + r"|惊讶|吃惊|震惊|惊奇", _mood("amazed")),
    ("serious", _w(r"serious(?:ly)?|stern(?:ly)?|solemn(?:ly)?|grave(?:ly)?|earnest(?:ly)?")
     + r"|严肃|认真", _mood("serious")),
    ("thinking", _w(r"think(?:s|ing)?|thoughtful(?:ly)?|ponder(?:s|ing)?|pensive(?:ly)?"
                    r"|contemplat(?:e|es|ing|ive)|wonder(?:s|ing)?|considering")
     + r"|思考|沉思", _mood("thinking")),
    ("excited", _w(r"excited|enthusiastic|thrilled|eager") + r"|兴奋|激动", _mood("excited")),
    ("calm", _w(r"calm(?:ly)?|relaxed|peaceful(?:ly)?|serene(?:ly)?|composed")
     + r"|平静|冷静|放松", _mood("calm")),
    ("sad", _w(r"sad(?:ly)?|unhappy|upset|sorrowful(?:ly)?|melanchol(?:y|ic)|gloomy|depressed")
     + r"|难过|伤心|悲伤", _mood("sad")),
    ("angry", _w(r"angry|angrily|annoyed|furious(?:ly)?|irritated|mad") + r"|生气|愤怒",
     _mood("angry")),
]
_ACTION_RES = [(name, re.compile(p, re.I), build) for name, p, build in _ACTIONS]
_MOODS = {"happy", "amazed", "serious", "thinking", "excited", "calm", "sad", "angry"}

_ZOOM_IN = re.compile(_w(r"zoom(?:s|ed|ing)?\s+in(?:wards?)?|push(?:es|ed|ing)?\s+in"
                         r"|dolly(?:ing)?\s+in|mov(?:e|es|ing)\s+(?:in\s+)?closer"
                         r"|closer\s+and\s+closer|punch(?:es|ing)?\s+in")
                      + r"|推近|拉近|推进|放大", re.I)
_ZOOM_OUT = re.compile(_w(r"zoom(?:s|ed|ing)?\s+out|pull(?:s|ed|ing)?\s+(?:out|back)"
                          r"|dolly(?:ing)?\s+out|mov(?:e|es|ing)\s+(?:away|back)")
                       + r"|拉远|缩小", re.I)
_CONTEXT = re.compile(_w(r"talk(?:s|ing)?|speak(?:s|ing)?|say(?:s|ing)?|present(?:s|ing)?"
                         r"|explain(?:s|ing)?|introduc(?:e|es|ing)|tell(?:s|ing)?"
                         r"|narrat(?:e|es|ing)|speech")
                      + r"|说话|讲话|介绍|讲解", re.I)
_GATE_SPEECH = re.compile(_w(r"(?:while|when|as)\s+(?:she\s+|he\s+|they\s+|i\s+|it\s+)?"
                             r"(?:is\s+|are\s+|am\s+)?(?:talk|speak|say|explain|present)\w*"
                             r"|during\s+(?:the\s+)?speech")
                          + r"|说话时|讲话时|边说|一边说", re.I)
_GATE_PAUSE = re.compile(_w(r"(?:during|in|between)\s+(?:the\s+)?(?:pauses?|silences?|breaks?)"
                            r"|when\s+(?:pausing|silent|quiet)|while\s+(?:listening|pausing|silent)"
                            r"|between\s+(?:the\s+)?sentences")
                         + r"|停顿时|停顿", re.I)
_STRONG = re.compile(_w(r"very|really|excitedly|energetic(?:ally)?|vigorous(?:ly)?|strong(?:ly)?"
                        r"|big|broad(?:ly)?|widely|a\s+lot|lots|intense(?:ly)?"
                        r"|enthusiastic(?:ally)?|dramatic(?:ally)?|exaggerated|hard|wildly")
                     + r"|非常|很|使劲|用力", re.I)
_WEAK = re.compile(_w(r"slight(?:ly)?|a\s+little|a\s+bit|subtle|subtly|gentle|gently|soft(?:ly)?"
                      r"|small|faint(?:ly)?|mild(?:ly)?|barely")
                   + r"|微微|轻轻|稍微|略微|略", re.I)
_FAST = re.compile(_w(r"quick(?:ly)?|fast|rapid(?:ly)?|excitedly|energetic(?:ally)?|sudden(?:ly)?")
                   + r"|快速|迅速", re.I)
_SLOW = re.compile(_w(r"slow(?:ly)?|gradual(?:ly)?|leisurely|gently|calmly|steadily")
                   + r"|缓慢|慢慢|缓缓", re.I)
_NEGATION = re.compile(_w(r"no|not|without|never|don't|doesn't|do\s+not|does\s+not|stop(?:s|ping)?"
                          r"|avoid(?:s|ing)?") + r"|不要|别|不", re.I)
_END = re.compile(_w(r"at\s+the\s+end|in\s+the\s+end|towards?\s+the\s+end|by\s+the\s+end"
                     r"|near\s+the\s+end|finally|at\s+last|lastly|to\s+finish")
                  + r"|最后|结尾", re.I)
_START = re.compile(_w(r"at\s+first|first(?:ly)?|at\s+the\s+(?:start|beginning)"
                       r"|in\s+the\s+beginning|initially|to\s+begin(?:\s+with)?|to\s+start")
                    + r"|一开始|开始时|起初|首先", re.I)
_WHOLE = re.compile(_w(r"throughout|the\s+whole\s+time|all\s+the\s+time|all\s+along|constantly"
                       r"|continuously|always|the\s+entire\s+time")
                    + r"|全程|一直|始终", re.I)
# Clause boundaries: punctuation, and connectors (kept apart: "then" starts a new part).
_SPLIT = re.compile(r"[.;!?\n。；！？,，、:：]+|" + _w(
    r"and\s+then|then|after\s+that|afterwards|after\s+this|later(?:\s+on)?|next|followed\s+by"
    r"|and|but|plus|as\s+well\s+as") + r"|然后|接着|随后|之后|并且|同时", re.I)
_THEN = re.compile(r"^(?:and\s+then|then|after\s+that|afterwards|after\s+this|later(?:\s+on)?"
                   r"|next|followed\s+by|然后|接着|随后|之后)$", re.I)
# Words that carry no request of their own: left over, they are not reported.
_STOPWORDS = frozenset({
    "a", "an", "the", "her", "his", "their", "its", "one's", "my", "your", "our", "this",
    "that", "these", "those", "it", "she", "he", "they", "i", "you", "we", "is", "are", "am",
    "be", "being", "been", "was", "were", "to", "of", "at", "in", "on", "with", "while", "when",
    "as", "and", "or", "so", "then", "also", "too", "just", "both", "some", "more", "much",
    "very", "really", "slightly", "little", "bit", "during", "whole", "time", "face", "head",
    "eyes", "eye", "camera", "shot", "lens", "video", "clip", "frame", "person", "avatar",
    "portrait", "woman", "man", "girl", "boy", "lady", "guy", "speaker", "presenter", "herself",
    "himself", "themselves", "appear", "appears", "appearing",
    "seem", "seems", "expression", "expressions", "emotion", "mood", "style", "way", "manner",
    "something", "occasionally", "sometimes", "now", "again", "still", "same", "keep", "keeps",
    "keeping", "make", "makes", "making", "do", "does", "slow", "slowly", "fast", "quickly",
    "gently", "softly"
})
# Words that join others and are trimmed off the ends of an unused part.
_FUNCTION = frozenset({
    "a", "an", "the", "her", "his", "their", "its", "my", "your", "our", "this", "that", "it",
    "she", "he", "they", "i", "you", "we", "is", "are", "am", "be", "to", "of", "at", "in",
    "on", "with", "while", "when", "as", "and", "or", "so", "then", "also", "too", "just",
    "very", "really"})
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass
class PromptPlan:
    """What a prompt asks for, as expression-plan pieces, and what it could not use."""

    text: str
    changes: Changes = field(default_factory=dict)  # for the whole video
    phases: list[Phase] = field(default_factory=list)  # for parts of it
    camera: Camera | None = None
    used: list[str] = field(default_factory=list)  # clauses understood (substrings)
    unused: list[str] = field(default_factory=list)  # parts not understood (substrings)
    actions: list[str] = field(default_factory=list)  # what was understood, in words

    def plan(self, base: Controls | None = None) -> ExpressionPlan:
        """The expression plan: ``base`` (a template's controls) changed by the prompt."""
        controls = (base or Controls()).merged(self.changes)
        return ExpressionPlan(controls, tuple(self.phases), self.camera)

    def is_empty(self) -> bool:
        return not self.changes and not self.phases and self.camera is None


def _clauses(text: str) -> list[_Clause]:
    """The prompt cut at punctuation and connectors; each clause keeps the connector
    before it ("then" wins over punctuation next to it: ", then smiling")."""
    out: list[_Clause] = []
    pos, connector = 0, ""
    for m in _SPLIT.finditer(text):
        if text[pos:m.start()].strip():
            out.append(_Clause(pos, m.start(), connector))
            connector = ""
        word = m.group(0).strip().lower()
        if _THEN.match(word) or not connector:
            connector = word
        pos = m.end()
    if text[pos:].strip():
        out.append(_Clause(pos, len(text), connector))
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Span without surrounding spaces and quotes."""
    strip = " \t\r\n\"'“”‘’()[]（）「」-—–"
    while start < end and text[start] in strip:
        start += 1
    while end > start and text[end - 1] in strip:
        end -= 1
    return start, end


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(span[0] < b and span[1] > a for a, b in spans)


def _leftover(text: str, start: int, end: int, taken: list[tuple[int, int]]
              ) -> tuple[int, int] | None:
    """The span of the clause's words no match used, or None when only words without a
    request of their own are left. The span runs from the first to the last such word,
    widened over untouched neighbours that are not function words ("camera pans left",
    but "dog" rather than "at the dog")."""
    clause = text[start:end]
    if _CJK.search(clause):
        # Chinese has no spaces to find words by; a clause with a known keyword is used.
        return None
    tokens = [(start + m.start(), start + m.end(), m.group(0).lower())
              for m in re.finditer(r"[A-Za-z][A-Za-z'-]*", clause)]
    free = [not _overlaps((a, b), taken) for a, b, _w in tokens]
    content = [i for i, (_a, _b, w) in enumerate(tokens)
               if free[i] and w not in _STOPWORDS and len(w) > 1]
    if not content:
        return None
    lo, hi = content[0], content[-1]
    # Widen over untouched neighbours, through function words only when a word with a
    # meaning lies beyond them ("looking at the camera", but not "at the" before "dog").
    i = lo - 1
    while i >= 0 and free[i]:
        if tokens[i][2] not in _FUNCTION:
            lo = i
        i -= 1
    i = hi + 1
    while i < len(tokens) and free[i]:
        if tokens[i][2] not in _FUNCTION:
            hi = i
        i += 1
    return tokens[lo][0], tokens[hi][1]


@dataclass
class _Found:
    """One understood action of a clause, built once the whole prompt is read."""

    name: str
    build: Callable[[_Mods, re.Match[str]], Changes]
    match: re.Match[str]
    mods: _Mods
    when: tuple[Any, ...]


def parse_prompt(text: str | None) -> PromptPlan:
    """Read a free-text prompt into controls, phases, a camera move and unused parts."""
    text = text or ""
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt has {len(text)} characters; at most {MAX_PROMPT_CHARS}",
                         code="prompt_too_long")
    plan = PromptPlan(text)
    found: list[_Found] = []
    camera_moves: list[tuple[tuple[Any, ...] | None, str, _Mods]] = []
    phase_gate: dict[int, str] = {}  # a "while talking" clause speaks for its whole part
    seq = 0
    for clause in _clauses(text):
        start, end = _trim(text, clause.start, clause.end)
        if start >= end:
            continue
        piece = text[start:end]
        then = bool(clause.connector and _THEN.match(clause.connector))
        seq += then
        taken: list[tuple[int, int]] = []  # spans (in the prompt) this clause used

        def find(rx: re.Pattern[str], piece: str = piece, start: int = start,
                 taken: list[tuple[int, int]] = taken) -> list[re.Match[str]]:
            hits = list(rx.finditer(piece))
            taken.extend((start + m.start(), start + m.end()) for m in hits)
            return hits

        mods = _Mods()
        if find(_STRONG):
            mods.intensity *= 1.5
        if find(_WEAK):
            mods.intensity *= 0.5
        mods.slow, mods.fast = bool(find(_SLOW)), bool(find(_FAST))
        mods.rate = 0.65 if mods.slow and not mods.fast else \
            1.35 if mods.fast and not mods.slow else 1.0
        gates = find(_GATE_SPEECH)
        if gates:
            mods.during = "speech"
        elif find(_GATE_PAUSE):
            mods.during = "pause"
        when: tuple[Any, ...] = ("seq", seq)
        explicit = then
        if find(_END):
            when, explicit = ("end",), True
        elif find(_START):
            when, explicit = ("start",), True
        elif find(_WHOLE):
            when, explicit = ("whole",), True
        context = find(_CONTEXT)
        zooms = [(m, "in") for m in find(_ZOOM_IN)] + [(m, "out") for m in find(_ZOOM_OUT)]
        for _m, direction in zooms:
            camera_moves.append((when if explicit else None, direction, mods))
        # Actions, most specific first; text one action used is not matched again.
        matched: list[tuple[str, Callable[[_Mods, re.Match[str]], Changes], re.Match[str]]] = []
        spans: list[tuple[int, int]] = []
        for name, rx, build in _ACTION_RES:
            for m in rx.finditer(piece):
                if not _overlaps(m.span(), spans):
                    matched.append((name, build, m))
                    spans.append(m.span())
        taken.extend((start + a, start + b) for a, b in spans)
        # A mood adverb ("happily") next to another action only colours it.
        if any(name not in _MOODS for name, _b, _m in matched):
            matched = [x for x in matched
                       if not (x[0] in _MOODS and x[2].group(0).lower().endswith("ly"))]
        for name, build, m in matched:
            before = piece[max(m.start() - 25, 0):m.start()]
            neg = list(_NEGATION.finditer(before))
            local = _Mods(mods.intensity, mods.rate, mods.during, bool(neg), mods.slow,
                          mods.fast)
            if neg:
                base = start + max(m.start() - 25, 0)
                taken.append((base + neg[-1].start(), base + neg[-1].end()))
            found.append(_Found(name, build, m, local, when))
        if mods.during and not matched and when[0] == "seq":
            phase_gate[seq] = mods.during
        rest = _leftover(text, start, end, taken)
        if matched or zooms or context or mods.during:
            plan.used.append(piece)
            if rest is not None:
                plan.unused.append(text[rest[0]:rest[1]])
        elif rest is not None or _CJK.search(piece):
            plan.unused.append(piece)
    parts: list[tuple[tuple[Any, ...], Changes]] = []
    for f in found:
        if f.mods.during is None and f.when[0] == "seq" and f.when[1] in phase_gate:
            f.mods.during = phase_gate[f.when[1]]
        parts.append((f.when, f.build(f.mods, f.match)))
        words = [f"no {f.name}" if f.mods.negated else f.name]
        if f.mods.during:
            words.append("while speaking" if f.mods.during == "speech" else "in pauses")
        if f.mods.intensity != 1.0:
            words.append(f"x{f.mods.intensity:g}")
        plan.actions.append(" ".join(words))
    seqs = sorted({w[1] for w, _c in parts if w[0] == "seq"}
                  | {w[1] for w, _d, _m in camera_moves if w is not None and w[0] == "seq"})
    order = {k: i for i, k in enumerate(seqs)}
    timed = len(seqs) > 1 or any(w[0] in ("start", "end") for w, _c in parts)
    groups: dict[tuple[Any, ...], Changes] = {}
    for when, changes in parts:
        if when[0] == "whole" or not timed or (when[0] == "seq" and len(seqs) <= 1):
            plan.changes.update(changes)
        else:
            key = ("seq", order[when[1]]) if when[0] == "seq" else when
            groups.setdefault(key, {}).update(changes)
    n_seq = max(len(seqs), 1)
    for when, changes in groups.items():
        plan.phases.append(Phase(*_bounds(when, n_seq), changes))
    plan.phases.sort(key=lambda p: (p.start, p.end))
    if camera_moves:
        at, direction, mods = camera_moves[-1]  # one camera: the last move asked for
        if at is not None and at[0] == "seq":
            at = ("seq", order[at[1]])
        lo, hi = (0.0, 1.0) if at is None or (not timed and at[0] == "seq") \
            else _bounds(at, n_seq)
        if mods.fast and not mods.slow:
            hi = lo + (hi - lo) * 0.3  # a quick move happens at the start of its time
        amount = ZOOM_AMOUNT * mods.intensity
        zoom = (1.0, 1.0 + amount) if direction == "in" else (1.0 + amount, 1.0)
        plan.camera = Camera(zoom[0], zoom[1], lo, hi)
        plan.actions.append(f"camera zoom {direction} {zoom[0]:g}->{zoom[1]:g} "
                            f"({lo:.0%}-{hi:.0%})")
    return plan


def _bounds(when: tuple[Any, ...], n_seq: int) -> tuple[float, float]:
    """The fractions of the video a part covers."""
    if when[0] == "start":
        return 0.0, 1.0 / 3.0
    if when[0] == "end":
        return 2.0 / 3.0, 1.0
    if when[0] == "whole":
        return 0.0, 1.0
    k = int(when[1])
    return k / n_seq, (k + 1) / n_seq
