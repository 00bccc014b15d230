"""A light-field viewer for one scene in a single self-contained HTML file.

The page must open from disk on a machine without network and must never run text it
embeds: sentences come from user-editable templates. So every view is a data: URI, the
template (viewer.html, package data) carries its own CSS and JS, a Content-Security-Policy
forbids loading anything, HTML text goes through `html.escape` and the scene data is JSON
with `<`, `>` and `&` written as \\u escapes (no `</script>` or `<!--` can end or bend the
script element). Outlines are polygons computed here (outline.py) and drawn as SVG, so they
stay sharp at any zoom and cost a few kB per view.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clevr_remv.show.gather import SceneViews, object_label, targets_label
from clevr_remv.show.outline import centroid, outlines, svg_path
from clevr_remv.show.picture import depth_colormap, depth_range, object_colours
from clevr_remv.store.atomic import atomic_path

JPEG_QUALITY = 90
SMALL_VIEW_PIXELS = 160 * 120
FOCUS_SLICES = 12  # the focus slider's refocused slices of the centre view, as `export focal-stack`
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def data_uri(rgb: np.ndarray, image_format: str = "jpeg") -> str:
    """An RGB uint8 image as a `data:image/...;base64,` URI (JPEG at quality 90, or PNG)."""
    buffer = io.BytesIO()
    image = Image.fromarray(rgb)
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    elif image_format == "png":
        image.save(buffer, format="PNG")
    else:
        raise ValueError(f"unknown image format {image_format!r} (use jpeg or png)")
    return f"data:image/{image_format};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def resolve_format(image_format: str, width: int, height: int) -> str:
    """'auto' is PNG for small views (JPEG blocks show when a 64x48 view is blown up), else JPEG."""
    if image_format != "auto":
        return image_format
    return "png" if width * height <= SMALL_VIEW_PIXELS else "jpeg"


def coloured_depth(depth: np.ndarray, low: float, high: float) -> np.ndarray:
    """Depth as RGB uint8 through `depth_colormap` over [low, high]; the +inf background in its grey."""
    cmap = depth_colormap()
    scaled = np.ma.masked_invalid((depth - low) / (high - low))
    return (cmap(scaled)[..., :3] * 255 + 0.5).astype(np.uint8)


def script_json(obj: Any) -> str:
    """JSON safe inside a <script> element: no `<`, `>` or `&` survive as themselves."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def focus_data(data: SceneViews, image_format: str, slices: int = FOCUS_SLICES) -> dict[str, Any]:
    """The focus slider's focal stack: the centre view refocused (`clevr_remv.lightfield.refocus`) at
    `slices` disparities spread over the scene's range, as data URIs, with those disparities."""
    from clevr_remv.lightfield import (
        disparity_from_depth,
        disparity_range,
        focal_stack,
        focal_stack_disparities,
    )

    low, high = disparity_range(disparity_from_depth(data.scene.rig, data.depth), data.depth)
    disparities = focal_stack_disparities(low, high, slices)
    stack = np.clip(np.rint(focal_stack(data.images, disparities, data.grid)), 0, 255).astype(np.uint8)
    return {"disparities": [round(float(d), 3) for d in disparities],
            "images": [data_uri(image, image_format) for image in stack]}


