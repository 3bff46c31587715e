"""Record mediapipe 0.10.21's face outputs on the packaged astronaut portrait.

facecast's own face models (:mod:`facecast.face.detector`, ``.landmarks``,
``.segmenter``) must give what mediapipe gave. Once mediapipe is no longer
installed, ``tests/test_face_litert.py`` compares against these recordings:

* both detectors' boxes, keypoints and scores on the portrait;
* the static-image mesh (478 points) on the portrait;
* the video-mode mesh on a short synthetic clip made from the portrait (it drifts,
  turns and grows a little each frame; :func:`synthetic_clip` in the test makes the
  same frames), which exercises the tracking from the previous frame's landmarks;
* the person mask, as uint8.

Run once, by hand, with mediapipe 0.10.21 installed::

    PYTHONPATH=$PWD/src python3 tools/record_mediapipe_references.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "mediapipe_0.10.21_astronaut.npz"
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    import mediapipe as mp

    from face_clip import synthetic_clip
    from facecast.assets import asset_path
    from facecast.media.image import load_image

    assert mp.__version__ == "0.10.21", mp.__version__
    img = load_image(asset_path("astronaut.png"))
    rec: dict[str, np.ndarray] = {}
    for name, sel in (("short", 0), ("full", 1)):
        with mp.solutions.face_detection.FaceDetection(model_selection=sel) as fd:
            dets = fd.process(img).detections
        d = dets[0]
        bb = d.location_data.relative_bounding_box
        rec[f"det_{name}_box"] = np.array([bb.xmin, bb.ymin, bb.width, bb.height], np.float32)
        rec[f"det_{name}_score"] = np.float32(d.score[0])
        rec[f"det_{name}_keypoints"] = np.array(
            [(k.x, k.y) for k in d.location_data.relative_keypoints], np.float32
        )
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as fm:
        lms = fm.process(img).multi_face_landmarks[0].landmark
    rec["mesh_static"] = np.array([(p.x, p.y, p.z) for p in lms], np.float32)
    video = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True) as fm:
        for frame in synthetic_clip(img):
            lms = fm.process(frame).multi_face_landmarks[0].landmark
            video.append([(p.x, p.y) for p in lms])
    rec["mesh_video"] = np.array(video, np.float32)
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(img).segmentation_mask
    rec["mask_u8"] = np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **rec)
    print(OUT, OUT.stat().st_size, "B")


if __name__ == "__main__":
    main()
