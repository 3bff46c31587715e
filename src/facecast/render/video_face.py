"""Following one face through a video: per-frame landmarks, then smoothed over time.

Tracking finds the chosen face with the full-range detector (largest first, or
by index or a point), then runs the 478-point face mesh in video mode on a
square crop around it, so faces that are small in a large frame still get a
precise mesh and the mesh's own tracker carries the face from frame to frame.
The crop stays put while the face stays well inside it: a crop that moved
every frame would add its own steps to the landmark series.

Smoothing is offline over the whole series (landmarks are a few kilobytes per
frame): a zero-lag Savitzky-Golay fit per coordinate, short on the lips and
chin so fast openings and closures survive, longer on the rest of the face
where only mesh noise moves faster than the head. Short gaps where the mesh
lost the face are interpolated; every frame gets a presence weight that ramps
in and out at the ends of tracked stretches, so the dubbed mouth never pops on
or off in a single frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.signal import savgol_filter

from facecast.errors import InputError
from facecast.face.analysis import FaceAnalyzer, FaceBox
from facecast.render.rig import LOWER_INNER, LOWER_OUTER, MESH_POINTS, UPPER_INNER, UPPER_OUTER

# The mesh runs on a square crop this many face-box sides wide, resized to CROP_PX.
CROP_SCALE = 2.0
CROP_PX = 256
# The crop moves only when the face has drifted this far (fraction of the crop side)
# or changed size by this ratio.
CROP_SHIFT = 0.1
CROP_RESIZE = 0.15
# Without a face, the detector looks again only every this many frames: a faceless
# stretch would otherwise cost two full-frame detections per frame.
SEARCH_EVERY = 4
# Points the short (mouth) smoothing window applies to: lips, chin and jaw below the mouth.
_CHIN = (152, 148, 176, 149, 150, 136, 172, 58, 377, 400, 378, 379, 365, 397, 288,
         175, 199, 200, 18, 17, 83, 313, 201, 421, 208, 428, 32, 262, 171, 396, 140, 369)
MOUTH_POINTS = tuple(sorted(set(UPPER_OUTER + LOWER_OUTER + UPPER_INNER + LOWER_INNER + _CHIN)))


@dataclass(frozen=True)
class FaceChoice:
    """Which face speaks when there are several: ``index`` into the faces of the first
    frame that has any (largest first), or the face nearest ``point`` (pixels)."""

    index: int = 0
    point: tuple[float, float] | None = None


def _box_of(points: np.ndarray) -> FaceBox:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return FaceBox(float(x0), float(y0), float(x1 - x0), float(y1 - y0), 1.0)


def _overlap(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Landmarks of one chosen face, frame after frame (video-mode mesh). Not thread-safe."""

    def __init__(self, choice: FaceChoice | None = None) -> None:
        from facecast.face.landmarks import FaceMesh

        self.choice = choice or FaceChoice()
        self._analyzer = FaceAnalyzer()
        self._mesh = FaceMesh(
            static_image_mode=False, max_num_faces=1,
            min_detection_confidence=0.3, min_tracking_confidence=0.5,
        )
        self._target: FaceBox | None = None  # the chosen face's last known box
        self._locked = False  # a face has been chosen; from then on only it is followed
        self._crop: tuple[int, int, int] | None = None
        self._search_in = 0  # frames until the next search while no face is followed
        self.faces_at_lock: list[FaceBox] = []

    def close(self) -> None:
        self._analyzer.close()
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _choose(self, faces: list[FaceBox]) -> FaceBox | None:
        """The detection that is the chosen face (first lock, or the one we follow)."""
        if not faces:
            return None
        if not self._locked:
            self._locked = True
            self.faces_at_lock = faces
            if self.choice.point is not None:
                px, py = self.choice.point
                return min(faces, key=lambda f: np.hypot(f.center[0] - px, f.center[1] - py)
                           / max(f.w, 1.0))
            if self.choice.index >= len(faces):
                raise InputError(
                    f"face {self.choice.index} was asked for, but the first frame with faces "
                    f"shows {len(faces)} (numbered from 0, largest first)",
                    code="face_not_found", faces=len(faces))
            return faces[self.choice.index]
        assert self._target is not None
        best = max(faces, key=lambda f: _overlap(f, self._target))  # type: ignore[arg-type]
        if _overlap(best, self._target) > 0.2:
            return best
        # The face we follow is not among the detections: it is gone (or hidden) for now.
        return None

    def _set_crop(self, box: FaceBox, force: bool = False) -> None:
        side = max(round(max(box.w, box.h) * CROP_SCALE), 32)
        cx, cy = box.center
        crop = (round(cx - side / 2), round(cy - side / 2), side)
        if self._crop is not None and not force:
            ox, oy, os_ = self._crop
            moved = max(abs(ox + os_ / 2 - cx), abs(oy + os_ / 2 - cy)) / os_
            if moved < CROP_SHIFT and abs(side / os_ - 1.0) < CROP_RESIZE:
                return
        self._crop = crop

    def _cut(self, rgb: np.ndarray) -> np.ndarray:
        assert self._crop is not None
        x0, y0, side = self._crop
        h, w = rgb.shape[:2]
        cut = rgb[max(0, y0): min(h, y0 + side), max(0, x0): min(w, x0 + side)]
        pad = (max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w))
        if any(pad):
            cut = cv2.copyMakeBorder(cut, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        interp = cv2.INTER_AREA if side > CROP_PX else cv2.INTER_LINEAR
        return cv2.resize(cut, (CROP_PX, CROP_PX), interpolation=interp)

    def _mesh_once(self, rgb: np.ndarray) -> np.ndarray | None:
        found = self._mesh.process(self._cut(rgb))
        if not found:
            return None
        assert self._crop is not None
        x0, y0, side = self._crop
        pts = found[0][:MESH_POINTS, :2].astype(np.float32) * side
        pts += np.array([x0, y0], np.float32)
        # A mesh whose nose is far from the face we follow found something else.
        if self._target is not None:
            nx, ny = pts[1]
            t = self._target
            if not (t.x - 0.3 * t.w <= nx <= t.x + 1.3 * t.w
                    and t.y - 0.3 * t.h <= ny <= t.y + 1.3 * t.h):
                return None
        return pts

    def _acquire(self, rgb: np.ndarray) -> bool:
        box = self._choose(self._analyzer.detect(rgb))
        if box is None:
            return False
        self._target = box
        self._set_crop(box, force=True)
        return True

    def _lost(self) -> None:
        self._crop = None
        self._search_in = SEARCH_EVERY - 1

    def track(self, rgb: np.ndarray) -> np.ndarray | None:
        """The chosen face's 468 mesh points (pixels) in this frame, or None without it."""
        if self._crop is None:
            if self._search_in > 0:
                self._search_in -= 1
                return None
            if not self._acquire(rgb):
                self._lost()
                return None
        pts = self._mesh_once(rgb)
        if pts is None:
            # Lost: look for the face again before giving up on this frame.
            if not self._acquire(rgb):
                self._lost()
                return None
            pts = self._mesh_once(rgb)
            if pts is None:
                self._lost()
                return None
        self._target = _box_of(pts)
        self._set_crop(self._target)
        return pts


# --------------------------------------------------------------------------- smoothing

# Savitzky-Golay windows (frames at 25 fps; scaled with the frame rate) and order.
MOUTH_WINDOW_S = 0.0
FACE_WINDOW_S = 0.36
SG_ORDER = 2
MAX_GAP_S = 0.32  # interpolate over mesh drop-outs up to this long
RAMP_S = 0.16  # the dubbed mouth fades in / out over this at the ends of tracked stretches
MIN_RUN_S = 0.24  # tracked stretches shorter than this are left undubbed


def _odd_window(seconds: float, fps: float, n: int) -> int:
    w = max(3, int(round(seconds * fps)) | 1)
    return min(w, n if n % 2 else n - 1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each stretch of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def fill_gaps(points: np.ndarray, valid: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation of ``points`` over invalid stretches of at most ``max_gap``
    frames that have valid frames on both sides; returns the new valid mask."""
    valid = valid.copy()
    for a, b in _runs(~valid):
        if a == 0 or b == len(valid) or b - a > max_gap:
            continue
        w = (np.arange(a, b) - (a - 1))[:, None, None] / float(b - (a - 1))
        points[a:b] = points[a - 1] * (1 - w) + points[b] * w
        valid[a:b] = True
    return valid


def smooth_landmarks(points: np.ndarray, valid: np.ndarray, fps: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed landmarks and a presence weight (0..1) per frame.

    ``points`` is ``(frames, 468, 2)``; frames where ``valid`` is False are ignored
    (their rows are filled by interpolation over short gaps, otherwise left as
    they are with presence 0).
    """
    points = points.astype(np.float32, copy=True)
    valid = fill_gaps(points, np.asarray(valid, bool), int(round(MAX_GAP_S * fps)))
    presence = np.zeros(len(points), np.float32)
    mouth = np.array(MOUTH_POINTS)
    face = np.setdiff1d(np.arange(points.shape[1]), mouth)
    ramp = max(1, int(round(RAMP_S * fps)))
    for a, b in _runs(valid):
        n = b - a
        if n < max(3, int(round(MIN_RUN_S * fps))):
            continue
        seg = points[a:b]
        for idx, seconds in ((mouth, MOUTH_WINDOW_S), (face, FACE_WINDOW_S)):
            if seconds <= 0:
                continue
            w = _odd_window(seconds, fps, n)
            if w > SG_ORDER + 1:
                seg[:, idx] = savgol_filter(seg[:, idx], w, SG_ORDER, axis=0, mode="interp")
        k = np.arange(n, dtype=np.float32)
        edge = np.minimum(k + 1, n - k)
        # A stretch that starts at the video's first frame (or ends at its last) needs no
        # fade there: nothing undubbed comes before (after) it.
        if a == 0:
            edge = np.where(k < n / 2, ramp + 1, edge)
        if b == len(points):
            edge = np.where(k >= n / 2, ramp + 1, edge)
        presence[a:b] = np.clip(edge / (ramp + 1), 0.0, 1.0)
    return points, presence
