"""The native API's mapper: wire models (``wire.py``) into the service's request shapes.

The routes only call these and the service; a vendor door's ``mapper.py`` has the same
role. Rules are not checked here: the specs and the service own them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from facecast.api.deps import parse_id
from facecast.api.native import wire as s
from facecast.service.assets import MediaSource
from facecast.service.composition import CompositionSpec, LayerSpec
from facecast.service.core import JobOptions, RenderOptions


def naive_utc(t: datetime | None) -> datetime | None:
    """The database keeps naive UTC times."""
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t and t.tzinfo else t


def media(m: s.MediaInput | None) -> MediaSource | None:
    """A media input (url, base64, asset id or a job's result) as the service takes it."""
    if m is None:
        return None
    job_file = None
    if m.job_result:
        job, _, name = m.job_result.partition("/")
        job_file = (parse_id("job", job, "job"), name)
    return MediaSource(url=m.url, base64=m.base64, filename=m.filename, job_file=job_file,
                       asset_id=parse_id("ast", m.asset_id, "asset") if m.asset_id else None)


def job_options(body: s.JobCommon) -> JobOptions:
    """The options every job takes: external id and callback."""
    return JobOptions(external_id=body.external_id, callback_url=body.callback_url)


def render_options(body: s.TalkingPhotoCreate) -> RenderOptions:
    """A talking photo's render options (the spec's defaults where the body has none)."""
    return RenderOptions(size=body.size, aspect=body.aspect, fps=body.fps, seed=body.seed,
                         head_motion=body.head_motion, blinks=body.blinks,
                         quality=body.quality, watermark=body.watermark,
                         expression=body.expression, prompt=body.prompt,
                         **caption_options(body.captions))


def caption_options(c: s.CaptionsIn | None) -> dict[str, Any]:
    """The request's ``captions`` as render options (none: no captions)."""
    if c is None:
        return {}
    return {"captions": c.format, "burn_captions": c.burn, "caption_position": c.position,
            "caption_size": c.size}


def _size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    w, h = value.split("x")
    return int(w), int(h)


def composition(c: s.CompositionIn | None) -> CompositionSpec | None:
    """The wire's composition as the service's spec (checked there, once)."""
    if c is None:
        return None
    return CompositionSpec(
        canvas=_size(c.canvas), background_color=c.background_color,
        background=media(c.background), replace_background=c.replace_background,
        position=c.position, units=c.units, anchor=c.anchor, scale=c.scale,
        avatar_size=_size(c.avatar_size), mask=c.mask, corner_radius=c.corner_radius,
        layers=tuple(LayerSpec(image=media(lay.image), color=lay.color, x=lay.x, y=lay.y,
                               width=lay.width, height=lay.height, z=lay.z,
                               opacity=lay.opacity) for lay in c.layers))
