"""Deciding what an untrusted file is by decoding it (OpenCV / Pillow for images, PyAV for
audio and video), never by its name or a Content-Type header: random bytes, the wrong
kind of media and truncated files are refused with a reason.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import av

from facecast.errors import InputError
from facecast.media.image import IMAGE_FORMATS_TEXT, load_image

MEDIA_KINDS = frozenset({"image", "audio", "video"})


@dataclass(frozen=True)
class MediaInfo:
    """What a verified file is.

    ``info`` holds, for an image: ``width``, ``height``; for audio: ``duration``
    (s), ``sample_rate``, ``channels``, ``codec``; for video: ``width``,
    ``height``, ``duration``, ``fps``, ``has_audio``, ``codec``.
    """

    kind: str
    content_type: str
    size: int
    sha256: str
    info: dict[str, Any]


_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)
# ISO base-media files (HEIF, AVIF, and MP4 too) start with an ftyp box: its major
# brand tells a photo from a video.
_HEIF_BRANDS = {
    b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
    b"hevc": "image/heic", b"hevx": "image/heic", b"mif1": "image/heic", b"msf1": "image/heic",
    b"avif": "image/avif", b"avis": "image/avif",
}
_EXPECTED = {
    "image": f"an image ({IMAGE_FORMATS_TEXT})",
    "audio": "audio",
    "video": "a video",
}
# Only these demuxers may parse untrusted files: playlists (HLS, concat) and the like
# would make FFmpeg open further files or URLs named inside the upload.
_AV_OPTIONS = {
    "format_whitelist": "wav,mp3,flac,ogg,aiff,aac,mov,matroska,avi",
    "protocol_whitelist": "file",
}
# Containers whose stated duration comes from their headers; with the others it
# is an estimate (from the bit rate or the end of the file) and proves nothing.
_HEADER_DURATION_FORMATS = ("mov", "matroska", "flac", "avi")
_WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})
_MAX_VIDEO_PIXELS = 100_000_000


def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[head[8:12]]
    for magic, content_type in _IMAGE_MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def _unsupported(accept: Collection[str], reason: str, why: str, **details: Any) -> InputError:
    names = [_EXPECTED[kind] for kind in ("image", "audio", "video") if kind in accept]
    expected = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return InputError(
        f"unsupported media: expected {expected}, but {why}",
        code="unsupported_media",
        expected=sorted(accept),
        reason=reason,
        **details,
    )


def verify_media(path: Path, accept: Collection[str]) -> MediaInfo:
    """Decode ``path`` and say what it is, refusing anything not of a kind in ``accept``.

    Images must be JPEG, PNG, WebP, BMP, TIFF, HEIC/HEIF or AVIF and decode (their
    size is read from the header first: ``image_too_large`` beyond it); audio and
    video must be in a common container (WAV, MP3, FLAC, Ogg, AIFF, AAC, MP4/MOV/M4A,
    Matroska/WebM, AVI) and decode with PyAV. A video with sound is accepted as
    audio when only audio is. Files shorter than their headers say are refused as
    truncated. Raises :class:`InputError` with code ``unsupported_media``.
    """
    kinds = {accept} if isinstance(accept, str) else set(accept)
    if not kinds or not kinds <= MEDIA_KINDS:
        raise ValueError(f"accept must be a non-empty subset of {sorted(MEDIA_KINDS)}")
    path = Path(path)
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        head = f.read(64)
        f.seek(0)
        while block := f.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    if size == 0:
        raise _unsupported(kinds, "empty", "the file is empty")
    image_type = _image_type(head)
    if image_type is not None:
        if "image" not in kinds:
            raise _unsupported(
                kinds, "wrong_kind", f"it is an image ({image_type})", found="image"
            )
        try:
            pixels = load_image(path, max_bytes=None)
        except InputError as exc:
            if exc.code == "image_too_large":  # a decompression bomb: refused on its header
                raise
            raise _unsupported(
                kinds, "undecodable", f"it looks like {image_type} but does not decode "
                "(corrupt or truncated)",
            ) from exc
        height, width = pixels.shape[:2]
        return MediaInfo(
            "image", image_type, size, digest.hexdigest(), {"width": width, "height": height}
        )
    if not kinds & {"audio", "video"}:
        raise _unsupported(kinds, "undecodable", f"it is not a {IMAGE_FORMATS_TEXT} file")
    kind, content_type, info = _probe_av(path, kinds)
    return MediaInfo(kind, content_type, size, digest.hexdigest(), info)


def _av_open(path: str) -> Any:
    """``av.open`` skipping undecodable metadata. PyAV 19 (Python 3.12+ in the lock) has no
    ``metadata_errors`` switch and raises TypeError on it; there the plain call is used."""
    opener = cast(Any, av.open)  # the switch is not in every PyAV's stubs either
    try:
        return opener(path, options=dict(_AV_OPTIONS), metadata_errors="ignore")
    except TypeError:
        return opener(path, options=dict(_AV_OPTIONS))


def _probe_av(path: Path, kinds: set[str]) -> tuple[str, str, dict[str, Any]]:
    try:
        container = _av_open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise _unsupported(
            kinds, "undecodable", "it is not a readable audio or video file"
        ) from exc
    with container:
        try:
            return _analyse_av(container, path, kinds)
        except (av.error.FFmpegError, ValueError) as exc:  # a codec PyAV cannot open or run
            raise _unsupported(kinds, "undecodable", f"it does not decode: {exc}") from exc


def _analyse_av(container: Any, path: Path, kinds: set[str]) -> tuple[str, str, dict[str, Any]]:
    videos = [
        s for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic  # cover art
    ]
    audios = list(container.streams.audio)
    if videos and "video" in kinds:
        kind, main = "video", videos[0]
    elif audios and "audio" in kinds:
        kind, main = "audio", audios[0]
    else:
        found = "video" if videos else "audio" if audios else None
        why = {
            "video": "it is a video",
            "audio": "it holds only audio",
            None: "it has no audio or video stream",
        }[found]
        raise _unsupported(kinds, "wrong_kind", why, found=found)
    codec = main.codec_context
    if kind == "video" and not (0 < codec.width * codec.height <= _MAX_VIDEO_PIXELS):
        raise _unsupported(kinds, "undecodable", f"its frame size {codec.width}x{codec.height} "
                           "is out of range")
    streams = [*videos, *audios]
    spans, decoded = _demux(container, streams, main, kind)
    if main.index not in spans or not decoded:
        raise _unsupported(kinds, "undecodable", f"its {kind} stream holds no decodable data")
    _check_complete(container, path, streams, spans, kinds)
    start = min(s for s, _ in spans.values())
    end = max(e for _, e in spans.values())
    if kind == "audio":
        if not codec.sample_rate:
            raise _unsupported(kinds, "undecodable", "its sample rate is unknown")
        info: dict[str, Any] = {
            "duration": round(decoded / codec.sample_rate, 3),
            "sample_rate": codec.sample_rate,
            "channels": codec.channels,
            "codec": _codec_name(main),
        }
    else:
        rate = main.average_rate or main.guessed_rate
        info = {
            "width": codec.width,
            "height": codec.height,
            "duration": round(end - start, 3),
            "fps": round(float(rate), 3) if rate else None,
            "has_audio": any(a.index in spans for a in audios),
            "codec": _codec_name(main),
        }
    return kind, _av_content_type(container, bool(videos), streams), info


def _demux(
    container: Any, streams: list[Any], main: Any, kind: str
) -> tuple[dict[int, tuple[float, float]], int]:
    """Read every packet (for lengths) and decode the main stream.

    Returns each stream's (first, last) time in seconds and, for audio, the
    number of samples decoded; for video, the number of frames decoded, where
    the first one is enough to show that the codec works.
    """
    spans: dict[int, tuple[float, float]] = {}
    decoded = 0
    refused: av.error.InvalidDataError | None = None  # by the decoder, on the latest packet
    for packet in container.demux(*streams):
        if packet.pts is not None and packet.time_base is not None:
            first = float(packet.pts * packet.time_base)
            last = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            old = spans.get(packet.stream.index)
            spans[packet.stream.index] = (
                (first, last) if old is None else (min(old[0], first), max(old[1], last))
            )
        # Decoding all of a video would take as long as rendering it; its first frame shows
        # the codec works, while every packet is still read to find truncation.
        if packet.stream.index == main.index and packet.size and (kind == "audio" or not decoded):
            if refused is not None:  # a bad packet with more after it: not a cut-off end
                raise refused
            try:
                for frame in packet.decode():
                    decoded += frame.samples if kind == "audio" else 1
            except av.error.InvalidDataError as exc:
                if not decoded:
                    raise
                # A file cut mid-sample ends in a partial packet, which older FFmpeg (PyAV
                # 17's) refuses to decode; if it is the last, the truncation check judges
                # the file by what came before it.
                refused = exc
    if kind == "audio" or not decoded:
        for frame in main.codec_context.decode(None):  # flush delayed frames
            decoded += frame.samples if kind == "audio" else 1
    return spans, decoded


def _check_complete(
    container: Any,
    path: Path,
    streams: list[Any],
    spans: dict[int, tuple[float, float]],
    kinds: set[str],
) -> None:
    """Refuse a file that holds clearly less media than its headers announce."""
    fmt = container.format.name
    stated: list[tuple[float, float]] = []  # (stated, present) seconds
    present_all = max(e for _, e in spans.values()) - min(s for s, _ in spans.values())
    if fmt == "wav":
        wav = _wav_stated_duration(path)
        if wav is not None:
            stated.append((wav, present_all))
    elif fmt.startswith(_HEADER_DURATION_FORMATS) or (fmt == "mp3" and _mp3_has_toc(path)):
        for stream in streams:
            if stream.duration and stream.time_base:
                span = spans.get(stream.index, (0.0, 0.0))
                stated.append((float(stream.duration * stream.time_base), span[1] - span[0]))
        if not stated and container.duration:
            stated.append((container.duration / 1_000_000, present_all))
    for should, present in stated:
        # Encoder delay and edit lists shift a few packets; truncation loses far more.
        if present < should - max(0.1, 0.05 * should):
            raise _unsupported(
                kinds,
                "truncated",
                f"it is truncated: it should last {should:.2f} s, only {present:.2f} s is there",
            )


def _wav_stated_duration(path: Path) -> float | None:
    """The length the RIFF header announces (FFmpeg quietly clamps it to the file)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        while len(header := f.read(8)) == 8:
            chunk_id, chunk_size = header[:4], int.from_bytes(header[4:], "little")
            if chunk_id == b"fmt ":
                fmt = f.read(chunk_size)
                byte_rate = int.from_bytes(fmt[8:12], "little") if len(fmt) >= 12 else 0
                f.seek(chunk_size & 1, os.SEEK_CUR)
            elif chunk_id == b"data":
                # Streaming writers leave 0 or a huge placeholder where the size goes.
                if not byte_rate or chunk_size == 0 or chunk_size >= 0x7FFF0000:
                    return None
                return chunk_size / byte_rate
            else:
                f.seek(chunk_size + (chunk_size & 1), os.SEEK_CUR)
    return None


