"""The temporally consistent fill: text and logo pixels replaced, frame after frame.

Each region (an area plus context around it) is processed as a strip:

1. A semi-transparent logo is taken off by inverting its overlay model
   (:mod:`facecast.cleanup.logo`); opaque logo pixels are marked to fill.
2. Subtitle pixels are found per frame (:mod:`facecast.cleanup.textmask`).
3. Every masked pixel takes the true background from another frame where it
   was visible, if the picture around it has stayed still since: a forward
   memory holds each pixel's last visible value with the change accumulated
   since, and a backward memory over a lookahead of one to two chunks holds
   the next visible value. "Change" is the mean frame difference of the
   visible pixels around it, above the codec's noise floor. When the picture
   pans (corners tracked off the text agree on one motion), the memories move
   with it, so what scrolls under a line of text is still found.
4. Pixels no frame showed on a still enough picture are filled from around
   them (a push-pull pyramid at half resolution, see :func:`fill_holes`).
5. Synthesised pixels on a still picture are blended with the previous
   frame's fill, so the fill does not flicker.

Memory is bounded by the chunk (two chunks of strips plus their full frames),
whatever the video's length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facecast.cleanup.areas import Area, Region
from facecast.cleanup.io import YuvFrame
from facecast.cleanup.logo import DOUBT_MIN, LUMA, OverlayModel, PlaneInversion, harmonic_fill
from facecast.cleanup.textmask import (
    StrokeParams,
    persistence_frames,
    stroke_candidates,
    text_mask,
)

UNKNOWN_CHANGE = 255.0
NEVER = 1e9  # staleness of a pixel never seen (finite: it is multiplied by 0)
MIN_TRACKS = 12  # tracked corners needed to call a pan
_NEAR3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class FillParams:
    """Tuning of the fill; :func:`fill_params` picks them from the video."""

    chunk: int = 15  # frames; the backward memory sees 1-2 chunks ahead
    persist: int = 8  # frames a text stroke holds still before or after (textmask)
    motion: bool = True  # follow a panning picture when borrowing from other frames
    stale: float = 30.0  # accumulated change (grey levels) after which a memory is stale
    smooth: float = 0.8  # weight of the previous fill on still synthesised pixels
    kernel: int = 31  # box (px) over which the change near a masked pixel is measured


FRAME_BUDGET = 256 * 2**20  # bytes of decoded frames the cleaner may hold


def fill_params(frame_height: int, fps: float, frame_width: int | None = None) -> FillParams:
    """Parameters for a video: a chunk of about 0.6 s, fewer frames when they are large."""
    persist = persistence_frames(fps)
    chunk = int(min(30, max(8, round(0.6 * fps))))
    if frame_width is not None:
        frame_bytes = frame_width * frame_height * 3 // 2
        chunk = max(4, min(chunk, (FRAME_BUDGET // frame_bytes - persist) // 2))
    kernel = max(9, round(0.045 * frame_height)) | 1
    return FillParams(chunk=chunk, kernel=kernel, persist=persist)


@dataclass
class _Strip:
    """What one frame holds for one region."""

    rgb: np.ndarray  # overlay already taken off
    y: np.ndarray
    inverted: np.ndarray  # pixels recovered from a semi-transparent overlay
    candidates: np.ndarray | None
    mask: np.ndarray | None = None  # pixels to fill (text and opaque logo)
    change: np.ndarray | None = None  # local change since the previous frame
    shift: tuple[int, int] = (0, 0)  # how far the picture moved since the previous frame
    motion: tuple[float, float] = (0.0, 0.0)  # the same, to the sub-pixel


def shifted(a: np.ndarray, dx: int, dy: int, fill: float | bool) -> np.ndarray:
    """``a`` moved by ``(dx, dy)`` pixels; what comes in from outside is ``fill``."""
    if dx == 0 and dy == 0:
        return a
    h, w = a.shape[:2]
    out = np.full_like(a, fill)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        a[max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
    return out


def _push_pull(colour: np.ndarray, weight: np.ndarray, levels: int = 6) -> np.ndarray:
    """Normalised-convolution pyramid fill: ``colour`` holds values times ``weight``
    (float32, 3 channels each); returns the filled values."""
    pyramid = [(colour, weight)]
    while min(pyramid[-1][1].shape[:2]) > 4 and len(pyramid) < levels:
        c, w = pyramid[-1]
        pyramid.append((cv2.pyrDown(c), cv2.pyrDown(w)))
    c, w = pyramid[-1]
    value = c / np.maximum(w, 1e-4)
    for c, w in reversed(pyramid[:-1]):
        up = cv2.pyrUp(value, dstsize=(c.shape[1], c.shape[0]))
        trust = np.minimum(w * 4.0, 1.0)
        value = up + trust * (c / np.maximum(w, 1e-4) - up)
    return value


def fill_holes(rgb: np.ndarray, hole: np.ndarray) -> None:
    """Fill ``hole`` of ``rgb`` in place from the pixels around it.

    A push-pull (normalised convolution) pyramid at half resolution, over the
    hole's bounding box: as good as OpenCV's Telea inpainting on text-shaped
    holes, several times cheaper, and smooth, which a fill under text should be.
    """
    ys, xs = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    if ys.size == 0:
        return
    h, w = hole.shape
    pad = 24  # context for the pyramid's coarse levels
    y1, y2 = max(0, ys[0] - pad) // 2 * 2, min(h, ys[-1] + pad + 1)
    x1, x2 = max(0, xs[0] - pad) // 2 * 2, min(w, xs[-1] + pad + 1)
    part, mask = rgb[y1:y2, x1:x2], hole[y1:y2, x1:x2]
    ph, pw = mask.shape
    known = np.zeros_like(part)
    cv2.copyTo(part, (~mask).view(np.uint8), known)
    weight = np.where(mask, 0, 255).astype(np.uint8)
    size = (max(1, pw // 2), max(1, ph // 2))
    # Area averaging of (value x weight) and of weight keeps partly known pixels exact.
    colour = cv2.resize(known, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    w1 = cv2.resize(weight, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    value = _push_pull(colour, cv2.merge([w1, w1, w1]))
    up = cv2.resize(value, (pw, ph), interpolation=cv2.INTER_LINEAR)
    filled = np.clip(up + 0.5, 0, 255).astype(np.uint8)
    cv2.copyTo(filled, mask.view(np.uint8), part)


def _level_with_surroundings(rgb: np.ndarray, recovered: np.ndarray, hidden: np.ndarray) -> None:
    """Shift the colour of pixels recovered from an overlay, per channel, by their median
    difference from a fill of the picture around them, in place; not their brightness.

    4:2:0 chroma holds one sample per 2x2 pixels, mixing logo and picture at the logo's
    edges, which leaves recovered pixels a few levels off in colour as a whole on
    saturated dark colours; a few levels in the shape of letters still reads. The
    median over the whole logo ignores the picture's own detail. Luma has a sample per
    pixel and comes off exactly once the opacity is right, while the fill, a guess
    from round the logo, is off wherever the picture has structure at the logo's
    scale: on a still shot of letters on a dark band between bright blind slats it was
    2-4 grey levels too bright in every frame, and the shift drew the letters back in.
    """
    rows, cols = np.nonzero(recovered.any(axis=1))[0], np.nonzero(recovered.any(axis=0))[0]
    pad = 16
    y1, y2 = max(0, rows[0] - pad), min(rgb.shape[0], rows[-1] + pad + 1)
    x1, x2 = max(0, cols[0] - pad), min(rgb.shape[1], cols[-1] + pad + 1)
    part = rgb[y1:y2, x1:x2]
    inside = recovered[y1:y2, x1:x2]
    reference = part.copy()
    fill_holes(reference, inside | hidden[y1:y2, x1:x2])
    diff = part[inside].astype(np.float32) - reference[inside].astype(np.float32)
    offset = np.clip(np.median(diff, axis=0), -12.0, 12.0)
    offset -= float(LUMA @ offset)  # the colour of the shift, not its brightness
    if np.abs(offset).max() < 1.0:
        return
    levelled = np.clip(part.astype(np.float32) - offset + 0.5, 0, 255).astype(np.uint8)
    cv2.copyTo(levelled, inside.view(np.uint8), part)


def repair_band(rgb: np.ndarray, doubt: np.ndarray, hidden: np.ndarray,
                bias: np.ndarray | None = None) -> None:
    """Blend the pixels recovered with a doubtful opacity (a stroke's outline, its
    anti-aliased rim) toward a fill from their well-recovered neighbours, in place.

    ``doubt`` is the fill's weight per pixel (:func:`facecast.cleanup.logo._doubt`);
    the fill is harmonic across the doubted pixels and ``hidden`` ones (to be filled
    later), from the picture outside the logo and the strokes' recovered inside. A band
    a pixel or two wide filled so is invisible where an outline 10 grey levels dark is
    not.
    """
    band = doubt > DOUBT_MIN
    rows, cols = np.nonzero(band.any(axis=1))[0], np.nonzero(band.any(axis=0))[0]
    if rows.size == 0:
        return
    h, w = band.shape
    y1, y2 = max(0, rows[0] - 2), min(h, rows[-1] + 3)
    x1, x2 = max(0, cols[0] - 2), min(w, cols[-1] + 3)
    part = rgb[y1:y2, x1:x2]
    source = part.astype(np.float32)
    fill = harmonic_fill(source, (band | hidden)[y1:y2, x1:x2])
    if bias is not None:
        fill -= bias[y1:y2, x1:x2, None]
    weight = np.where(band, doubt, 0.0)[y1:y2, x1:x2, None].astype(np.float32)
    out = np.clip(source + weight * (fill - source) + 0.5, 0, 255).astype(np.uint8)
    cv2.copyTo(out, band[y1:y2, x1:x2].view(np.uint8), part)


class RegionFiller:
    """The per-region state of the fill: analysis of new frames, memories, the fill itself."""

    def __init__(self, region: Region, overlays: Sequence[OverlayModel],
                 stroke: StrokeParams, params: FillParams,
                 still: Sequence[tuple[Area, np.ndarray]] = ()) -> None:
        self.region = region
        self.params = params
        self.stroke = stroke
        h, w = region.shape
        self.subtitle_area = np.zeros((h, w), bool)
        for area in region.areas:
            if area.kind == "subtitle":
                x1, y1, x2, y2 = region.local(area)
                self.subtitle_area[y1:y2, x1:x2] = True
        # Stroke-like parts of the picture itself (textmask.still_structures) are not text.
        for area, structures in still:
            x1, y1, x2, y2 = region.local(area)
            self.subtitle_area[y1:y2, x1:x2] &= ~structures
        self.has_text = bool(self.subtitle_area.any())
        # Overlay models cut to this region, with where they sit in it.
        self.overlays: list[tuple[tuple[slice, slice], OverlayModel]] = []
        self.fixed = np.zeros((h, w), bool)
        for model in overlays:
            if model.kind == "none":
                continue
            mh, mw = model.shape
            ox, oy = model.x1 - region.x1, model.y1 - region.y1
            rx1, ry1 = max(0, ox), max(0, oy)
            rx2, ry2 = min(w, ox + mw), min(h, oy + mh)
            if rx2 <= rx1 or ry2 <= ry1:
                continue
            dst = (slice(ry1, ry2), slice(rx1, rx2))
            part = model.crop(slice(ry1 - oy, ry2 - oy), slice(rx1 - ox, rx2 - ox))
            self.overlays.append((dst, part))
            self.fixed[dst] |= part.fixed
        # Semi-transparent overlays come off the YUV planes (see PlaneInversion).
        self.inversions: list[PlaneInversion] = []
        self.inverted = np.zeros((h, w), bool)
        for dst, part in self.overlays:
            alpha = np.zeros((h, w), np.float32)
            alpha[dst] = np.where(part.fixed, 0.0, part.alpha)
            for s in (1, 2):  # 4:4:4 and 4:2:0; the frames say which applies
                inv = PlaneInversion.build(alpha, part.colour, s)
                if inv is not None:
                    self.inversions.append(inv)
                    if s == 1:
                        self.inverted |= inv.inverted((h, w))
        # How far each recovered pixel is better filled from its neighbours.
        self.doubt = np.zeros((h, w), np.float32)
        for dst, part in self.overlays:
            if part.doubt is not None:
                self.doubt[dst] = np.maximum(self.doubt[dst],
                                             np.where(part.fixed, 0.0, part.doubt))
        self.doubt[~self.inverted] = 0.0
        self.fill_bias = np.zeros((h, w), np.float32)
        for dst, part in self.overlays:
            if part.fill_bias is not None:
                self.fill_bias[dst] += np.where(part.fixed, 0.0, part.fill_bias)
        self.memory = np.zeros((h, w, 3), np.uint8)
        self.staleness = np.full((h, w), NEVER, np.float32)
        self.previous: np.ndarray | None = None
        self.previous_synth = np.zeros((h, w), bool)
        self._offset = np.zeros(2)  # the picture's accumulated motion, sub-pixel
        self._rounded: np.ndarray = np.zeros(2, int)

    def analyse(self, frame: YuvFrame) -> _Strip:
        r = self.region
        s = frame.sub
        for inv in self.inversions:
            if inv.sub == s:
                inv.apply(frame.y[r.y1:r.y2, r.x1:r.x2],
                          frame.u[r.y1 // s:r.y2 // s, r.x1 // s:r.x2 // s],
                          frame.v[r.y1 // s:r.y2 // s, r.x1 // s:r.x2 // s])
        rgb = frame.crop_rgb(r.x1, r.y1, r.x2, r.y2)
        y = frame.y[r.y1:r.y2, r.x1:r.x2].copy()
        inverted = self.inverted
        candidates = None
        if self.has_text:
            candidates = stroke_candidates(y, self.stroke) & self.subtitle_area
        return _Strip(rgb, y, inverted, candidates)

    def finish_mask(self, strip: _Strip, before: Sequence[_Strip | None],
                    after: Sequence[_Strip | None]) -> None:
        """Set the mask of ``strip`` from its candidates and its neighbours' (``None``
        past either end of the video)."""
        if strip.candidates is None:
            strip.mask = self.fixed.copy()
            return
        strip.mask = text_mask(strip.candidates,
                               [None if s is None else s.candidates for s in before],
                               [None if s is None else s.candidates for s in after],
                               self.stroke) | self.fixed

    def measure_change(self, strip: _Strip, previous: _Strip | None) -> None:
        """How the picture moved since ``previous`` (a shift, when it pans) and how much it
        changed beyond that, locally, above the codec's noise floor."""
        assert strip.mask is not None
        if previous is None:
            strip.change = np.zeros(strip.y.shape, np.float32)
            return
        assert previous.mask is not None
        h, w = strip.y.shape
        # At half resolution: the change is a local average anyway, and this is 4x cheaper.
        half = (max(1, w // 2), max(1, h // 2))
        if self.params.motion and self.has_text and min(h, w) >= 32:
            strip.shift = self._motion(strip, previous)
        dx, dy = strip.shift
        unseen = shifted(previous.mask, dx, dy, True)
        if strip.motion != (0.0, 0.0):
            # Compare with the previous frame moved by the exact (sub-pixel) motion: what
            # is left is change of the picture itself.
            fx, fy = strip.motion
            warp = np.array([[1, 0, fx], [0, 1, fy]], np.float32)
            before = cv2.warpAffine(previous.y, warp, (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        else:
            before = previous.y
        diff = cv2.resize(cv2.absdiff(strip.y, before), half,
                          interpolation=cv2.INTER_AREA).astype(np.float32)
        hidden = (strip.mask | unseen).view(np.uint8)
        weight = 1.0 - cv2.resize(hidden, half, interpolation=cv2.INTER_AREA).astype(np.float32)
        side = max(3, self.params.kernel // 2) | 1
        k = (side, side)
        total = cv2.boxFilter(diff * weight, -1, k, normalize=False,
                              borderType=cv2.BORDER_REFLECT)
        count = cv2.boxFilter(weight, -1, k, normalize=False, borderType=cv2.BORDER_REFLECT)
        local = total / np.maximum(count, 1.0)
        sample = diff[weight > 0.99][::3]
        # The codec's noise on a still picture: a little over the median difference, capped
        # so a picture that moves everywhere still counts as moving.
        floor = float(np.clip(1.25 * np.median(sample), 1.0, 4.0)) if sample.size else 4.0
        change = np.maximum(local - floor, 0.0)
        change[count < 0.05 * k[0] * k[1]] = UNKNOWN_CHANGE
        strip.change = cv2.resize(change, (w, h), interpolation=cv2.INTER_NEAREST)

    def _motion(self, strip: _Strip, previous: _Strip) -> tuple[int, int]:
        """The whole-pixel shift of the picture since ``previous`` (0, 0 unless it pans).

        Corners tracked (pyramidal Lucas-Kanade) from the previous frame, away
        from any masked pixel; their median move counts when most of them agree
        (a pan, not a speaker moving in front of a still background).
        Sub-pixel steps add up until they make a whole pixel.
        """
        assert strip.mask is not None and previous.mask is not None
        # Tracked at half resolution (Lucas-Kanade stays sub-pixel there) for speed.
        h, w = strip.y.shape
        half = (w // 2, h // 2)
        cur = cv2.resize(strip.y, half, interpolation=cv2.INTER_AREA)
        prev = cv2.resize(previous.y, half, interpolation=cv2.INTER_AREA)
        hidden = cv2.resize((strip.mask | previous.mask).view(np.uint8), half,
                            interpolation=cv2.INTER_AREA)
        allowed = cv2.erode(np.where(hidden > 0, 0, 255).astype(np.uint8), _NEAR3)
        points = cv2.goodFeaturesToTrack(prev, 120, 0.01, 4, mask=allowed, blockSize=3)
        if points is None or len(points) < MIN_TRACKS:
            return 0, 0
        moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, points, None,
                                                    winSize=(11, 11), maxLevel=2)
        d = 2.0 * (moved - points).reshape(-1, 2)[status.ravel() == 1]
        if len(d) < MIN_TRACKS:
            return 0, 0
        step = np.median(d, axis=0)
        if (np.abs(d - step).max(axis=1) < 0.5).mean() < 0.6:
            return 0, 0  # no single motion
        if np.abs(step).max() < 0.05:
            return 0, 0  # still (codec noise)
        strip.motion = (float(step[0]), float(step[1]))
        self._offset += step
        target = np.round(self._offset).astype(int)
        whole = target - self._rounded
        self._rounded = target
        return int(whole[0]), int(whole[1])

    def lookahead(self, strips: Sequence[_Strip], count: int
                  ) -> list[tuple[np.ndarray, np.ndarray, tuple[slice, slice]] | None]:
        """Backward memories (next visible value, change until then) for ``strips[:count]``.

        Worked out only over the box that the first ``count`` masks cover.
        """
        out: list[tuple[np.ndarray, np.ndarray, tuple[slice, slice]] | None] = [None] * count
        # Annotated: numpy 2's stubs read the strip's shape as one-dimensional.
        union: np.ndarray = np.zeros(strips[0].y.shape, bool)
        for strip in strips[:count]:
            assert strip.mask is not None
            union |= strip.mask
        rows, cols = np.nonzero(union.any(axis=1))[0], np.nonzero(union.any(axis=0))[0]
        if rows.size == 0:
            return out
        if any(s.shift != (0, 0) for s in strips):
            # The picture pans: what is seen later comes from elsewhere in the strip.
            rows, cols = np.arange(union.shape[0]), np.arange(union.shape[1])
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        bh, bw = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
        value = np.zeros((bh, bw, 3), np.uint8)
        stale = np.full((bh, bw), NEVER, np.float32)
        first = min(i for i in range(count) if strips[i].mask.any())  # type: ignore[union-attr]
        for k in range(len(strips) - 1, first - 1, -1):
            if k < len(strips) - 1:
                nxt = strips[k + 1]
                assert nxt.mask is not None and nxt.change is not None
                hidden = nxt.mask[box]
                stale *= hidden  # visible in the next frame: nothing has changed since
                stale += nxt.change[box]
                cv2.copyTo(nxt.rgb[box], (~hidden).view(np.uint8), value)
                # Back into this frame's coordinates.
                sx, sy = nxt.shift
                value = shifted(value, -sx, -sy, 0)
                stale = shifted(stale, -sx, -sy, NEVER)
            if k < count and strips[k].mask[box].any():  # type: ignore[index]
                out[k] = (value.copy(), stale.copy(), box)
        return out

    def fill(self, strip: _Strip, ahead: tuple[np.ndarray, np.ndarray, tuple[slice, slice]] | None
             ) -> tuple[np.ndarray, np.ndarray]:
        """The cleaned strip and the pixels that differ from the source."""
        assert strip.mask is not None and strip.change is not None
        mask = strip.mask
        rgb = strip.rgb.copy()
        dx, dy = strip.shift
        if (dx, dy) != (0, 0):
            self.memory = shifted(self.memory, dx, dy, 0)
            self.staleness = shifted(self.staleness, dx, dy, NEVER)
            if self.previous is not None:
                self.previous = shifted(self.previous, dx, dy, 0)
                self.previous_synth = shifted(self.previous_synth, dx, dy, False)
        self.staleness += strip.change
        synth = strip.inverted
        if synth.any():
            _level_with_surroundings(rgb, synth, mask)
            repair_band(rgb, self.doubt, mask, self.fill_bias)
        if mask.any():
            stale = self.params.stale
            from_past = mask & (self.staleness < stale)
            if ahead is not None:
                value, ahead_stale, box = ahead
                from_future = np.zeros_like(mask)
                from_future[box] = mask[box] & (ahead_stale < stale) & (
                    ~from_past[box] | (ahead_stale < self.staleness[box]))
                from_past &= ~from_future
                cv2.copyTo(value, from_future[box].view(np.uint8), rgb[box])
            else:
                from_future = np.zeros_like(mask)
            cv2.copyTo(self.memory, from_past.view(np.uint8), rgb)
            hole = mask & ~from_past & ~from_future
            if hole.any():
                fill_holes(rgb, hole)
                synth = synth | hole
        if self.previous is not None and synth.any():
            still = synth & self.previous_synth & (strip.change < 0.5)
            if still.any():
                b = self.params.smooth
                blended = cv2.addWeighted(self.previous, b, rgb, 1.0 - b, 0.0)
                cv2.copyTo(blended, still.view(np.uint8), rgb)
        seen = ~mask
        cv2.copyTo(strip.rgb, seen.view(np.uint8), self.memory)
        self.staleness *= mask
        self.previous = rgb
        self.previous_synth = synth
        return rgb, mask | strip.inverted


class StreamCleaner:
    """Cleans a stream of frames, holding at most about two chunks of them.

    ``push`` frames in order; it returns the frames that are done (in order);
    ``flush`` at the end returns the rest.
    """

    def __init__(self, fillers: Sequence[RegionFiller], params: FillParams) -> None:
        self.fillers = list(fillers)
        self.params = params
        self.frames: dict[int, YuvFrame] = {}
        self.strips: list[dict[int, _Strip]] = [{} for _ in self.fillers]
        self.count = 0  # frames pushed
        self.masked = 0  # frames whose masks and changes are known
        self.done = 0  # frames handed back
        self.masked_pixels = 0
        self.text_frames = 0

    def push(self, frame: YuvFrame) -> list[YuvFrame]:
        i = self.count
        self.frames[i] = frame
        for filler, strips in zip(self.fillers, self.strips, strict=True):
            strips[i] = filler.analyse(frame)
        self.count += 1
        return self._advance(end=False)

    def flush(self) -> list[YuvFrame]:
        return self._advance(end=True)

    def _advance(self, end: bool) -> list[YuvFrame]:
        # Masks need the candidates of ``persist`` frames either side.
        k = self.params.persist
        while self.masked < self.count and (end or self.masked + k < self.count):
            j = self.masked
            for filler, strips in zip(self.fillers, self.strips, strict=True):
                before = [strips.get(i) for i in range(j - k, j)]
                after = [strips.get(i) for i in range(j + 1, j + k + 1)]
                filler.finish_mask(strips[j], before, after)
                filler.measure_change(strips[j], strips.get(j - 1))
            self.masked += 1
        out: list[YuvFrame] = []
        c = self.params.chunk
        while self.done < self.masked and (end or self.masked - self.done >= 2 * c):
            first = self.done
            last = min(self.masked, first + 2 * c)  # exclusive: the lookahead seen
            count = min(c, last - first) if not end else min(c, self.masked - first)
            per_region = []
            for filler, strips in zip(self.fillers, self.strips, strict=True):
                window = [strips[k] for k in range(first, last)]
                per_region.append(filler.lookahead(window, count))
            for n in range(count):
                j = first + n
                frame = self.frames.pop(j)
                any_text = False
                for r, (filler, strips) in enumerate(zip(self.fillers, self.strips,
                                                         strict=True)):
                    strip = strips[j]
                    rgb, changed = filler.fill(strip, per_region[r][n])
                    assert strip.mask is not None
                    if strip.mask.any() and (strip.mask & ~filler.fixed).any():
                        any_text = True
                    if changed.any():
                        frame.paste_rgb(filler.region.x1, filler.region.y1, rgb, changed)
                        self.masked_pixels += int(changed.sum())
                self.text_frames += int(any_text)
                out.append(frame)
                # Strips further back than the masks look are no longer read by anyone.
                for strips in self.strips:
                    strips.pop(j - k, None)
            self.done += count
        return out


def clean_frames(frames: Iterator[YuvFrame], cleaner: StreamCleaner) -> Iterator[YuvFrame]:
    """The frames of ``frames``, cleaned, in order."""
    for frame in frames:
        yield from cleaner.push(frame)
    yield from cleaner.flush()