def viewer_data(data: SceneViews, image_format: str = "auto") -> dict[str, Any]:
    """What the page's script needs: views, depth maps, object polygons per view, sentences, focal stack."""
    h, w = data.size
    image_format = resolve_format(image_format, w, h)
    low, high = depth_range(data.depth)
    colours = object_colours()
    shapes = []
    for mask in data.masks:
        per_view = []
        for obj in data.scene.objects:
            rings = outlines(mask, obj.id)
            if rings:
                x, y = centroid(mask, obj.id)
                per_view.append({"id": obj.id, "d": svg_path(rings), "cx": round(x, 1), "cy": round(y, 1)})
        shapes.append(per_view)
    return {
        "grid": data.grid,
        "width": w,
        "height": h,
        "centre": data.centre,
        "images": [data_uri(image, image_format) for image in data.images],
        "depth": [data_uri(coloured_depth(d, low, high), image_format) for d in data.depth],
        "depth_range": [low, high],
        "objects": [{"id": o.id, "label": object_label(o), "colour": colours[o.id - 1]} for o in data.scene.objects],
        "shapes": shapes,
        "refs": [{"id": s.id, "object": s.object, "targets": list(s.targets), "text": s.text, "family": s.family,
                  "visible": [bool(v) for v in s.visible]} for s in data.sentences],
        "focus": focus_data(data, image_format),
        "amodal": amodal_outlines(data),
    }


def amodal_outlines(data: SceneViews) -> list[dict[str, str]] | None:
    """Per view, {referent id: SVG path of its amodal outline} (drawn dashed under the visible
    outline); None when the dataset has no amodal masks."""
    if data.amodal_packed is None:
        return None
    referents = sorted({t for s in data.sentences for t in s.targets})
    out = []
    for view in range(len(data.masks)):
        paths = {}
        for obj in referents:
            rings = outlines(data.amodal(view, obj).astype(np.uint8), 1)
            if rings:
                paths[str(obj)] = svg_path(rings)
        out.append(paths)
    return out


def _sentence_items(data: SceneViews) -> str:
    items = []
    for i, s in enumerate(data.sentences):
        meta = f"pair {s.id} · {s.family} · {targets_label(s, data.scene)}"
        items.append(f'<li><button class="sentence" type="button" data-ref="{i}">'
                     f'<span class="meta">{html.escape(meta)}</span>{html.escape(s.text)}</button></li>')
    return "\n".join(items) or "<li>(no referring pairs in this scene)</li>"


def _object_items(data: SceneViews) -> str:
    colours = object_colours()
    return "\n".join(
        f'<li><span class="swatch" style="background:{html.escape(colours[o.id - 1])}"></span>'
        f"{o.id} {html.escape(object_label(o))}</li>"
        for o in data.scene.objects
    )


def _depth_gradient() -> str:
    cmap = depth_colormap()
    stops = ", ".join("#{:02x}{:02x}{:02x}".format(*(int(c * 255 + 0.5) for c in cmap(t)[:3]))
                      for t in np.linspace(0, 1, 9))
    return f"background: linear-gradient(to right, {stops})"


def render_page(data: SceneViews, image_format: str = "auto") -> str:
    """The whole HTML page as a string."""
    template = resources.files("clevr_remv.show").joinpath("viewer.html").read_text(encoding="utf-8")
    h, w = data.size
    scene = data.scene
    low, high = depth_range(data.depth)
    values = {
        "TITLE": html.escape(f"CLEVR-Remv {scene.split} scene {scene.index}"),
        "SUBTITLE": html.escape(f"{data.grid}×{data.grid} views of {w}×{h} px · {len(scene.objects)} objects · "
                                f"{len(data.sentences)} sentences"),
        "RENDERING": "pixelated" if w < 240 else "auto",
        "VIEWBOX": f"-0.5 -0.5 {w} {h}",
        "FOCUS_MAX": str(FOCUS_SLICES - 1),
        "DEPTH_MIN": html.escape(f"{low:.2f}"),
        "DEPTH_MAX": html.escape(f"{high:.2f}"),
        "DEPTH_GRADIENT": html.escape(_depth_gradient()),
        "SENTENCES": _sentence_items(data),
        "OBJECTS": _object_items(data),
        "DATA": script_json(viewer_data(data, image_format)),
    }
    # One pass, so text substituted for one placeholder is never searched for another.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def save_viewer(data: SceneViews, path: Path | str, image_format: str = "auto") -> int:
    """Write the viewer page for `data` to `path` atomically; returns its size in bytes."""
    page = render_page(data, image_format).encode("utf-8")
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(page)
    return len(page)
