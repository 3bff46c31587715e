"""Copy mediapipe 0.10.21's face models into ``src/facecast/face/models/``, splitting
the attention landmark model at its custom ops.

``face_landmark_with_attention.tflite`` holds three MediaPipe custom ops
(``Landmarks2TransformMatrix``, ``TransformTensorBilinear``, ``TransformLandmarks``)
that no stock TFLite/LiteRT runtime has. This script cuts the graph at them into
standard sub-models that LiteRT runs as they are; :mod:`facecast.face.landmarks`
does the custom steps in numpy between the parts:

* part 1: the image to the 468-point mesh and the feature map the crops come from;
* part 2: the three 16x16 feature crops (lips, eyes) to the region landmarks, in
  crop coordinates, plus the mesh and the face flag;
* part 3: the region landmarks, mapped back (``TransformLandmarks``), to the model's
  output shapes.

A part's inputs and outputs keep the original tensor names, so the runtime wires
them by name. Weights are not changed: every tensor and buffer is copied as it is,
and a part holds only the ones its operators use.

Run once, by hand, with mediapipe 0.10.21 (or its unpacked wheel) and ai-edge-litert
installed::

    PYTHONPATH=$PWD/src python3 tools/split_face_landmark_model.py [--mediapipe DIR]

It prints the sizes and checksums for the models' PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "facecast" / "face" / "models"
ATTENTION = "face_landmark_with_attention.tflite"
# Copied as they are (stock ops only).
AS_IS = (
    "face_detection/face_detection_short_range.tflite",
    "face_detection/face_detection_full_range_sparse.tflite",
    "selfie_segmentation/selfie_segmentation.tflite",
)
# The cut after which a custom op's outputs are available.
CUT_OF = {"Landmarks2TransformMatrix": 1, "TransformTensorBilinear": 1, "TransformLandmarks": 2}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _custom_name(model: schema.ModelT, op: schema.OperatorT) -> str | None:
    code = model.operatorCodes[op.opcodeIndex]
    return code.customCode.decode() if code.customCode else None


def split(model_bytes: bytes) -> list[bytes]:
    """The parts of the attention model, in running order."""
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    graph = model.subgraphs[0]

    def is_const(t: int) -> bool:
        buf = model.buffers[graph.tensors[t].buffer]
        return buf.data is not None and len(buf.data) > 0

    level: dict[int, int] = {t: 0 for t in graph.inputs}
    op_level: list[int | None] = []
    for op in graph.operators:
        custom = _custom_name(model, op)
        live = [t for t in op.inputs if t >= 0 and not is_const(t)]
        if custom is not None:
            lv = CUT_OF[custom]
            op_level.append(None)
        elif not live:
            # Constant-only ops (fp16 weight dequantize) go with their consumers.
            op_level.append(-1)
            for t in op.outputs:
                level[t] = 0
            continue
        else:
            lv = max(level[t] for t in live)
            op_level.append(lv)
        for t in op.outputs:
            level[t] = lv
    parts_ops: dict[int, list[int]] = {}
    for i, lv in enumerate(op_level):
        if lv is not None and lv >= 0:
            parts_ops.setdefault(lv, []).append(i)
    producer = {t: i for i, op in enumerate(graph.operators) for t in op.outputs}
    consumers: dict[int, list[int]] = {}
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            consumers.setdefault(t, []).append(i)

    out: list[bytes] = []
    for lv in sorted(parts_ops):
        ops = list(parts_ops[lv])
        inside = set(ops)
        # Pull in the constant-only ops that feed this part.
        for i in list(ops):
            for t in graph.operators[i].inputs:
                p = producer.get(t)
                if p is not None and op_level[p] == -1 and p not in inside:
                    inside.add(p)
        ops = sorted(inside)
        produced = {t for i in ops for t in graph.operators[i].outputs}
        used = {t for i in ops for t in graph.operators[i].inputs if t >= 0} | produced
        inputs = sorted(
            t for t in used if t not in produced and not is_const(t)
        )
        outputs = sorted(
            t
            for t in produced
            if t in graph.outputs or any(c not in inside for c in consumers.get(t, []))
        )
        out.append(_pack(model, graph, ops, used, inputs, outputs))
    return out


def _pack(
    model: schema.ModelT,
    graph: schema.SubGraphT,
    ops: list[int],
    used: set[int],
    inputs: list[int],
    outputs: list[int],
) -> bytes:
    new = schema.ModelT()
    new.version = model.version
    new.description = model.description
    tmap = {t: k for k, t in enumerate(sorted(used))}
    bmap: dict[int, int] = {0: 0}
    new.buffers = [schema.BufferT()]
    codes: dict[int, int] = {}
    new.operatorCodes = []
    sub = schema.SubGraphT()
    sub.name = graph.name
    sub.tensors = []
    for t in sorted(used):
        tensor = graph.tensors[t]
        buf = model.buffers[tensor.buffer]
        if buf.data is not None and len(buf.data) > 0:
            if tensor.buffer not in bmap:
                bmap[tensor.buffer] = len(new.buffers)
                new.buffers.append(buf)
            tensor.buffer = bmap[tensor.buffer]
        else:
            tensor.buffer = 0
        sub.tensors.append(tensor)
    sub.operators = []
    for i in ops:
        op = graph.operators[i]
        if op.opcodeIndex not in codes:
            codes[op.opcodeIndex] = len(new.operatorCodes)
            new.operatorCodes.append(model.operatorCodes[op.opcodeIndex])
        copy = schema.OperatorT()
        for name, value in vars(op).items():
            setattr(copy, name, value)
        copy.opcodeIndex = codes[op.opcodeIndex]
        copy.inputs = [tmap[t] if t >= 0 else -1 for t in op.inputs]
        copy.outputs = [tmap[t] for t in op.outputs]
        if op.intermediates is not None and len(op.intermediates):
            copy.intermediates = [tmap[t] for t in op.intermediates]
        sub.operators.append(copy)
    sub.inputs = [tmap[t] for t in inputs]
    sub.outputs = [tmap[t] for t in outputs]
    new.subgraphs = [sub]
    builder = flatbuffers.Builder(1 << 22)
    builder.Finish(new.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mediapipe", type=Path, help="the mediapipe package folder")
    args = ap.parse_args()
    if args.mediapipe is None:
        import mediapipe

        args.mediapipe = Path(mediapipe.__file__).parent
        print("mediapipe", mediapipe.__version__, args.mediapipe)
    modules = args.mediapipe / "modules"
    OUT.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
    for rel in AS_IS:
        src = modules / rel
        dst = OUT / src.name
        shutil.copyfile(src, dst)
        written.append((f"modules/{rel}", dst))
    src = modules / "face_landmark" / ATTENTION
    for k, part in enumerate(split(src.read_bytes()), start=1):
        dst = OUT / ATTENTION.replace(".tflite", f".part{k}.tflite")
        dst.write_bytes(part)
        written.append((f"part {k} of modules/face_landmark/{ATTENTION}", dst))
    print(f"source {src.name}: {src.stat().st_size:,} B sha256 {sha256(src)}")
    for origin, dst in written:
        print(f"{dst.name}: {dst.stat().st_size:,} B sha256 {sha256(dst)} ({origin})")


if __name__ == "__main__":
    main()
