"""Finding burned-in subtitles and static watermarks without being told where they are.

One pass over the video, two kinds of evidence:

* Text boxes from OCR detection on frames sampled about twice a second. Boxes
  at one place whose edges stay put across the whole video (a high gradient
  coherence, see below) and that are there in most samples are static text:
  a watermark or logo. The other boxes are grouped into horizontal bands; a
  band with text in enough samples is a subtitle area, cut down to the pixels
  where stroke-like text was actually seen.
* Temporal statistics of downscaled frames sampled about five times a second:
  at each pixel the mean gradient vector over its mean gradient magnitude (1
  for an edge that never moves, near 0 for edges of a moving picture), and
  how often the picture around it changes (compared blurred, so film grain
  or sensor noise is no change). An overlay is where edges hold
  still while the picture around them keeps moving; this finds logos without
  text. (On a still shot nothing moves, so only text logos can be told from
  the scene there.)
* The temporal median of a few frames spread over the video, which takes out
  the picture's noise and anything passing by while a burned-in logo stays
  crisp. Static text must read as text there (three letters or digits or
  more, read with confidence): on a still shot everything holds still, so
  without this a flag's stars or a road sign would be a "logo". And OCR runs
  once more on the median's top and bottom quarters (where logos sit),
  enlarged, which finds a thin semi-transparent logo the detector misses at
  the frame's own scale (a 50% white logo over a white van on a still
  surveillance shot); text found there must also hold still across the OCR
  samples, so the ghost of changing subtitles in the median does not count.
* A translucent logo over a picture that moves with high contrast (black and
  white blocks) has edges that the picture's own outweigh in every sample, so
  they do not correlate between samples; text in (nearly) every sample that
  shows the same edges in the picture's temporal extremes (10th or 90th
  percentile) in the video's first and second halves, while the picture
  around it changes, is static too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from facecast.cleanup.areas import Area
from facecast.cleanup.io import iter_frames
from facecast.cleanup.ocr import TextBox, detect_text
from facecast.cleanup.textmask import stroke_candidates, stroke_params
from facecast.media.video_reader import VideoInfo

PathLike = str | os.PathLike[str]
Progress = Callable[[float, str], None]

STATS_WIDTH = 480  # px; logos of 2% of the frame width stay several pixels wide
THUMB_WIDTH = 320  # px; OCR samples kept this small to compare text boxes across time
MAX_OCR_SAMPLES = 600  # longer videos are sampled more sparsely: memory stays bounded
STATIC_SIMILARITY = 0.2  # a low percentile of edge correlations between samples (see _similarity)
STATIC_PRESENCE = 0.4  # share of OCR samples showing it
# A fixed overlay over a moving picture: in (nearly) every OCR sample, the same edges in the
# darkest (or brightest) the picture gets in the video's first and second halves, and the
# picture around it changing. (Subtitles: 0.04-0.45 on the bench's clips; logos 1.0.)
FIXED_PRESENCE = 0.8
FIXED_SIMILARITY = 0.8
FIXED_ACTIVITY = 0.1  # share of stats pairs the blurred picture changes around the box in
MEDIAN_SAMPLES = 20  # frames the temporal median is taken over
MEDIAN_WIDTH = 1280  # px; larger frames are kept downscaled for the median (memory)
MEDIAN_STRIP_HEIGHT = 320  # px the median's top and bottom quarters are enlarged to (1-4x)
MEDIAN_TEXT_HEIGHT = 48  # px a static text box is enlarged to for reading (1-4x)
MIN_CHARS = 3  # letters or digits read in a static text for it to count as a logo
MIN_READ_SCORE = 0.8  # recognition confidence of such a reading
ACTIVITY_BLUR = 1.5  # px (sigma) of blur before frames are compared for change
READ_SIDE = 2560  # px; the enlarged median crops stay under it (one OCR engine for them all)


@dataclass
class Finding:
    """Something detection found, for the report."""

    kind: str  # "subtitle" or "watermark"
    area: Area
    support: float  # share of sampled frames that showed it
    evidence: str
    # The area was drawn with room around what was found (text boxes grown for a frame or
    # an icon), so structures reaching its edge are the picture's, not the logo's.
    padded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "area": self.area.to_dict(),
                "support": round(self.support, 3), "evidence": self.evidence}


@dataclass
class Detection:
    subtitle_areas: list[Area] = field(default_factory=list)
    watermark_areas: list[Area] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ocr_samples: int = 0
    subtitle_times: list[float] = field(default_factory=list)  # OCR samples with subtitles

    def to_dict(self) -> dict[str, Any]:
        return {"subtitle_areas": [a.to_dict() for a in self.subtitle_areas],
                "watermark_areas": [a.to_dict() for a in self.watermark_areas],
                "findings": [f.to_dict() for f in self.findings],
                "ocr_samples": self.ocr_samples,
                "subtitle_samples": len(self.subtitle_times)}

    def replace(self, area: Area, by: Area | None) -> None:
        """Put ``by`` in place of the found ``area`` (None: it was not one after all)."""
        for areas in (self.subtitle_areas, self.watermark_areas):
            if area in areas:
                i = areas.index(area)
                if by is None:
                    del areas[i]
                else:
                    areas[i] = by
        for f in list(self.findings):
            if f.area == area:
                if by is None:
                    self.findings.remove(f)
                else:
                    f.area = by

    def padded(self, area: Area) -> bool:
        """Whether the found ``area`` was drawn with room around what was found there."""
        return any(f.area == area and f.padded for f in self.findings)

    def summary(self) -> str:
        if not self.findings:
            return "found no subtitles or watermarks"
        parts = []
        for f in self.findings:
            parts.append(f"{f.kind} at {f.area} ({f.evidence}, in {100 * f.support:.0f}% of "
                         "sampled frames)")
        return "found " + "; ".join(parts)


@dataclass
class _Stats:
    """Running sums over the downscaled stats samples."""

    gx: np.ndarray
    gy: np.ndarray
    magnitude: np.ndarray
    active: np.ndarray
    count: int = 0
    pairs: int = 0
    previous: np.ndarray | None = None

    @classmethod
    def empty(cls, h: int, w: int) -> _Stats:
        z = np.zeros((h, w), np.float32)
        return cls(z.copy(), z.copy(), z.copy(), z.copy())

    def add(self, y: np.ndarray) -> None:
        yf = y.astype(np.float32)
        gx = cv2.Sobel(yf, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(yf, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        self.gx += gx
        self.gy += gy
        self.magnitude += cv2.magnitude(gx, gy)
        # Change of the picture, not of its grain: film grain or sensor noise changes every
        # pixel in every frame, and unblurred it made a still wall "a moving picture", so
        # the wall's own edges passed for overlays held still over it.
        smooth = cv2.GaussianBlur(yf, (0, 0), ACTIVITY_BLUR)
        if self.previous is not None:
            self.active += (cv2.absdiff(smooth, self.previous) > 6.0).astype(np.float32)
            self.pairs += 1
        self.previous = smooth
        self.count += 1

    def coherence(self) -> np.ndarray:
        return cv2.magnitude(self.gx, self.gy) / np.maximum(self.magnitude, 1e-3)

    def activity(self, box: tuple[int, int, int, int], scale: float) -> float:
        """Share of sample pairs in which the blurred picture changed, over ``box`` (frame
        pixels) and 8 stats pixels round it."""
        if self.pairs < 1:
            return 0.0
        h, w = self.active.shape
        x1, y1, x2, y2 = (round(v * scale) for v in box)
        x1, y1, x2, y2 = max(0, x1 - 8), max(0, y1 - 8), min(w, x2 + 8), min(h, y2 + 8)
        if x2 <= x1 or y2 <= y1:
            return 0.0
        return float(self.active[y1:y2, x1:x2].mean()) / self.pairs

    def still_edges(self) -> np.ndarray:
        """Mean gradient strength of edges that hold still (grey levels per pixel)."""
        return cv2.magnitude(self.gx, self.gy) / max(self.count, 1)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Cluster:
    members: list[tuple[int, TextBox]]  # (OCR sample, box)
    samples: set[int]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The box around most of its members (the union, less outliers)."""
        arr = np.array([b.box for _, b in self.members])
        lo = np.percentile(arr[:, :2], 10, axis=0)
        hi = np.percentile(arr[:, 2:], 90, axis=0)
        return (int(lo[0]), int(lo[1]), int(round(hi[0])), int(round(hi[1])))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box: OCR sometimes boxes a logo's text, sometimes the
    text and its frame; both are the same thing."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def _cluster(found: list[tuple[int, TextBox]]) -> list[_Cluster]:
    clusters: list[_Cluster] = []
    for sample, box in found:
        best, best_iou = None, 0.6
        for c in clusters:
            iou = _overlap(c.box, box.box)
            if iou > best_iou:
                best, best_iou = c, iou
        if best is None:
            clusters.append(_Cluster([(sample, box)], {sample}))
        else:
            best.members.append((sample, box))
            best.samples.add(sample)
    return clusters


