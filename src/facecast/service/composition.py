"""Composition options as the service keeps them: a JSON-ready dict on the job,
with background and layer files stored as the job's input assets, turned back
into :class:`facecast.render.composition.Composition` in the worker.

The APIs describe a canvas, a background (colour, image or video), masks,
placement and image layers; this module checks the geometry when the job is
created (so a bad value is a 400, not a failed job) and names the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facecast.errors import InputError
from facecast.rules import MAX_LAYERS
from facecast.service.assets import AssetService, MediaSource


@dataclass(frozen=True)
class LayerSpec:
    """An image layer (``image``) or a solid colour rectangle (``color`` + size)."""

    image: MediaSource | None = None
    color: str | None = None
    x: int = 0
    y: int = 0
    width: int | None = None
    height: int | None = None
    z: int = 1
    opacity: float = 1.0


@dataclass(frozen=True)
class CompositionSpec:
    canvas: tuple[int, int] | None = None
    background_color: str | None = None
    background: MediaSource | None = None  # an image or a video (looped)
    replace_background: bool = False
    position: tuple[float, float] = (0.5, 0.5)
    units: str = "fraction"  # or "px"
    anchor: str = "center"  # or "top-left"
    scale: float = 1.0
    avatar_size: tuple[int, int] | None = None
    mask: str = "none"  # circle | rect
    corner_radius: float = 0.0
    layers: tuple[LayerSpec, ...] = field(default_factory=tuple)


def _geometry(d: dict[str, Any], background: Any, layers: list[Any]) -> Any:
    from facecast.render.composition import Composition, ImageLayer

    return Composition(
        canvas=tuple(d["canvas"]) if d.get("canvas") else None,  # type: ignore[arg-type]
        background=background, replace_background=d["replace_background"],
        position=tuple(d["position"]), units=d["units"],  # type: ignore[arg-type]
        anchor=d["anchor"], scale=d["scale"],
        avatar_size=tuple(d["avatar_size"]) if d.get("avatar_size") else None,  # type: ignore
        mask=d["mask"], corner_radius=d["corner_radius"],
        layers=tuple(ImageLayer(source, x=lay["x"], y=lay["y"], width=lay.get("width"),
                                height=lay.get("height"), z=lay["z"], opacity=lay["opacity"])
                     for source, lay in layers))


def ingest(assets: AssetService, account_id: int, spec: CompositionSpec
           ) -> tuple[dict[str, Any], dict[str, int]]:
    """Check ``spec`` and store its files: the job's dict and its extra input assets."""
    if len(spec.layers) > MAX_LAYERS:
        raise InputError(f"at most {MAX_LAYERS} layers", code="bad_layer")
    if spec.background is not None and spec.background_color is not None:
        raise InputError("give a background colour or a background file, not both",
                         code="bad_background")
    d: dict[str, Any] = {
        "canvas": list(spec.canvas) if spec.canvas else None,
        "background_color": spec.background_color, "background": None,
        "replace_background": spec.replace_background, "position": list(spec.position),
        "units": spec.units, "anchor": spec.anchor, "scale": spec.scale,
        "avatar_size": list(spec.avatar_size) if spec.avatar_size else None,
        "mask": spec.mask, "corner_radius": spec.corner_radius, "layers": []}
    for layer in spec.layers:
        if (layer.image is None) == (layer.color is None):
            raise InputError("a layer is an image or a colour", code="bad_layer")
        d["layers"].append({"color": layer.color, "x": layer.x, "y": layer.y,
                            "width": layer.width, "height": layer.height, "z": layer.z,
                            "opacity": layer.opacity, "input": None})
    # geometry first, with colour stand-ins for the files: refused before anything is fetched
    stand_in = [(lay["color"] or "#000000", {**lay, "width": lay["width"] or 1,
                                             "height": lay["height"] or 1})
                for lay in d["layers"]]
    _geometry(d, spec.background_color, stand_in)
    inputs: dict[str, int] = {}
    if spec.background is not None:
        asset = assets.from_source(account_id, spec.background, {"image", "video"},
                                   "background")
        inputs["background"] = asset.id
        d["background"] = {"input": "background", "kind": asset.kind}
    for i, layer in enumerate(spec.layers):
        if layer.image is not None:
            name = f"layer{i}"
            inputs[name] = assets.from_source(account_id, layer.image, {"image"}, name).id
            d["layers"][i]["input"] = name
    return d, inputs


def build(d: dict[str, Any], files: dict[str, Path]) -> Any:
    """The worker's :class:`Composition` from the job's dict and its local input files."""
    from facecast.render.composition import ImageFill, VideoFill

    background: Any = d.get("background_color")
    if d.get("background"):
        path = files[d["background"]["input"]]
        background = VideoFill(path) if d["background"]["kind"] == "video" else ImageFill(path)
    layers = [(files[lay["input"]] if lay.get("input") else lay["color"], lay)
              for lay in d["layers"]]
    return _geometry(d, background, layers)
