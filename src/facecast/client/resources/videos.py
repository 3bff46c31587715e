"""``client.talking_photos``, ``client.dubs``, ``client.cleanups``: the video jobs.

Each ``create`` takes the wire request's fields as keyword arguments (None: the API's
default) and media as the caller has them (see ``facecast.client._media``); it answers
the job (201), or the existing job when ``external_id`` was used before (200)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from facecast.api.native.wire import AvatarOut, CaptionsIn, CompositionIn, JobOut
from facecast.client._media import Media, media_input
from facecast.client._plan import Plan, body, call
from facecast.client._resource import M, Resource, operation

Box = Sequence[float]  # [x1, y1, x2, y2] in pixels


def _composition(value: CompositionIn | Mapping[str, Any] | None
                 ) -> Plan[dict[str, Any] | None]:
    """The composition body, its background and image layers uploaded like any media."""
    if value is None:
        return None
    out = (value.model_dump(exclude_unset=True) if isinstance(value, CompositionIn)
           else dict(value))
    if out.get("background") is not None:
        out["background"] = yield from media_input(out["background"])
    layers = []
    for layer in out.get("layers") or ():
        layer = dict(layer)
        if layer.get("image") is not None:
            layer["image"] = yield from media_input(layer["image"])
        layers.append(layer)
    if layers:
        out["layers"] = layers
    return out


class TalkingPhotos(Resource[M]):
    @operation
    def create(self, photo: Media | None = None, *, avatar_id: str | AvatarOut | None = None,
               audio: Media | None = None, text: str | None = None, voice: str | None = None,
               transcript: str | None = None, size: str | None = None,
               aspect: str | None = None, fps: int | None = None, seed: int | None = None,
               head_motion: float | None = None, blinks: bool | None = None,
               quality: str | None = None, watermark: bool | None = None,
               composition: CompositionIn | Mapping[str, Any] | None = None,
               expression: str | int | None = None, prompt: str | None = None,
               captions: CaptionsIn | Mapping[str, Any] | None = None,
               external_id: str | None = None, callback_url: str | None = None
               ) -> Plan[JobOut]:
        """A talking-photo video: ``photo`` (or ``avatar_id``) speaking ``audio`` (or
        ``text`` in ``voice``). Result files: ``video`` (MP4), ``visemes`` (JSON), and
        with ``captions={"format": "srt" | "vtt", "burn": False}`` ``captions``."""
        request = body(
            photo=(yield from media_input(photo)),
            avatar_id=avatar_id.id if isinstance(avatar_id, AvatarOut) else avatar_id,
            audio=(yield from media_input(audio)), text=text, voice=voice,
            transcript=transcript, size=size, aspect=aspect, fps=fps, seed=seed,
            head_motion=head_motion, blinks=blinks, quality=quality, watermark=watermark,
            composition=(yield from _composition(composition)), expression=expression,
            prompt=prompt, external_id=external_id, callback_url=callback_url,
            captions=captions.model_dump() if isinstance(captions, CaptionsIn)
            else dict(captions) if captions is not None else None)
        return (yield from call("POST", "/talking-photos", JobOut, json=request))


class Dubs(Resource[M]):
    @operation
    def create(self, video: Media, *, audio: Media | None = None, text: str | None = None,
               voice: str | None = None, transcript: str | None = None,
               face_index: int | None = None, quality: str | None = None,
               captions: CaptionsIn | Mapping[str, Any] | None = None,
               external_id: str | None = None, callback_url: str | None = None
               ) -> Plan[JobOut]:
        """Re-voice ``video``: the person's lips speak ``audio`` (or ``text``). Result
        files: ``video`` (MP4), ``visemes`` (JSON), and with ``captions={"format": "srt"}``
        ``captions``."""
        request = body(
            video=(yield from media_input(video)), audio=(yield from media_input(audio)),
            text=text, voice=voice, transcript=transcript, face_index=face_index,
            quality=quality, external_id=external_id, callback_url=callback_url,
            captions=captions.model_dump() if isinstance(captions, CaptionsIn)
            else dict(captions) if captions is not None else None)
        return (yield from call("POST", "/dubs", JobOut, json=request))


class Cleanups(Resource[M]):
    @operation
    def create(self, video: Media, *, subtitle_areas: Sequence[Box] | None = None,
               watermark_areas: Sequence[Box] | None = None,
               external_id: str | None = None, callback_url: str | None = None
               ) -> Plan[JobOut]:
        """Remove burned-in subtitles and watermarks from ``video`` (no areas: found
        automatically). Result file: ``video`` (MP4); ``result.info`` lists the areas."""
        request = body(
            video=(yield from media_input(video)),
            subtitle_areas=None if subtitle_areas is None else [list(a) for a in subtitle_areas],
            watermark_areas=None if watermark_areas is None
            else [list(a) for a in watermark_areas],
            external_id=external_id, callback_url=callback_url)
        return (yield from call("POST", "/cleanups", JobOut, json=request))