def detect_areas(video: PathLike, info: VideoInfo, progress: Progress | None = None, *,
                 ocr_per_second: float = 2.0, stats_per_second: float = 5.0) -> Detection:
    """Subtitle and watermark areas of ``video``, found from its frames."""
    report = progress or (lambda _f, _s: None)
    width, height = info.width, info.height
    fps = info.fps if info.fps > 0 else 25.0
    ocr_stride = max(1, round(fps / ocr_per_second), -(-max(1, info.frames) // MAX_OCR_SAMPLES))
    stats_stride = max(1, round(fps / stats_per_second))
    scale = min(1.0, STATS_WIDTH / width)
    sw, sh = max(8, round(width * scale)), max(8, round(height * scale))
    stats = _Stats.empty(sh, sw)
    light = stroke_params(height, "light")
    dark = stroke_params(height, "dark")
    strokes = {"light": np.zeros((height, width), np.uint16),
               "dark": np.zeros((height, width), np.uint16)}
    found: list[tuple[int, TextBox]] = []
    times: list[float] = []
    thumbs: list[np.ndarray] = []
    tscale = min(1.0, THUMB_WIDTH / width)
    tsize = (max(8, round(width * tscale)), max(8, round(height * tscale)))
    total = max(1, info.frames)
    median = _Median(min(1.0, MEDIAN_WIDTH / width), width, height)
    for frame in iter_frames(video):
        i = frame.index
        if i % stats_stride == 0:
            stats.add(cv2.resize(frame.y, (sw, sh), interpolation=cv2.INTER_AREA))
        if i % ocr_stride == ocr_stride // 2:
            rgb = frame.crop_rgb(0, 0, width - width % frame.sub, height - height % frame.sub)
            sample = len(times)
            times.append(frame.time)
            thumbs.append(cv2.resize(frame.y, tsize, interpolation=cv2.INTER_AREA))
            median.add(frame.y)
            boxes = detect_text(rgb)
            if boxes:
                inside = np.zeros((height, width), bool)
                for b in boxes:
                    found.append((sample, b))
                    inside[b.y1:b.y2, b.x1:b.x2] = True
                for name, params in (("light", light), ("dark", dark)):
                    strokes[name] += stroke_candidates(frame.y, params) & inside
            report(min(1.0, i / total), "finding subtitles and logos")
    detection = Detection(ocr_samples=len(times))
    if not times:
        return detection
    clusters = _cluster(found)
    static: list[_Cluster] = []
    moving: list[tuple[int, TextBox]] = []
    for c in clusters:
        presence = len(c.samples) / len(times)
        if presence >= STATIC_PRESENCE and _similarity(c, thumbs, tscale) >= STATIC_SIMILARITY:
            static.append(c)
        elif (presence >= FIXED_PRESENCE and stats.activity(c.box, scale) >= FIXED_ACTIVITY
              and median.fixed(c.box) >= FIXED_SIMILARITY):
            # Edges of a translucent logo over a picture that moves with high contrast
            # (black and white blocks) are outweighed in every sample by the picture's own,
            # so the samples' edges do not correlate (0.07); what holds is the logo's trace
            # in the picture's extremes (a white logo at 55% keeps each pixel >= 140).
            static.append(c)
        else:
            moving.extend(c.members)
    polarity = "dark" if strokes["dark"].sum() > 2 * strokes["light"].sum() else "light"
    _subtitle_bands(detection, moving, times, strokes[polarity], width, height)
    for c in static:
        box = median.legible(c.box)
        if box is None:
            continue  # holds still, but is no text: on a still shot, the picture's own
        area = _static_text_area(box, width, height)
        _add_watermark(detection, area, len(c.samples) / len(times), "static text",
                       padded=True)
    for area in _still_overlays(stats, scale, width, height):
        _add_watermark(detection, area, 1.0, "edges that hold still over a moving picture")
    for area in _median_text(median, thumbs, tscale, detection):
        _add_watermark(detection, area, 1.0,
                       "still text in the median of the frame's top or bottom quarter",
                       padded=True)
    return detection


def _static_text_area(box: tuple[int, int, int, int], width: int, height: int) -> Area:
    """The area to search for a logo around its text box ``box``."""
    x1, y1, x2, y2 = box
    h = y2 - y1
    # Room for a frame or an icon beside the text; the overlay model keeps to the logo.
    return Area(max(0, x1 - round(0.6 * h)), max(0, y1 - round(0.35 * h)),
                min(width, x2 + round(0.6 * h)), min(height, y2 + round(0.35 * h)),
                "watermark")


class _Median:
    """Luma frames sampled across the video (downscaled by ``scale``) and their temporal
    median, worked out only where asked for."""

    def __init__(self, scale: float, width: int, height: int) -> None:
        self.scale, self.width, self.height = scale, width, height
        self.size = (max(8, round(width * scale)), max(8, round(height * scale)))
        self.frames: list[np.ndarray] = []
        self.every = 1  # keep every so many frames offered
        self.offered = 0

    def add(self, y: np.ndarray) -> None:
        """Offer a frame's luma: kept so that between MEDIAN_SAMPLES and twice as many
        frames, evenly spread, are held however long the video turns out to be."""
        keep = self.offered % self.every == 0
        self.offered += 1
        if not keep:
            return
        if self.scale < 1.0:
            y = cv2.resize(y, self.size, interpolation=cv2.INTER_AREA)
        self.frames.append(y.copy())
        if len(self.frames) >= 2 * MEDIAN_SAMPLES:
            self.frames = self.frames[::2]
            self.every *= 2

    def crop(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """The median over ``box`` (frame pixels), at the median's scale."""
        x1, y1, x2, y2 = (round(v * self.scale) for v in box)
        w, h = self.size
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, max(x1 + 1, x2)), min(h, max(y1 + 1, y2))
        return np.median(np.stack([f[y1:y2, x1:x2] for f in self.frames]), axis=0
                         ).astype(np.uint8)

    def read(self, box: tuple[int, int, int, int], factor: float) -> list[TextBox]:
        """Legible text in the median over ``box`` enlarged by ``factor``: boxes in frame
        pixels, each with at least MIN_CHARS letters or digits read with confidence."""
        crop = self.crop(box)
        factor = float(np.clip(min(factor, READ_SIDE / max(crop.shape)), 1.0, 4.0))
        big = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        rgb = cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)
        k = factor * self.scale
        out = []
        for b in detect_text(rgb, side=READ_SIDE, read=True, min_score=MIN_READ_SCORE):
            if sum(ch.isalnum() for ch in b.text) < MIN_CHARS:
                continue
            out.append(TextBox(box[0] + int(b.x1 / k), box[1] + int(b.y1 / k),
                               min(self.width, box[0] + int(np.ceil(b.x2 / k))),
                               min(self.height, box[1] + int(np.ceil(b.y2 / k))),
                               b.score, b.text))
        return out

    def fixed(self, box: tuple[int, int, int, int]) -> float:
        """How alike the box's temporal low and high percentiles (the darkest and the
        brightest the picture gets at each pixel) are between the first and the second half
        of the video: the edges of a fixed overlay show in both halves whatever moves under
        it; a subtitle's lines differ between the halves, and a moving picture's extremes
        too. (On a still shot everything shows alike: see ``moving``.)"""
        if len(self.frames) < 6:
            return 0.0
        x1, y1, x2, y2 = (round(v * self.scale) for v in box)
        w, h = self.size
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 4 or y2 - y1 < 4:
            return 0.0
        stack = np.stack([f[y1:y2, x1:x2] for f in self.frames]).astype(np.float32)
        half = len(stack) // 2
        best = 0.0
        for q in (10, 90):  # a light overlay shows in the darkest, a dark one in the brightest
            fields = []
            for part in (stack[:half], stack[half:]):
                img = np.percentile(part, q, axis=0).astype(np.float32)
                v = np.concatenate([cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3).ravel(),
                                    cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3).ravel()])
                fields.append(v / (np.linalg.norm(v) + 1e-6))
            best = max(best, float(fields[0] @ fields[1]))
        return best

    def legible(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
        """``box`` widened to the readable text the median shows over it (with a margin
        around it), or None when it shows none there."""
        if len(self.frames) < 3:
            return box  # too few samples to tell: keep what the frames' own OCR found
        x1, y1, x2, y2 = box
        m = max(4, (y2 - y1) // 2)
        grown = (max(0, x1 - m), max(0, y1 - m), min(self.width, x2 + m),
                 min(self.height, y2 + m))
        found = [b.box for b in self.read(grown, MEDIAN_TEXT_HEIGHT
                                          / max(1.0, (y2 - y1) * self.scale))
                 if _overlap(b.box, box) > 0.3]
        if not found:
            return None
        # The median often reads more of a faint logo than a single frame showed.
        return (min(x1, *(b[0] for b in found)), min(y1, *(b[1] for b in found)),
                max(x2, *(b[2] for b in found)), max(y2, *(b[3] for b in found)))


def _median_text(median: _Median, thumbs: list[np.ndarray], tscale: float,
                 detection: Detection) -> list[Area]:
    """Logo areas from text read in the temporal median of the top and bottom quarters of
    the frame, where nothing else found one already."""
    out: list[Area] = []
    if len(thumbs) < 2 or len(median.frames) < 3:
        return out
    width, height = median.width, median.height
    strip = max(2, height // 4)
    every = list(range(len(thumbs)))
    for top in (0, height - strip):
        if any(a.y1 < top + strip and a.y2 > top for a in detection.watermark_areas):
            continue  # a logo is known here already; a second one is rare, reading is not free
        factor = MEDIAN_STRIP_HEIGHT / (strip * median.scale)
        for b in median.read((0, top, width, top + strip), factor):
            if b.width < 1.5 * b.height or b.height > 0.15 * height:
                continue
            area = _static_text_area(b.box, width, height)
            if any(_iou(area.box, a.box) > 0 for a in detection.watermark_areas):
                continue  # found by the frames' own OCR or by still edges
            # Text of the median that is not there, the same, in the frames (the ghost of
            # changing subtitles) is not a logo.
            cluster = _Cluster([(s, b) for s in every], set(every))
            if _similarity(cluster, thumbs, tscale) < STATIC_SIMILARITY:
                continue
            out.append(area)
    return out


def _similarity(cluster: _Cluster, thumbs: list[np.ndarray], scale: float) -> float:
    """How alike the edges in the cluster's box are between its samples (a low percentile
    of their pairwise correlations)."""
    x1, y1, x2, y2 = (round(v * scale) for v in cluster.box)
    if x2 - x1 < 3 or y2 - y1 < 3:
        return 0.0
    samples = sorted(cluster.samples)
    if len(samples) < 2:
        return 0.0
    picks = [samples[i] for i in np.linspace(0, len(samples) - 1, min(24, len(samples)))
             .round().astype(int)]
    fields = []
    for s in picks:
        crop = thumbs[s][y1:y2, x1:x2].astype(np.float32)
        # Horizontal gradients only: lines of text share their baseline and x-height (the
        # vertical gradients) whatever they say; their letters' strokes differ.
        v = cv2.Sobel(crop, cv2.CV_32F, 1, 0, ksize=3).ravel()
        fields.append(v / (np.linalg.norm(v) + 1e-6))

    # Text that never changes correlates between any two samples; subtitles do not
    # between samples of different lines, so a low percentile of all pairs tells them apart.
    stack = np.stack(fields)
    pairs = stack @ stack.T
    upper = pairs[np.triu_indices(len(fields), k=1)]
    return float(np.percentile(upper, 20))


def _subtitle_bands(detection: Detection, boxes: list[tuple[int, TextBox]], times: list[float],
                    strokes: np.ndarray, width: int, height: int) -> None:
    """Group moving text boxes into horizontal bands; keep those seen often enough."""
    usable = [(s, b) for s, b in boxes
              if 0.012 * height <= b.height <= 0.2 * height and b.width >= b.height]
    if not usable:
        return
    usable.sort(key=lambda sb: (sb[1].y1 + sb[1].y2) / 2)
    bands: list[list[tuple[int, TextBox]]] = []
    for s, b in usable:
        if bands:
            last = bands[-1]
            top = min(x.y1 for _, x in last)
            bottom = max(x.y2 for _, x in last)
            overlap = min(bottom, b.y2) - max(top, b.y1)
            if overlap > 0.3 * b.height:
                last.append((s, b))
                continue
        bands.append([(s, b)])
    n = len(times)
    candidates = []
    for band in bands:
        samples = {s for s, _ in band}
        support = len(samples) / n
        centre = np.mean([(b.y1 + b.y2) / 2 for _, b in band]) / height
        # Subtitles sit low in the frame; text elsewhere must be there more often.
        if len(samples) >= 2 and (support >= 0.1 if centre > 0.5 else support >= 0.3):
            candidates.append((support, samples, band))
    candidates.sort(key=lambda c: -c[0])
    for support, samples, band in candidates[:2]:
        x1 = min(b.x1 for _, b in band)
        y1 = min(b.y1 for _, b in band)
        x2 = max(b.x2 for _, b in band)
        y2 = max(b.y2 for _, b in band)
        # Cut the band down to the rows where stroke-like pixels were seen often (the
        # text, not the picture's highlights around it), and to the columns where any were:
        # the ends of the longest lines show up in few samples.
        seen = strokes[y1:y2, x1:x2].astype(np.float32)
        rows_profile, cols_profile = seen.sum(axis=1), seen.sum(axis=0)
        if np.max(rows_profile) > 0:
            rows = np.nonzero(rows_profile >= 0.05 * np.max(rows_profile))[0]
            cols = np.nonzero(cols_profile > 0)[0]
            pad = 2  # the text mask grows past the area by itself; only strokes must be in
            x1, x2 = max(0, x1 + cols[0] - pad), min(width, x1 + cols[-1] + 1 + pad)
            y1, y2 = max(0, y1 + rows[0] - pad), min(height, y1 + rows[-1] + 1 + pad)
        area = Area(int(x1), int(y1), int(x2), int(y2), "subtitle")
        detection.subtitle_areas.append(area)
        detection.findings.append(Finding("subtitle", area, support, "text that changes"))
        detection.subtitle_times.extend(times[s] for s in sorted(samples))


def _add_watermark(detection: Detection, area: Area, support: float, evidence: str, *,
                   padded: bool = False) -> None:
    for i, other in enumerate(detection.watermark_areas):
        if _iou(other.box, area.box) > 0 or _contains(other, area) or _contains(area, other):
            ix1, iy1 = min(other.x1, area.x1), min(other.y1, area.y1)
            ix2, iy2 = max(other.x2, area.x2), max(other.y2, area.y2)
            merged = Area(ix1, iy1, ix2, iy2, "watermark")
            detection.watermark_areas[i] = merged
            for f in detection.findings:
                if f.area == other:
                    f.area = merged
                    f.padded = f.padded and padded  # room on every side only if both had
            return
    for sub in detection.subtitle_areas:
        ix = max(0, min(sub.x2, area.x2) - max(sub.x1, area.x1))
        iy = max(0, min(sub.y2, area.y2) - max(sub.y1, area.y1))
        if ix * iy > 0.3 * area.width * area.height:
            return  # part of a subtitle area, already cleaned as text
    detection.watermark_areas.append(area)
    detection.findings.append(Finding("watermark", area, support, evidence, padded))


def _contains(a: Area, b: Area) -> bool:
    return a.x1 <= b.x1 and a.y1 <= b.y1 and a.x2 >= b.x2 and a.y2 >= b.y2


def _still_overlays(stats: _Stats, scale: float, width: int, height: int) -> list[Area]:
    """Blobs of edges that hold still while the picture around them keeps changing."""
    if stats.pairs < 4:
        return []
    coherence = stats.coherence()
    still = stats.still_edges()
    activity = stats.active / stats.pairs
    # The picture around a pixel changes in most sample pairs: a moving scene there.
    around = cv2.blur(activity, (15, 15))
    evidence = (coherence > 0.9) & (still > 12.0) & (around > 0.5)
    evidence = cv2.morphologyEx(evidence.astype(np.uint8), cv2.MORPH_CLOSE,
                                np.ones((5, 5), np.uint8))
    n, _, boxes, _ = cv2.connectedComponentsWithStats(evidence, connectivity=8)
    sh, sw = evidence.shape
    out = []
    for k in range(1, n):
        x, y, w, h, area = boxes[k]
        if area < 12 or w > 0.4 * sw or h > 0.4 * sh or area > 0.05 * sw * sh:
            continue
        # Straight lines (letterbox edges, a frame's border) are not logos.
        if min(w, h) < 3:
            continue
        # Logos sit near an edge or corner of the frame; still edges mid-frame are the
        # picture's own (a slow pan over smooth shading looks still too).
        cx, cy = (x + w / 2) / sw, (y + h / 2) / sh
        if 0.25 < cx < 0.75 and 0.25 < cy < 0.75:
            continue
        pad = 3
        out.append(Area(max(0, int((x - pad) / scale)), max(0, int((y - pad) / scale)),
                        min(width, int((x + w + pad) / scale)),
                        min(height, int((y + h + pad) / scale)), "watermark"))
    return out
