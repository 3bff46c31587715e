"""Phoneme -> viseme tables: mouth-channel targets, coarticulation weights, Rhubarb shapes.

Two phoneme alphabets arrive here: espeak-ng IPA as piper emits it (one Unicode
code point per token after NFD, so diphthongs and affricates may come split or
joined, with stress/length marks and punctuation as tokens of their own) and
ARPAbet as pocketsphinx emits it (``AA`` .. ``ZH``, ``SIL``, optional stress
digits). :func:`viseme_for` maps either to a :class:`Viseme`: a target value per
mouth channel (see :mod:`facecast.motion.track`), a dominance per channel for
the coarticulation model in :mod:`facecast.motion.from_phonemes`, and the
nearest Rhubarb Lip Sync mouth shape (A-H, X).

Rhubarb's shapes (github.com/DanielSWolf/rhubarb-lip-sync): A closed (P B M),
B slightly open with clenched teeth (most consonants, EE), C open (EH AE),
D wide open (AA), E slightly rounded (AO ER), F puckered (UW OW W), G upper
teeth on lower lip (F V), H tongue raised (L), X idle / rest.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from facecast.motion.track import CHANNELS

SILENCE = "SIL"
RHUBARB_SHAPES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H", "X")


@dataclass(frozen=True)
class Viseme:
    """Mouth targets for one phoneme, in :data:`CHANNELS` order, plus its weights.

    ``dominance`` says how strongly the phoneme pulls each channel towards its
    target against its neighbours (Cohen & Massaro 1993): bilabials own
    ``closure``, vowels own ``jaw`` but barely touch the lips' contact channels.
    ``reach`` is, per channel, how far (seconds) its influence reaches beyond
    its own span (the decay constant of its dominance function).
    """

    kind: str  # silence, vowel, bilabial, labiodental, rounded, postalveolar, ...
    shape: str  # Rhubarb mouth shape
    target: tuple[float, float, float, float, float, float, float]
    dominance: tuple[float, float, float, float, float, float, float]
    reach: tuple[float, float, float, float, float, float, float]

    def target_array(self) -> np.ndarray:
        return np.asarray(self.target, dtype=np.float64)

    def dominance_array(self) -> np.ndarray:
        return np.asarray(self.dominance, dtype=np.float64)

    def reach_array(self) -> np.ndarray:
        return np.asarray(self.reach, dtype=np.float64)


# Coarticulation weights by kind: (dominance per channel, reach per channel in
# seconds), channels in CHANNELS order (jaw, spread, round, closure, labiodental,
# teeth, tongue). Vowels rule the jaw and the lip shape over a wide reach but hardly touch
# the lip-contact channels, so a neighbouring p/b/m or f/v owns those outright;
# contact reaches only ~25 ms past its phoneme, so the lips part for the vowel.
# Tongue consonants (t, k, h) let jaw and lips follow the surrounding vowels,
# which is what coarticulation looks like.
_W7 = tuple[float, float, float, float, float, float, float]
# The tongue (last) belongs to l / th / dh; lip contacts and sibilants hold it down
# (their own target is 0), vowels barely touch it.
_DOMINANCE: dict[str, tuple[_W7, _W7]] = {
    "silence": ((0.9, 0.6, 0.6, 0.3, 0.3, 0.8, 0.6),
                (0.03, 0.03, 0.03, 0.02, 0.02, 0.03, 0.03)),
    "vowel": ((1.0, 0.7, 0.8, 0.2, 0.2, 0.5, 0.2),
              (0.06, 0.06, 0.08, 0.015, 0.015, 0.05, 0.03)),
    "bilabial": ((1.0, 0.4, 0.3, 1.0, 1.0, 1.0, 1.0),
                 (0.03, 0.03, 0.03, 0.02, 0.02, 0.03, 0.02)),
    "labiodental": ((1.0, 0.4, 0.3, 1.0, 1.0, 1.0, 1.0),
                    (0.03, 0.03, 0.03, 0.02, 0.02, 0.03, 0.02)),
    "rounded": ((0.5, 0.8, 1.0, 0.4, 0.4, 0.5, 0.5),
                (0.04, 0.05, 0.05, 0.025, 0.025, 0.04, 0.025)),
    "postalveolar": ((0.5, 0.4, 0.6, 0.4, 0.4, 0.7, 0.6),
                     (0.035, 0.04, 0.04, 0.025, 0.025, 0.035, 0.025)),
    "sibilant": ((0.8, 0.3, 0.15, 0.4, 0.4, 0.8, 0.8),
                 (0.035, 0.035, 0.035, 0.025, 0.025, 0.035, 0.025)),
    "consonant": ((0.6, 0.15, 0.1, 0.4, 0.4, 0.4, 0.6),
                  (0.035, 0.035, 0.035, 0.025, 0.025, 0.035, 0.025)),
    "weak": ((0.08, 0.05, 0.05, 0.3, 0.3, 0.1, 0.1),
             (0.03, 0.03, 0.03, 0.025, 0.025, 0.03, 0.025)),
}


def _v(
    kind: str,
    shape: str,
    jaw: float = 0.0,
    spread: float = 0.0,
    rnd: float = 0.0,
    closure: float = 0.0,
    labiodental: float = 0.0,
    teeth: float = 0.0,
    tongue: float = 0.0,
) -> Viseme:
    dom, reach = _DOMINANCE[kind]
    return Viseme(kind, shape, (jaw, spread, rnd, closure, labiodental, teeth, tongue), dom,
                  reach)


REST = _v("silence", "X")

# Shared articulations, reused by both alphabets so IPA and ARPAbet agree.
_OPEN_BACK = _v("vowel", "D", jaw=1.0, spread=0.1, teeth=0.2)  # ɑ AA
_OPEN_FRONT = _v("vowel", "D", jaw=0.9, spread=0.25, teeth=0.3)  # a (aɪ aʊ)
_NEAR_OPEN = _v("vowel", "C", jaw=0.8, spread=0.45, teeth=0.45)  # æ AE
_OPEN_MID = _v("vowel", "C", jaw=0.65, spread=0.35, teeth=0.4)  # ɛ EH
_STRUT = _v("vowel", "C", jaw=0.65, spread=0.1, teeth=0.25)  # ʌ AH
_SCHWA = _v("vowel", "C", jaw=0.4, spread=0.1, teeth=0.25)  # ə ɐ
_CLOSE_MID = _v("vowel", "C", jaw=0.45, spread=0.6, teeth=0.5)  # e EY
_NEAR_CLOSE = _v("vowel", "B", jaw=0.3, spread=0.6, teeth=0.5)  # ɪ IH
_CLOSE = _v("vowel", "B", jaw=0.2, spread=0.9, teeth=0.6)  # i IY
_OPEN_MID_BACK = _v("vowel", "E", jaw=0.7, rnd=0.5, teeth=0.15)  # ɔ AO
_OPEN_BACK_ROUND = _v("vowel", "E", jaw=0.8, rnd=0.35, teeth=0.15)  # ɒ
_MID_BACK = _v("vowel", "F", jaw=0.45, rnd=0.75)  # o OW
_NEAR_CLOSE_BACK = _v("vowel", "F", jaw=0.3, rnd=0.7)  # ʊ UH
_CLOSE_BACK = _v("vowel", "F", jaw=0.2, rnd=1.0)  # u UW
_RHOTIC = _v("vowel", "E", jaw=0.4, rnd=0.45, teeth=0.2)  # ɜ ɚ ER
_FRONT_ROUND = _v("vowel", "F", jaw=0.25, rnd=0.85, teeth=0.1)  # y ø (German, Chinese ü)
_OPEN_FRONT_ROUND = _v("vowel", "E", jaw=0.5, rnd=0.6, teeth=0.1)  # œ
_CLOSE_UNROUND = _v("vowel", "B", jaw=0.25, spread=0.5, teeth=0.4)  # ɨ ɯ ɤ
_BILABIAL = _v("bilabial", "A", jaw=0.05, closure=1.0)
_LABIODENTAL = _v("labiodental", "G", jaw=0.1, labiodental=1.0, teeth=0.7)
_DENTAL = _v("sibilant", "B", jaw=0.15, spread=0.2, teeth=0.8, tongue=1.0)  # θ ð
_SIBILANT = _v("sibilant", "B", jaw=0.1, spread=0.4, teeth=1.0)  # s z
_POSTALVEOLAR = _v("postalveolar", "B", jaw=0.15, rnd=0.5, teeth=0.8)  # ʃ ʒ tʃ dʒ
_ALVEOLAR = _v("consonant", "B", jaw=0.2, spread=0.1, teeth=0.6)  # t d n
_LATERAL = _v("consonant", "H", jaw=0.3, spread=0.1, teeth=0.4, tongue=1.0)  # l
_VELAR = _v("consonant", "B", jaw=0.3, teeth=0.3)  # k g ŋ x
_RHOTIC_C = _v("rounded", "E", jaw=0.25, rnd=0.5, teeth=0.2)  # ɹ r
_W = _v("rounded", "F", jaw=0.1, rnd=1.0)
_PALATAL = _v("consonant", "B", jaw=0.15, spread=0.6, teeth=0.5)  # j ç
_WEAK = _v("weak", "B", jaw=0.3, teeth=0.2)  # h ʔ: take the neighbours' shape

# espeak-ng IPA, single code points (after NFD) plus joined forms piper voices may use.
IPA_VISEMES: dict[str, Viseme] = {
    "ɑ": _OPEN_BACK, "a": _OPEN_FRONT, "ä": _OPEN_FRONT, "æ": _NEAR_OPEN,
    "ɛ": _OPEN_MID, "ε": _OPEN_MID, "ʌ": _STRUT, "ə": _SCHWA, "ɐ": _SCHWA, "ɘ": _SCHWA,
    "ɵ": _SCHWA, "e": _CLOSE_MID, "ɪ": _NEAR_CLOSE, "ᵻ": _NEAR_CLOSE, "i": _CLOSE,
    "ɔ": _OPEN_MID_BACK, "ɒ": _OPEN_BACK_ROUND, "o": _MID_BACK, "ʊ": _NEAR_CLOSE_BACK,
    "u": _CLOSE_BACK, "ʉ": _CLOSE_BACK, "ɜ": _RHOTIC, "ɚ": _RHOTIC, "ɝ": _RHOTIC,
    "ɞ": _RHOTIC, "y": _FRONT_ROUND, "ʏ": _FRONT_ROUND, "ø": _FRONT_ROUND,
    "œ": _OPEN_FRONT_ROUND, "ɶ": _OPEN_FRONT_ROUND, "ɨ": _CLOSE_UNROUND,
    "ɯ": _CLOSE_UNROUND, "ɤ": _CLOSE_UNROUND,
    "p": _BILABIAL, "b": _BILABIAL, "m": _BILABIAL, "ɓ": _BILABIAL, "ʙ": _BILABIAL,
    "ɸ": _LABIODENTAL, "β": _LABIODENTAL,
    "f": _LABIODENTAL, "v": _LABIODENTAL, "ʋ": _LABIODENTAL, "ɱ": _LABIODENTAL,
    "ⱱ": _LABIODENTAL,
    "θ": _DENTAL, "ð": _DENTAL,
    "s": _SIBILANT, "z": _SIBILANT, "ɕ": _POSTALVEOLAR, "ʑ": _POSTALVEOLAR,
    "ʃ": _POSTALVEOLAR, "ʒ": _POSTALVEOLAR, "ʂ": _POSTALVEOLAR, "ʐ": _POSTALVEOLAR,
    "t": _ALVEOLAR, "d": _ALVEOLAR, "n": _ALVEOLAR, "ɾ": _ALVEOLAR, "ɗ": _ALVEOLAR,
    "ʈ": _ALVEOLAR, "ɖ": _ALVEOLAR, "ɳ": _ALVEOLAR, "ɲ": _PALATAL,
    "l": _LATERAL, "ɫ": _LATERAL, "ɭ": _LATERAL, "ʎ": _LATERAL, "ɬ": _LATERAL,
    "ɮ": _LATERAL, "ɺ": _LATERAL,
    "k": _VELAR, "ɡ": _VELAR, "g": _VELAR, "ŋ": _VELAR, "x": _VELAR, "ɣ": _VELAR,
    "q": _VELAR, "ɢ": _VELAR, "ɴ": _VELAR, "χ": _VELAR, "ʁ": _VELAR, "ʀ": _VELAR,
    "ɰ": _VELAR, "c": _PALATAL, "ɟ": _PALATAL,
    "ɹ": _RHOTIC_C, "r": _RHOTIC_C, "ɻ": _RHOTIC_C, "ɽ": _ALVEOLAR,
    "w": _W, "ʍ": _W, "ɥ": _W,
    "j": _PALATAL, "ç": _PALATAL, "ʝ": _PALATAL,
    "h": _WEAK, "ɦ": _WEAK, "ʔ": _WEAK, "ħ": _WEAK, "ʕ": _WEAK, "ʜ": _WEAK, "ʢ": _WEAK,
    "ʡ": _WEAK, "ɧ": _POSTALVEOLAR,
    # Joined forms (some voices merge clusters; tie bars are stripped before lookup).
    "tʃ": _POSTALVEOLAR, "dʒ": _POSTALVEOLAR, "ts": _SIBILANT, "dz": _SIBILANT,
    "tɕ": _POSTALVEOLAR, "dʑ": _POSTALVEOLAR, "tʂ": _POSTALVEOLAR, "pf": _LABIODENTAL,
}

ARPABET_VISEMES: dict[str, Viseme] = {
    "AA": _OPEN_BACK, "AE": _NEAR_OPEN, "AH": _STRUT, "AO": _OPEN_MID_BACK,
    "AW": _OPEN_FRONT, "AY": _OPEN_FRONT, "EH": _OPEN_MID, "ER": _RHOTIC,
    "EY": _CLOSE_MID, "IH": _NEAR_CLOSE, "IY": _CLOSE, "OW": _MID_BACK,
    "OY": _OPEN_MID_BACK, "UH": _NEAR_CLOSE_BACK, "UW": _CLOSE_BACK, "AX": _SCHWA,
    "B": _BILABIAL, "P": _BILABIAL, "M": _BILABIAL, "F": _LABIODENTAL, "V": _LABIODENTAL,
    "TH": _DENTAL, "DH": _DENTAL, "S": _SIBILANT, "Z": _SIBILANT,
    "SH": _POSTALVEOLAR, "ZH": _POSTALVEOLAR, "CH": _POSTALVEOLAR, "JH": _POSTALVEOLAR,
    "T": _ALVEOLAR, "D": _ALVEOLAR, "N": _ALVEOLAR, "DX": _ALVEOLAR, "L": _LATERAL,
    "K": _VELAR, "G": _VELAR, "NG": _VELAR, "R": _RHOTIC_C, "W": _W, "Y": _PALATAL,
    "HH": _WEAK, "SIL": REST,
}

# IPA -> ARPAbet, for words pocketsphinx's dictionary lacks (see motion.align).
IPA_TO_ARPABET: dict[str, str] = {
    "ɑ": "AA", "a": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɔ": "AO",
    "ɒ": "AA", "ɛ": "EH", "ɜ": "ER", "ɚ": "ER", "ɝ": "ER", "e": "EY", "ɪ": "IH",
    "ᵻ": "IH", "i": "IY", "o": "OW", "ʊ": "UH", "u": "UW", "aɪ": "AY", "aʊ": "AW",
    "ɔɪ": "OY", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW",
    "b": "B", "p": "P", "m": "M", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S",
    "z": "Z", "ʃ": "SH", "ʒ": "ZH", "tʃ": "CH", "dʒ": "JH", "t": "T", "d": "D", "n": "N",
    "ɾ": "D", "l": "L", "ɫ": "L", "k": "K", "ɡ": "G", "g": "G", "ŋ": "NG", "ɹ": "R",
    "r": "R", "w": "W", "j": "Y", "h": "HH", "x": "K", "ç": "HH", "ʔ": "",
}

# Tokens that are not phonemes. Stress attaches to the following sound, length and
# modifier marks to the preceding one; gaps (word space, punctuation, piper's
# sentence start/end ^ $ and pad _) are time between sounds.
STRESS_MARKS = frozenset("ˈˌ'")
MODIFIER_MARKS = frozenset("ːˑʰʲʷˠˤ˞ⁿˡ↓↑0123456789") | frozenset("˥˦˧˨˩")
TIE_BARS = frozenset("\u0361\u035c")
GAP_MARKS = frozenset(" ^$_.,!?;:-\"()[]{}…—–«»¡¿|‖#")
SILENCE_LABELS = frozenset({"", "SIL", "sil", "sp", "spn", "pau", "<sil>", "<s>", "</s>", "_"})

# Two-part sounds that some voices emit as one token: (first, second, first's share).
DIPHTHONGS: dict[str, tuple[str, str, float]] = {
    "aɪ": ("a", "ɪ", 0.6), "aʊ": ("a", "ʊ", 0.6), "ɔɪ": ("ɔ", "ɪ", 0.6),
    "eɪ": ("e", "ɪ", 0.6), "oʊ": ("o", "ʊ", 0.6), "əʊ": ("ə", "ʊ", 0.5),
    "ɪə": ("ɪ", "ə", 0.5), "eə": ("e", "ə", 0.5), "ʊə": ("ʊ", "ə", 0.5),
    "aɪə": ("a", "ɪ", 0.5), "ɛɪ": ("ɛ", "ɪ", 0.6), "ɑʊ": ("ɑ", "ʊ", 0.6),
    "ei": ("e", "i", 0.6), "ai": ("a", "i", 0.6), "au": ("a", "u", 0.6),
    "ou": ("o", "u", 0.6), "ɔʏ": ("ɔ", "ʏ", 0.6),
    # ARPAbet glides whose lip shape changes a lot from start to end.
    "AY": ("AA", "IH", 0.6), "AW": ("AA", "UH", 0.6), "OY": ("AO", "IH", 0.6),
}
# The closure part of an affricate is short and tongue-only; lips show the fricative.
AFFRICATES: dict[str, tuple[str, str, float]] = {
    "tʃ": ("t", "ʃ", 0.35), "dʒ": ("d", "ʒ", 0.35), "ts": ("t", "s", 0.35),
    "dz": ("d", "z", 0.35), "tɕ": ("t", "ɕ", 0.35), "dʑ": ("d", "ʑ", 0.35),
    "tʂ": ("t", "ʂ", 0.35), "pf": ("p", "f", 0.4),
}


def strip_ipa(token: str) -> str:
    """``token`` without tie bars, combining marks and modifier letters (NFD)."""
    out = []
    for ch in unicodedata.normalize("NFD", token):
        if ch in TIE_BARS or unicodedata.combining(ch) or ch in MODIFIER_MARKS:
            continue
        if ch in STRESS_MARKS:
            continue
        out.append(ch)
    return "".join(out)


def is_silence(phoneme: str) -> bool:
    """True for pause labels (``SIL``, ``sp``, ``<sil>``, ``_``, empty) and gap marks."""
    p = phoneme.strip()
    if p in SILENCE_LABELS or phoneme in SILENCE_LABELS:
        return True
    if p.startswith("+") and p.endswith("+"):  # pocketsphinx noise/filler (+NSN+, +SPN+)
        return True
    return bool(phoneme) and all(ch in GAP_MARKS for ch in phoneme)


def is_marker(phoneme: str) -> bool:
    """True for tokens that carry no articulation of their own (stress, length, gaps)."""
    if phoneme == "":
        return True
    if all(ch in GAP_MARKS for ch in phoneme):
        return True
    return all(
        ch in STRESS_MARKS or ch in MODIFIER_MARKS or ch in TIE_BARS or unicodedata.combining(ch)
        for ch in phoneme
    )


def _arpabet_key(phoneme: str) -> str | None:
    key = phoneme.strip().upper().rstrip("012")
    return key if key in ARPABET_VISEMES else None


def viseme_for(phoneme: str) -> Viseme:
    """The :class:`Viseme` for an IPA or ARPAbet phoneme; unknown sounds get a neutral one.

    ARPAbet is recognised only in upper case (``AA1``, ``SH``), so lower-case IPA
    letters that look alike (``b``, ``s``) are read as IPA.
    """
    if is_silence(phoneme) or is_marker(phoneme):
        return REST
    stripped = phoneme.strip()
    if stripped[:1].isupper() or stripped.startswith("+"):
        key = _arpabet_key(stripped)
        if key is not None:
            return ARPABET_VISEMES[key]
    base = strip_ipa(stripped)
    if base in IPA_VISEMES:
        return IPA_VISEMES[base]
    if base.lower() in IPA_VISEMES:
        return IPA_VISEMES[base.lower()]
    # A cluster we do not know as a whole: its first known letter decides, vowels first
    # because a vowel carries the jaw and is what a viewer reads.
    known = [IPA_VISEMES[ch] for ch in base if ch in IPA_VISEMES]
    vowels = [v for v in known if v.kind == "vowel"]
    if vowels:
        return vowels[0]
    if known:
        return known[0]
    return _ALVEOLAR  # an unknown consonant: small opening, the safest guess


def rhubarb_shape(phoneme: str) -> str:
    """Rhubarb Lip Sync mouth shape (A-H, X) of one phoneme."""
    return viseme_for(phoneme).shape


def viseme_vector(phoneme: str) -> dict[str, float]:
    """The channel targets of ``phoneme`` by name (handy for tables and debugging)."""
    vis = viseme_for(phoneme)
    return dict(zip(CHANNELS, vis.target, strict=True))