def _mp3_has_toc(path: Path) -> bool:
    """True when the first MP3 frame carries a Xing/Info/VBRI header with the length.

    Without one FFmpeg estimates the duration from the bit rate, which says
    nothing about truncation (and is wrong for VBR files).
    """
    with open(path, "rb") as f:
        head = f.read(10)
        offset = 0
        if head[:3] == b"ID3" and len(head) == 10:
            tag_size = 0
            for byte in head[6:10]:  # "syncsafe": 7 bits a byte
                tag_size = (tag_size << 7) | (byte & 0x7F)
            offset = 10 + tag_size + (10 if head[5] & 0x10 else 0)
        f.seek(offset)
        frame = f.read(256)
    return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))


def _av_content_type(container: Any, has_video: bool, streams: list[Any]) -> str:
    fmt = container.format.name
    family = "video" if has_video else "audio"
    if fmt.startswith("mov"):
        brand = str(container.metadata.get("major_brand", "")).strip().lower()
        if brand == "qt":
            return "video/quicktime"
        return f"{family}/mp4"
    if fmt.startswith("matroska"):
        codecs = {_codec_name(s) for s in streams}
        return f"{family}/webm" if codecs <= _WEBM_CODECS else f"{family}/x-matroska"
    simple = {
        "wav": "audio/wav",
        "mp3": "audio/mpeg",
        "flac": "audio/flac",
        "aiff": "audio/aiff",
        "aac": "audio/aac",
        "avi": "video/x-msvideo",
        "ogg": f"{family}/ogg",
    }
    return simple.get(fmt, "application/octet-stream")


def _codec_name(stream: Any) -> str:
    # The format's name (mp3), not the decoder's (mp3float).
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)
