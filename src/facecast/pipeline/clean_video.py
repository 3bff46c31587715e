"""Subtitle and watermark removal: a video in, the same video without them out.

The use case composes the engine parts of :mod:`facecast.cleanup`: checks
the video against KreadoAI's limits (MP4/MOV, longer than 5 s, up to 200 MB)
and the areas against the frame; finds the areas itself when none are given
(:mod:`facecast.cleanup.detect`); samples frames across the video to model
each watermark as an overlay; then streams the video once more through the
fill and into an H.264 file with the source's audio copied. It knows nothing
of HTTP; progress is reported through a ``(fraction, stage)`` callback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facecast.cleanup.areas import Area, check_areas, group_regions
from facecast.cleanup.fill import RegionFiller, StreamCleaner, fill_params
from facecast.cleanup.io import CleanWriter, SourcePacket, YuvFrame, read_source, sample_frames
from facecast.cleanup.logo import LUMA, SOLID, OverlayModel, estimate_overlay
from facecast.cleanup.textmask import (
    Polarity,
    choose_polarity,
    grow_mask,
    still_structures,
    stroke_params,
)
from facecast.errors import InputError
from facecast.media.video_reader import CLEAN_LIMITS, VideoInfo, VideoLimits, probe_video

PathLike = str | os.PathLike[str]
Progress = Callable[[float, str], None]
AreaSpec = str | Sequence[float] | Mapping[str, float]

OVERLAY_SAMPLES = 40


@dataclass
class CleanVideoSpec:
    """What to clean. With no areas at all, the areas are found automatically."""

    video: PathLike
    output: PathLike
    subtitle_areas: Sequence[AreaSpec] = ()
    watermark_areas: Sequence[AreaSpec] = ()
    detect: bool | None = None  # None: detect only when no area is given
    crf: int = 18
    preset: str = "veryfast"
    limits: VideoLimits = CLEAN_LIMITS

    def check(self) -> None:
        """The request's own rules, before the video is read (the areas are checked
        against its size once it is probed)."""
        if Path(self.output).resolve() == Path(self.video).resolve():
            raise InputError("the output must not overwrite the input video",
                             code="bad_request")


@dataclass
class CleanVideoResult:
    output: Path
    width: int
    height: int
    fps: float
    duration: float
    frames: int
    has_audio: bool
    subtitle_areas: list[Area]
    watermark_areas: list[Area]
    detected: bool  # the areas were found automatically
    detection: Any | None = None  # facecast.cleanup.detect.Detection when detected
    overlays: list[dict[str, Any]] = field(default_factory=list)
    text_frames: int = 0  # frames in which subtitle pixels were replaced
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "output": str(self.output), "width": self.width, "height": self.height,
            "fps": self.fps, "duration": self.duration, "frames": self.frames,
            "has_audio": self.has_audio, "detected": self.detected,
            "subtitle_areas": [a.to_dict() for a in self.subtitle_areas],
            "watermark_areas": [a.to_dict() for a in self.watermark_areas],
            "overlays": self.overlays, "text_frames": self.text_frames,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if self.detection is not None:
            out["detection"] = self.detection.to_dict()
        return out


def _margin(height: int) -> int:
    """Picture kept around each area: context for the fill and the change measure."""
    return max(8, round(0.025 * height))


def _grown(area: Area, margin: int, width: int, height: int) -> tuple[int, int, int, int]:
    return (max(0, area.x1 - margin), max(0, area.y1 - margin),
            min(width, area.x2 + margin), min(height, area.y2 + margin))


def _sample_pass(video: PathLike, info: VideoInfo, watermarks: Sequence[Area],
                 subtitles: Sequence[Area], margin: int, report: Progress, start: float,
                 span: float) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]], np.ndarray]:
    """Crops of each watermark area (RGB, with margin) and, per sampled frame, the luma of
    each subtitle area, from frames spread across the video; and the R, G, B weights of the
    video's luma (its matrix's)."""
    total = max(1, info.frames)
    crops: list[list[np.ndarray]] = [[] for _ in watermarks]
    lumas: list[list[np.ndarray]] = []
    boxes = [_grown(a, margin, info.width, info.height) for a in watermarks]
    want = OVERLAY_SAMPLES
    weights = LUMA
    for frame in sample_frames(video, want, total, info.fps):
        weights = frame.colour.luma_weights
        for store, (x1, y1, x2, y2) in zip(crops, boxes, strict=True):
            store.append(_crop_rgb(frame, x1, y1, x2, y2))
        if subtitles:
            lumas.append([frame.y[a.y1:a.y2, a.x1:a.x2].copy() for a in subtitles])
        report(start + span * min(1.0, frame.index / total), "sampling frames")
    return crops, lumas, weights


def _crop_rgb(frame: YuvFrame, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    # crop_rgb needs even corners for 4:2:0; take the even box around and cut it down.
    s = frame.sub
    ex1, ey1 = x1 // s * s, y1 // s * s
    ex2 = min(frame.shape[1], -(-x2 // s) * s)
    ey2 = min(frame.shape[0], -(-y2 // s) * s)
    rgb = frame.crop_rgb(ex1, ey1, ex2, ey2)
    return rgb[y1 - ey1:y2 - ey1, x1 - ex1:x2 - ex1].copy()


def _describe(area: Area, model: OverlayModel) -> dict[str, Any]:
    return {"area": area.to_dict(), "kind": model.kind, "opacity": round(model.opacity, 3),
            "fit_r2": round(model.fit_r2, 3), "pixels": model.pixels}


def clean_video(spec: CleanVideoSpec, progress: Progress | None = None) -> CleanVideoResult:
    """Clean ``spec.video`` into ``spec.output``; raises InputError on bad input.

    Nothing is left at ``spec.output`` unless the whole video was written.
    """
    report = progress or (lambda _f, _s: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    spec.check()
    report(0.0, "checking video")
    info = probe_video(spec.video, spec.limits)
    subtitles = check_areas(spec.subtitle_areas, "subtitle", info.width, info.height)
    watermarks = check_areas(spec.watermark_areas, "watermark", info.width, info.height)
    detect = spec.detect if spec.detect is not None else not (subtitles or watermarks)
    detection = None
    position = 0.02
    if detect:
        from facecast.cleanup.detect import detect_areas

        t = time.perf_counter()

        def detect_progress(fraction: float, stage: str) -> None:
            report(0.02 + 0.43 * fraction, stage)

        detection = detect_areas(spec.video, info, detect_progress)
        subtitles = subtitles + detection.subtitle_areas
        watermarks = watermarks + detection.watermark_areas
        timings["detect"] = time.perf_counter() - t
        position = 0.45

    margin = _margin(info.height)
    overlays: list[OverlayModel] = []
    still: list[tuple[Area, np.ndarray]] = []
    polarity: Polarity = "light"
    t = time.perf_counter()
    if watermarks or subtitles:
        crops, lumas, weights = _sample_pass(spec.video, info, watermarks, subtitles, margin,
                                             report, position, 0.1)
        kept: list[Area] = []
        for area, samples in zip(watermarks, crops, strict=True):
            x1, y1, _, _ = _grown(area, margin, info.width, info.height)
            box = (area.x1 - x1, area.y1 - y1, area.x2 - x1, area.y2 - y1)
            model = estimate_overlay(samples, box, origin=(x1, y1), luma=weights)
            if detection is not None and area in detection.watermark_areas:
                # A found area is only a guess at where the logo is: keep it to the logo's
                # own pixels, and drop it when no overlay is there after all.
                searched = area if detection.padded(area) else None
                footprint = _footprint(model, info.width, info.height, searched)
                detection.replace(area, footprint)
                if footprint is None:
                    continue
                drop = _picture_parts(model, searched)
                lines = _overlay_lines(model, samples, drop, searched)
                drop |= _stray_rim(model, drop, lines)
                model = _within(model, footprint, drop & ~lines, lines)
                area = footprint
            else:
                # A box drawn by hand has room round the logo too, and on a still shot the
                # picture's bright structures reaching its edge (blind slats beside the
                # logo) fit the overlay as well as the logo: "taken off", they were dark
                # patches (-3 grey levels round Klobuchar's logo). A box drawn tight round
                # the logo keeps it: its frame's runs are as short as the line is thick and
                # nothing thick reaches the edge.
                drop = _picture_parts(model, area)
                lines = _overlay_lines(model, samples, drop, area)
                drop |= _stray_rim(model, drop, lines)
                model = _within(model, area, drop & ~lines, lines)
            kept.append(area)
            overlays.append(model)
        watermarks = kept
        if lumas:
            polarity = choose_polarity([c for row in lumas[::3] for c in row], info.height)
            for k, area in enumerate(subtitles):
                found = still_structures([row[k] for row in lumas],
                                         stroke_params(info.height, polarity))
                if found is not None:
                    still.append((area, found))
    timings["analyse"] = time.perf_counter() - t
    position += 0.1

    t = time.perf_counter()
    params = fill_params(info.height, info.fps, info.width)
    stroke = stroke_params(info.height, polarity)
    regions = group_regions([*subtitles, *watermarks], info.width, info.height, margin)
    fillers = [RegionFiller(r, [m for m in overlays if _overlaps(m, r.x1, r.y1, r.x2, r.y2)],
                            stroke, params, [(a, m) for a, m in still if a in r.areas])
               for r in regions]
    cleaner = StreamCleaner(fillers, params)
    total = max(1, info.frames)
    written = 0
    with CleanWriter(spec.output, spec.video, crf=spec.crf, preset=spec.preset) as writer:
        for item in read_source(spec.video):
            if isinstance(item, SourcePacket):
                writer.copy(item)
                continue
            for frame in cleaner.push(item) if fillers else [item]:
                writer.write(frame)
                written += 1
                if written % 10 == 0:
                    report(position + (0.99 - position) * min(1.0, written / total), "cleaning")
        for frame in cleaner.flush() if fillers else []:
            writer.write(frame)
            written += 1
        has_audio = writer.has_audio
    timings["clean"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    return CleanVideoResult(
        output=Path(spec.output), width=info.width, height=info.height, fps=info.fps,
        duration=info.duration, frames=written, has_audio=has_audio,
        subtitle_areas=list(subtitles), watermark_areas=list(watermarks),
        detected=detect, detection=detection,
        overlays=[_describe(a, m) for a, m in zip(watermarks, overlays, strict=False)],
        text_frames=cleaner.text_frames, timings=timings)


def _footprint(model: OverlayModel, width: int, height: int,
               searched: Area | None = None) -> Area | None:
    """The box around the pixels ``model`` changes (padded a little), or None.

    ``searched`` is the area the model was estimated in, when it was drawn with
    room around the logo: the picture's own structures that run on past its
    edge (a lamp post, window-blind slats) are left out of the box.
    """
    touched = _body(model)
    if model.kind == "none" or not touched.any():
        return None
    if searched is not None:
        touched = touched & ~_picture_parts(model, searched)
    # The logo is one cluster (its letters a few pixels apart); stray stripes of the
    # picture that slipped into the model lie apart from it and do not widen the box.
    h = touched.shape[0]
    side = max(3, h // 6) | 1
    joined = cv2.dilate(touched.view(np.uint8), np.ones((side, side), np.uint8))
    n, labels = cv2.connectedComponents(joined, connectivity=8)
    if n > 2:
        sizes = np.bincount(labels[touched], minlength=n)
        big = np.flatnonzero(sizes >= 0.2 * np.max(sizes))
        touched = touched & np.isin(labels, big[big > 0])
    rows, cols = np.nonzero(touched.any(axis=1))[0], np.nonzero(touched.any(axis=0))[0]
    return Area(max(0, model.x1 + int(cols[0]) - 1), max(0, model.y1 + int(rows[0]) - 1),
                min(width, model.x1 + int(cols[-1]) + 2),
                min(height, model.y1 + int(rows[-1]) + 2), "watermark")


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
BORDER_REACH = 2  # px from a searched area's edge that count as reaching it
BODY_ALPHA = 0.5  # of a logo's opacity: its pixels this covered or more are its body


def _body(model: OverlayModel) -> np.ndarray:
    """The pixels ``model`` changes, less its anti-aliased edge."""
    # The edge lies within a found box's padding, and its faint, least certain pixels
    # would bridge the gap to the picture's own bright structures beside the logo (blind
    # slats), which then no longer come off as structures reaching the area's edge.
    return (model.alpha >= BODY_ALPHA * model.opacity) | model.fixed


def _picture_parts(model: OverlayModel, searched: Area | None) -> np.ndarray:
    """Pixels of ``model`` (on its maps) that belong to the picture carrying on past the
    edge of ``searched``, not to the logo: straight runs (:func:`_without_border_runs`) and
    thick blobs reaching that edge (:func:`_without_border_blobs`)."""
    touched = _body(model)
    if searched is None:
        return np.zeros_like(touched)
    # Blobs first: a slat that touches the logo's frame made the frame's whole top line a
    # run reaching the area's edge through it, and the line was left on the picture.
    kept = _without_border_blobs(touched, searched, model)
    kept = _without_border_runs(kept, searched, model)
    return touched & ~kept


def _without_border_runs(touched: np.ndarray, searched: Area, model: OverlayModel) -> np.ndarray:
    """``touched`` less its straight runs that reach the edge of ``searched``: horizontal
    runs reaching its left or right side, vertical ones its top or bottom.

    A found area is drawn with room around the logo, so what reaches its edge is
    the picture carrying on past it; on a still shot such structures are as
    still as the logo and fit the overlay model as well. A logo's outline survives
    this, since its sides run across the runs removed. When most of the pixels
    would go (a solid logo in a tight area) nothing is removed.
    """
    x1, y1 = searched.x1 - model.x1, searched.y1 - model.y1
    x2, y2 = searched.x2 - model.x1, searched.y2 - model.y1
    h, w = touched.shape
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 <= 2 * BORDER_REACH or y2 - y1 <= 2 * BORDER_REACH:
        return touched
    part = touched[y1:y2, x1:x2]
    runs = _border_runs(part)
    if runs.sum() > 0.5 * part.sum():
        return touched
    out = touched.copy()
    out[y1:y2, x1:x2] &= ~runs
    return out


def _border_runs(part: np.ndarray) -> np.ndarray:
    """The straight runs of ``part`` that reach its edge: horizontal ones its left or right
    side, vertical ones its top or bottom (starting within BORDER_REACH of it)."""
    runs = np.zeros_like(part)
    for axis in (0, 1):
        for flip in (False, True):
            m = np.flip(part, axis) if flip else part
            reach = m.copy()
            edge = [slice(None), slice(None)]
            edge[axis] = slice(0, BORDER_REACH)
            reach[tuple(edge)] = True  # a run may start a pixel or two in from the edge
            run = np.logical_and.accumulate(reach, axis=axis) & m
            runs |= np.flip(run, axis) if flip else run
    return runs


def _stray_rim(model: OverlayModel, drop: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """What a picture structure cut out of the logo (``drop``) leaves behind: the pixels
    beside it that are not solid, or solid but held to the logo by no kept body pixel
    (:func:`_body`) beside them, and faint pixels with no kept body pixel round them.

    A logo's anti-aliased rim lies right beside its strokes; the opening that cuts a
    blind's bright slat out of the logo leaves the slat's own soft edge and next rows
    behind, and on a still shot they fit the overlay as well as a rim (0.2-0.7 of the
    opacity, "taken off" 12-40 grey levels dark: round the dash at Klobuchar's slat end,
    and a faint bar along the next slat's top below the logo).
    """
    square = np.ones((3, 3), np.uint8)
    # The structure's soft edge right beside it: not solid, so not the logo's line either,
    # or solid but held to the logo by nothing else (the slat's own next row).
    beside = (model.alpha > 0) & ~drop & ~lines & (cv2.dilate(drop.view(np.uint8), square) > 0)
    partly = model.alpha < SOLID * model.opacity
    held = (_body(model) & ~drop & ~beside) | lines
    anchored = cv2.dilate(held.view(np.uint8), _CROSS) > 0
    edge = beside & (partly | ~anchored)
    gone = drop | edge
    kept = (_body(model) & ~gone) | lines
    faint = (model.alpha > 0) & ~_body(model) & ~gone
    # A rim pixel lies beside a stroke, diagonally too (a curve's outer pixels).
    return edge | (faint & ~(cv2.dilate(kept.view(np.uint8), square) > 0))


def _without_border_blobs(touched: np.ndarray, searched: Area, model: OverlayModel
                          ) -> np.ndarray:
    """``touched`` less its thick parts that reach the edge of ``searched`` (and the pixels
    beside them).

    A text logo is thin strokes and lines; the bright bars of a window blind
    beside it are blobs many pixels thick, and when one touches the logo's frame
    its rows carry on along the frame, so they are no straight runs of their own.
    As for runs, nothing is removed when most of the pixels would go.
    """
    x1, y1 = searched.x1 - model.x1, searched.y1 - model.y1
    x2, y2 = searched.x2 - model.x1, searched.y2 - model.y1
    h, w = touched.shape
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 <= 2 * BORDER_REACH or y2 - y1 <= 2 * BORDER_REACH:
        return touched
    part = touched[y1:y2, x1:x2]
    # Thicker than the strokes of text as tall as the area (an eighth of its height).
    side = max(5, (y2 - y1) // 8) | 1
    thick = cv2.morphologyEx(part.view(np.uint8), cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    n, labels = cv2.connectedComponents(thick, connectivity=8)
    if n < 2:
        return touched
    edge = np.zeros_like(part)
    edge[:BORDER_REACH], edge[-BORDER_REACH:] = True, True
    edge[:, :BORDER_REACH], edge[:, -BORDER_REACH:] = True, True
    reaching = np.unique(labels[edge & (thick > 0)])
    reaching = reaching[reaching > 0]
    if reaching.size == 0:
        return touched
    blobs = grow_mask(np.isin(labels, reaching), 1) & part
    # The logo's own lines that run through a blob (its frame's side, flush with a slat
    # that touches it) are kept: the thin pixels on either side of the blob, a short gap
    # apart, bridged. Cut away with the slat, that side of the frame stayed on, bright (a
    # ghost of 21 grey levels on Klobuchar's logo). The gap is kept short (twice the
    # opening's size) so that a slat inside the frame, between its top and bottom
    # lines, is not bridged over.
    span = 2 * side + 1
    # Only long lines on either side: the blob's own rounded rim, left over by the opening,
    # bridged into an arc that widened the logo's box.
    rest = (part & ~blobs).view(np.uint8)
    _, rest_labels, rest_stats, _ = cv2.connectedComponentsWithStats(rest, connectivity=8)
    long = np.flatnonzero(rest_stats[:, cv2.CC_STAT_AREA] >= 2 * span)
    thin = np.isin(rest_labels, long[long > 0])
    # Specks of the blob's rim that the opening left go with it (one, of the slat below the
    # logo, widened the logo's box by 7 px); a letter beside the blob (a "t") stays.
    specks = np.flatnonzero(rest_stats[:, cv2.CC_STAT_AREA] < side)
    near = np.unique(rest_labels[grow_mask(blobs, 1) & (rest > 0)])
    blobs |= np.isin(rest_labels, np.intersect1d(near[near > 0], specks))
    thin = thin.view(np.uint8)
    bridged = (cv2.morphologyEx(thin, cv2.MORPH_CLOSE, np.ones((span, 1), np.uint8))
               | cv2.morphologyEx(thin, cv2.MORPH_CLOSE, np.ones((1, span), np.uint8))) > 0
    blobs &= ~bridged
    if blobs.sum() > 0.5 * part.sum():
        return touched
    out = touched.copy()
    out[y1:y2, x1:x2] &= ~blobs
    return out


LINE_FIT = 0.3  # of a pixel's step from the picture beside it: what taking the logo off leaves
LINE_REACH = 3  # px on either side of a pixel where the picture beside it is read


def _overlay_lines(model: OverlayModel, samples: Sequence[np.ndarray], drop: np.ndarray,
                   searched: Area | None = None) -> np.ndarray:
    """The pixels of ``drop`` (the picture's structures left out of ``model``) that are the
    logo's after all: the lines of its frame running across a bright blind slat.

    Such a pixel stands out from the picture on either side of it (along a row or a
    column, one to three pixels off) by what the overlay adds, and taken off with the
    logo's opacity it joins that picture: ``(I - a L) / (1 - a)`` lies within LINE_FIT of
    the step from it. A slat's own pixels stand out by something else, or not at all.
    Cut away with the slat, the frame's side and corner stayed bright (Klobuchar).
    Only pieces that touch the logo's kept pixels count, and none that runs on to the edge
    of ``searched`` (a slat's bright ridge along its length passes the same test).
    """
    if model.kind != "semi-transparent" or not drop.any() or not samples:
        return np.zeros_like(drop)
    mean = np.mean(np.stack(samples), axis=0, dtype=np.float32)
    a = model.opacity
    taken = (mean - a * model.colour) / (1.0 - a)
    h, w = drop.shape
    pad = LINE_REACH
    padded = cv2.copyMakeBorder(mean, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    best = np.full((h, w), np.inf, np.float32)
    for dy, dx in ((0, 1), (1, 0)):
        for d1 in range(1, LINE_REACH + 1):
            for d2 in range(1, LINE_REACH + 1):
                before = padded[pad - d1 * dy:pad - d1 * dy + h, pad - d1 * dx:pad - d1 * dx + w]
                after = padded[pad + d2 * dy:pad + d2 * dy + h, pad + d2 * dx:pad + d2 * dx + w]
                ref = (before * d2 + after * d1) / (d1 + d2)  # the picture, interpolated
                step = np.abs(mean - ref).mean(axis=2)
                # Standing out by at least half what the overlay adds over that picture.
                enough = step >= 0.5 * a * np.abs(model.colour - ref).mean(axis=2)
                left = np.abs(taken - ref).mean(axis=2) / np.maximum(step, 1e-3)
                best = np.where(enough, np.minimum(best, left), best)
    lines = drop & (best < LINE_FIT) & ((model.alpha > 0) | model.fixed)
    if not lines.any():
        return lines
    if searched is not None:
        lines = _without_edge_lines(lines, searched, model, drop)
    kept = _body(model) & ~drop
    _, labels = cv2.connectedComponents(lines.view(np.uint8), connectivity=8)
    touching = np.unique(labels[grow_mask(kept, 1) & lines])
    return np.isin(labels, touching[touching > 0])


def _without_edge_lines(lines: np.ndarray, searched: Area, model: OverlayModel,
                        drop: np.ndarray) -> np.ndarray:
    """``lines`` less their straight runs reaching the edge of ``searched``, but for the
    pixels of such a run that carry on a line across it (their two neighbours across the
    run are the logo's): where the frame's side crosses a slat's ridge.

    A slat's ridge along its length stands out from the picture above and below it by
    about what a white line would add; found as the logo's frame across the slat, it was
    given the full opacity and came off as a dark dash 30-60 grey levels deep, running out
    of the logo to the area's edge (Klobuchar). The logo's own lines end at its frame.
    """
    x1, y1 = max(0, searched.x1 - model.x1), max(0, searched.y1 - model.y1)
    x2, y2 = searched.x2 - model.x1, searched.y2 - model.y1
    part = lines[y1:y2, x1:x2]
    if part.shape[0] <= 2 * BORDER_REACH or part.shape[1] <= 2 * BORDER_REACH:
        return lines
    runs = _border_runs(part)
    if not runs.any():
        return lines
    out = lines.copy()
    out[y1:y2, x1:x2] &= ~runs
    logo = np.pad(out | (_body(model) & ~drop), 1)
    across = (logo[:-2, 1:-1] & logo[2:, 1:-1]) | (logo[1:-1, :-2] & logo[1:-1, 2:])
    return out | (lines & across)


def _within(model: OverlayModel, area: Area, drop: np.ndarray | None = None,
            solid: np.ndarray | None = None) -> OverlayModel:
    """``model`` acting only inside ``area``.

    The fill applies a model over its whole region, the area and a margin
    around it; the picture's own structures the model took in beside a found
    logo (blind slats, a lamp post: on a still shot as still as the logo) must
    not be "taken off" there. (Fitting the model again on the logo's box alone
    does worse: the fit needs the picture around the logo.)
    """
    keep = np.zeros(model.shape, bool)
    keep[max(0, area.y1 - model.y1):max(0, area.y2 - model.y1),
         max(0, area.x1 - model.x1):max(0, area.x2 - model.x1)] = True
    if drop is not None and drop.any():
        # The picture's own structures found beside the logo (not grown: the logo's frame
        # often runs along them, and what was left of it read as a bright corner).
        keep &= ~drop
    alpha, fixed = model.alpha, model.fixed
    if solid is not None and solid.any():
        # Lines of the logo found across the picture's structures: fully covered (their
        # estimates there are the structure's).
        alpha = np.where(solid, np.float32(model.opacity), alpha)
        fixed = fixed & ~solid
    elif keep.all():
        return model
    doubt = model.doubt
    if doubt is not None:
        doubt = np.where(keep & ~(solid if solid is not None else False), doubt, 0.0)
    return OverlayModel(model.x1, model.y1, np.where(keep, alpha, 0.0).astype(np.float32),
                        model.colour, fixed & keep, model.kind, model.opacity, model.fit_r2,
                        dict(model.info), None if doubt is None else doubt.astype(np.float32),
                        model.fill_bias)


def _overlaps(model: OverlayModel, x1: int, y1: int, x2: int, y2: int) -> bool:
    # Regions never overlap, so a model cut to each region it touches acts on a pixel once.
    h, w = model.shape
    return model.x1 < x2 and x1 < model.x1 + w and model.y1 < y2 and y1 < model.y1 + h
