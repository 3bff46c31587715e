"""Preview videos of the expression templates, rendered by facecast itself.

Each template speaks one short sentence on the built-in astronaut portrait
(cropped to head and shoulders, so the face fills the small frame) with the
built-in voice, small (256 px) and about 3 s long, plus a JPEG thumbnail from
the middle of the video. Files are written as ``<key>.mp4`` and
``<key>.jpg``; templates whose two files already exist are skipped, so a run
that was interrupted simply continues.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from facecast.motion.expressions import TEMPLATES, ExpressionTemplate, get_template

PREVIEW_TEXT = "Hello! This is how I look while I talk to you."
PREVIEW_SIZE = "256x256"
Progress = Callable[[float, str], None]


def preview_files(out_dir: str | os.PathLike[str], key: str) -> tuple[Path, Path]:
    """Where a template's preview video and thumbnail go."""
    folder = Path(out_dir)
    return folder / f"{key}.mp4", folder / f"{key}.jpg"


def preview_portrait() -> np.ndarray:
    """The astronaut cropped square around her head: at 256 px the whole 512 px photo
    would leave the face about 45 px wide, too small to see a brow move."""
    from facecast.assets import asset_path
    from facecast.face import check_face
    from facecast.media import load_image

    photo = load_image(asset_path("astronaut.png"))
    verdict = check_face(photo)
    if verdict.analysis is None:
        return photo
    box = verdict.analysis.box
    h, w = photo.shape[:2]
    side = int(min(2.6 * max(box.w, box.h), h, w))
    cx, cy = box.center
    x0 = int(np.clip(cx - side / 2, 0, w - side))
    y0 = int(np.clip(cy - side * 0.45, 0, h - side))  # a little more below: the shoulders
    return np.ascontiguousarray(photo[y0:y0 + side, x0:x0 + side])


def thumbnail(video: Path, dest: Path, quality: int = 88) -> Path:
    """The frame in the middle of ``video`` as a JPEG (written atomically)."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        wanted = max(total // 2, 0)
        frame = None
        for i, f in enumerate(container.decode(stream)):
            frame = f
            if i >= wanted:
                break
    if frame is None:
        raise RuntimeError(f"{video} has no frames")
    rgb = frame.to_ndarray(format="rgb24")
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(dest)
    return dest


def render_expression_previews(out_dir: str | os.PathLike[str],
                               keys: Iterable[str | int] | None = None, *,
                               text: str = PREVIEW_TEXT, size: str = PREVIEW_SIZE,
                               progress: Progress | None = None) -> list[Path]:
    """Render the missing previews (all templates, or ``keys``) into ``out_dir``.

    Returns the video paths of every requested template (rendered now or before).
    """
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    report = progress or (lambda _f, _s: None)
    templates: list[ExpressionTemplate] = list(TEMPLATES) if keys is None else \
        [get_template(k) for k in keys]
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    portrait: np.ndarray | None = None
    share = 1.0 / max(len(templates), 1)
    for n, template in enumerate(templates):
        video, thumb = preview_files(folder, template.key)
        # The writer renames a video into place only once it is whole: one that exists
        # is complete, and only its thumbnail may be missing.
        if not video.is_file():
            def step(f: float, stage: str, n: int = n, key: str = template.key) -> None:
                report((n + f * 0.97) * share, f"{key}: {stage}")

            if portrait is None:
                portrait = preview_portrait()
            spec = TalkingPhotoSpec(photo=portrait, output=video, text=text,
                                    size=size, expression=template.key, seed=template.id,
                                    crf=24)
            render_talking_photo(spec, step)
        if not thumb.is_file():
            thumbnail(video, thumb)
        done.append(video)
        report((n + 1) * share, f"{template.key}: done")
    return done
