"""The portrait animator: a still face + mouth and life tracks -> a stream of frames.

Set-up (once per portrait) builds the face rig, the warp mesh over the face
region, the mouth interior (real, from the stock bank) and, where the person
can be separated from the background, the head mover. Each frame then costs a
landmark pose, a piecewise-affine warp of the face region, the mouth interior and
the head transform; frames are yielded one at a time, so memory does not grow with the
length of the video. Frames are drawn two at a time (:func:`render_in_order`): the
encoder alone cannot keep the second core busy.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from facecast.motion.life import LifeTrack
from facecast.motion.track import CHANNELS, MouthTrack
from facecast.render.calibrate import JawCalibration, calibrate_jaw, moustache_points
from facecast.render.eyelid import EyelidPainter
from facecast.render.head import HeadMover
from facecast.render.own_mouth import closed_canvas, own_bank, shows_teeth
from facecast.render.rig import FACE_CHANNELS, MESH_POINTS, RIG_CHANNELS, FaceRig
from facecast.render.stock_mouth import StockPainter
from facecast.render.warp import MeshWarper, Region

_BLINK = (RIG_CHANNELS.index("blink_left"), RIG_CHANNELS.index("blink_right"))
_MOUTH = [RIG_CHANNELS.index(c) for c in CHANNELS]
_TEETH = RIG_CHANNELS.index("teeth")
_TONGUE = RIG_CHANNELS.index("tongue")
_JAW = RIG_CHANNELS.index("jaw")
_FACE = [RIG_CHANNELS.index(c) for c in FACE_CHANNELS]
CHIN_ROOM = 0.15  # IOD kept between the dropped chin and the warp region's bottom
# Frames drawn at once. One animator thread left a core half idle once the speech was
# recognised (at 512x512 a frame took about 4.6 CPU ms to draw and 3 to encode); most of a
# frame's drawing is OpenCV and NumPy, which let go of the GIL, so two threads share the
# cores. A frame depends only on its own channel values (no state is kept between frames),
# so frames drawn at once are the frames drawn one by one.
RENDER_THREADS = min(2, os.cpu_count() or 1)
# Frames asked for ahead of the one being handed on: each thread has the next at hand.
RENDER_AHEAD = 2 * RENDER_THREADS


def face_region(landmarks: np.ndarray, width: int, height: int) -> Region:
    """The landmarks' box, widened for the cheeks and lengthened below for the jaw drop."""
    pts = landmarks[:MESH_POINTS, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    fw, fh = x1 - x0, y1 - y0
    return Region(
        int(max(0, x0 - 0.12 * fw)),
        int(max(0, y0 - 0.04 * fh)),
        int(min(width, x1 + 0.12 * fw + 1)),
        int(min(height, y1 + 0.3 * fh + 1)),
    )


class PortraitAnimator:
    """Animates one portrait (an RGB canvas and its face landmarks in canvas pixels)."""

    def __init__(self, canvas: np.ndarray, landmarks: np.ndarray, *, head_motion: bool = True,
                 calibrate: bool = True, own_teeth: bool = True) -> None:
        """``own_teeth``: a portrait that smiles with its teeth showing keeps them as its
        mouth interior (False: every portrait is closed and given the stock interior)."""
        self.canvas = np.ascontiguousarray(canvas)
        h, w = canvas.shape[:2]
        # What the warp moves: the portrait, or where it smiles with its teeth showing,
        # the portrait with that open interior filled in from the lips (closing the mouth
        # would squeeze the teeth into stripes on the lips); the interior painter then
        # shows the portrait's own teeth (render/own_mouth.py).
        own = own_teeth and shows_teeth(self.canvas, landmarks)
        self.source = closed_canvas(self.canvas, landmarks) if own else self.canvas
        self.rig = FaceRig(landmarks, moustache_points(self.canvas, landmarks), open_rest=own)
        self.region = face_region(landmarks, w, h)
        self.warper = MeshWarper(landmarks[:MESH_POINTS, :2], self.region)
        # A chin that drops to within CHIN_ROOM of the region's still bottom (a portrait
        # cut off just under the chin) would squash the neck into a line: its drop, and
        # the jaw line's, are held short of that.
        fr = self.rig.frame
        room = (self.region.y1 - 1 - float(landmarks[152, 1])) / (fr.down[1] * fr.iod)
        self.rig.chin_room = max(room - CHIN_ROOM, 0.0)
        # The interior is real (the packaged stock bank); painted only as the fallback.
        self.painter = StockPainter(self.canvas, landmarks, self.rig.frame)
        if own and self.painter.stock is not None:
            self.painter.own = own_bank(self.canvas, landmarks, self.painter.stock.scale)
        self.lids = EyelidPainter(self.canvas, landmarks, self.rig.frame)
        pts = landmarks[:MESH_POINTS, :2]
        face_box = Region(*(int(v) for v in pts.min(axis=0)), *(int(v) for v in pts.max(axis=0)))
        chin = landmarks[152, :2]
        pivot = (float(chin[0]), float(chin[1] + 0.25 * face_box.height))
        self.head: HeadMover | None = (
            HeadMover.create(self.canvas, face_box, self.rig.frame.iod, pivot)
            if head_motion else None
        )
        # How far this face's mouth opens per unit jaw, measured as the lip-sync measure
        # sees it (render/calibrate.py); the jaw channel is scaled by the gain.
        self.calibration: JawCalibration | None = None
        if calibrate:
            self.calibration = calibrate_jaw(self.probe)
        self.rig.set_jaw_gain(self.calibration.gain if self.calibration else 1.0)

    def probe(self, jaw: float, gain: float = 1.0) -> np.ndarray:
        """The face alone posed at ``jaw`` with jaw gain ``gain`` (no blink or head
        motion): the region around the face, with room for a face detector to see the
        whole head. Leaves the rig's gain at ``gain``."""
        self.rig.set_jaw_gain(gain)
        values = np.zeros(len(RIG_CHANNELS), np.float32)
        values[_JAW] = jaw
        posed = self.rig.pose(values)
        r = self.region
        patch = self.warper.warp(self.source, self.warper.vertices(posed[:MESH_POINTS]))
        if patch is None:
            patch = self.source[r.slices].copy()
        self.painter.paint(patch, (r.x0, r.y0), posed, 0.0)
        h, w = self.canvas.shape[:2]
        mx, my = r.width // 2, r.height // 2
        x0, y0 = max(r.x0 - mx, 0), max(r.y0 - my, 0)
        x1, y1 = min(r.x1 + mx, w), min(r.y1 + my, h)
        view = self.canvas[y0:y1, x0:x1].copy()
        view[r.y0 - y0 : r.y1 - y0, r.x0 - x0 : r.x1 - x0] = patch
        return view

    def render(self, mouth: np.ndarray, blink: float, head: np.ndarray | None,
               face: np.ndarray | None = None) -> np.ndarray:
        """One frame for mouth channel values (``CHANNELS`` order), a blink, a head pose
        and, optionally, expression channel values (``FACE_CHANNELS`` order)."""
        values = np.zeros(len(RIG_CHANNELS), np.float32)
        values[_MOUTH] = mouth
        values[list(_BLINK)] = blink
        if face is not None:
            values[_FACE] = face
        posed = self.rig.pose(values)
        frame = self.canvas.copy()
        r = self.region
        patch = self.warper.warp(self.source, self.warper.vertices(posed[:MESH_POINTS]))
        if patch is None:  # nothing moved
            patch = self.source[r.slices].copy()
        self.painter.paint(patch, (r.x0, r.y0), posed, float(values[_TEETH]),
                           float(values[_TONGUE]))
        if blink > 0.0:  # the warp squashes an eye; the lids close it (nothing otherwise)
            self.lids.paint(patch, (r.x0, r.y0), posed, {"left": blink, "right": blink})
        frame[r.slices] = patch
        if self.head is not None and head is not None:
            self.head.apply(frame, *(float(v) for v in head))
        return frame

    def frames(self, mouth: MouthTrack, life: LifeTrack, *, threads: int = RENDER_THREADS
               ) -> Iterator[np.ndarray]:
        """Frames at ``mouth.fps`` (the life track must have the same rate and length),
        drawn ``threads`` at a time, in order."""

        def jobs() -> Iterator[tuple[Any, ...]]:
            for i in range(len(mouth)):
                j = min(i, len(life) - 1)
                yield (mouth.values[i], float(life.blink[j]), life.head[j],
                       None if life.face is None else life.face[j])

        return render_in_order(self.render, jobs(), threads=threads)


def render_in_order(render: Callable[..., np.ndarray], jobs: Iterable[tuple[Any, ...]], *,
                    threads: int = RENDER_THREADS,
                    narrow: Callable[[], bool] | None = None) -> Iterator[np.ndarray]:
    """``render(*job)`` for each job, drawn by ``threads`` threads, yielded in the jobs'
    order. A job is taken only when a thread will soon be free (at most
    :data:`RENDER_AHEAD` in flight), so ``jobs`` may wait for what it needs (the
    recogniser's next part); a finished frame is handed on before the next job is asked
    for. While ``narrow()`` is true the frames are drawn one at a time (another process
    needs the other core). Closing the iterator drops the frames not yet drawn."""
    if threads <= 1:
        for job in jobs:
            yield render(*job)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="facecast-frame")
    pending: deque[Future[np.ndarray]] = deque()
    try:
        for job in jobs:
            pending.append(pool.submit(render, *job))
            limit = 1 if narrow is not None and narrow() else RENDER_AHEAD
            while pending and (len(pending) >= limit or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
