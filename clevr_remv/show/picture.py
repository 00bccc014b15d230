"""The picture a user looks at first: one scene's views, masks, depth and sentences on one page.

Laid out in inches rather than with tight_layout, so that the page has a known size (the
tests check it) and reads the same at 480x320 views and at the 64x48 of the test renders:
every panel keeps the views' aspect ratio and only the number of sentence rows changes the
height.

    from clevr_remv.show import load_scene, scene_figure, save_figure
    save_figure(scene_figure(load_scene("out", "val", 3)), "scene.png")
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from clevr_remv.scene.rig import view_position
from clevr_remv.show.gather import SceneViews, Sentence, object_label, targets_label
from clevr_remv.show.outline import centroid, outlines
from clevr_remv.store.atomic import atomic_path

DPI = 100
PAGE_WIDTH = 16.0  # inches
MARGIN = 0.3
GAP = 0.45  # between the three large panels
TITLE = 0.55  # page title band
PANEL_TITLE = 0.35  # above each panel
TEXT_WIDTH = 4.6  # sentence column
SMALL_GAP = 0.1  # between the small panels of a sentence row
HIDDEN_COLOUR = "#888888"


def object_colours(count: int = 10) -> list[str]:
    """One distinct colour per object id (tab10: CLEVR scenes have at most 10 objects)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [to_hex(cmap(i % 10)) for i in range(count)]


def depth_colormap() -> Colormap:
    """viridis reversed (near is bright); background (+inf, masked) in light grey."""
    from matplotlib import colormaps

    return colormaps["viridis_r"].with_extremes(bad="#d9d9d9")


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    """Min and max of the finite depths (the background is +inf); (0, 1) if there are none."""
    finite = depth[np.isfinite(depth)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return low, max(high, low + 1e-6)


def _halo(width: float = 3.0) -> list:
    return [patheffects.withStroke(linewidth=width, foreground="white")]


def _no_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_outline(ax: Axes, mask: np.ndarray, object_id: int, colour: str, linewidth: float,
                  dashed: bool = False) -> bool:
    """Outline `object_id` on `ax`; False when it has no pixels in this mask."""
    rings = outlines(mask, object_id)
    for ring in rings:
        ax.add_patch(Polygon(ring, closed=True, fill=False, edgecolor=colour, linewidth=linewidth,
                             linestyle="--" if dashed else "-", path_effects=_halo(linewidth + 2)))
    return bool(rings)


class _Page:
    """Places axes by inches from the top-left corner of a figure of fixed width."""

    def __init__(self, height: float) -> None:
        self.height = height
        self.fig = Figure(figsize=(PAGE_WIDTH, height), dpi=DPI)
        FigureCanvasAgg(self.fig)

    def axes(self, left: float, top: float, width: float, height: float) -> Axes:
        f = self.fig
        return f.add_axes((left / PAGE_WIDTH, 1 - (top + height) / self.height, width / PAGE_WIDTH, height / self.height))

    def text(self, left: float, top: float, text: str, **kwargs) -> None:
        self.fig.text(left / PAGE_WIDTH, 1 - top / self.height, text, va="top", ha="left", **kwargs)


def mosaic(images: np.ndarray, grid: int, max_width: int = 1600) -> tuple[np.ndarray, int, int]:
    """The N x N views tiled row by row with white gaps; returns (array, cell width, cell height).

    Views are subsampled so that the mosaic is at most `max_width` pixels wide: the panel is
    a few inches wide on the page, so full resolution would only slow the drawing.
    """
    v, h, w, _ = images.shape
    step = max(1, (grid * w) // max_width)
    small = images[:, ::step, ::step]
    sh, sw = small.shape[1:3]
    gap = max(1, sw // 40)
    cell_w, cell_h = sw + gap, sh + gap
    out = np.full((grid * cell_h - gap, grid * cell_w - gap, 3), 255, np.uint8)
    for k in range(v):
        r, c = view_position(k, grid)
        out[r * cell_h:r * cell_h + sh, c * cell_w:c * cell_w + sw] = small[k]
    return out, cell_w, cell_h


def greyed(image: np.ndarray) -> np.ndarray:
    """A faded grey copy of an RGB image: the look of a view where the referent is hidden."""
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    faded = 0.45 * grey + 0.55 * 255
    return np.repeat(faded[..., None], 3, axis=2).astype(np.uint8)


def _draw_mosaic(page: _Page, data: SceneViews, left: float, top: float, width: float, height: float) -> None:
    ax = page.axes(left, top, width, height)
    n = data.grid
    tiles, cell_w, cell_h = mosaic(data.images, n)
    ax.imshow(tiles, interpolation="antialiased")
    ax.set_xticks([c * cell_w + (cell_w - 1) / 2 for c in range(n)], [str(c) for c in range(n)], fontsize=7)
    ax.set_yticks([r * cell_h + (cell_h - 1) / 2 for r in range(n)], [str(r) for r in range(n)], fontsize=7)
    ax.tick_params(length=0, pad=2, labeltop=True, labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for k, style in [(data.centre, "-")] + [(k, ":") for k in data.corners]:
        r, c = view_position(k, n)
        ax.add_patch(Rectangle((c * cell_w - 0.5 - 0.5, r * cell_h - 0.5 - 0.5), cell_w, cell_h, fill=False,
                               edgecolor="#d62728", linewidth=1.5, linestyle=style))
    ax.set_title(f"all {n}×{n} views (row, col; red: centre, dotted: corners)", fontsize=10, loc="left")


def _draw_centre(page: _Page, data: SceneViews, colours: list[str], left: float, top: float, width: float,
                 height: float) -> None:
    ax = page.axes(left, top, width, height)
    mask = data.masks[data.centre]
    ax.imshow(data.images[data.centre], interpolation="antialiased")
    hidden, labels = [], []
    for obj in data.scene.objects:
        colour = colours[obj.id - 1]
        if not _draw_outline(ax, mask, obj.id, colour, 1.5):
            hidden.append(obj.id)
            continue
        x, y = centroid(mask, obj.id)
        labels.append(ax.text(x, y, f"{obj.id} {object_label(obj)}", fontsize=7.5, color="white", ha="center",
                              va="center", clip_on=True,
                              bbox={"boxstyle": "round,pad=0.15", "facecolor": colour, "alpha": 0.8, "linewidth": 0}))
    _no_ticks(ax)
    _separate(ax, labels)
    r, c = view_position(data.centre, data.grid)
    ax.set_title(f"centre view ({r}, {c}): object masks, id and attributes", fontsize=10, loc="left")
    if hidden:
        ax.set_xlabel("no pixels in this view: " + ", ".join(str(i) for i in hidden), fontsize=8)


def _separate(ax: Axes, labels: list) -> None:
    """Move labels down, top to bottom, until no two overlap (crowded scenes put centroids close)."""
    renderer = ax.figure.canvas.get_renderer()
    placed = []
    for label in sorted(labels, key=lambda t: t.get_position()[1]):
        box = start = label.get_window_extent(renderer).expanded(1.0, 1.1)
        for _ in range(len(labels) * 3):
            clash = next((other for other in placed if box.overlaps(other)), None)
            if clash is None:
                break
            box = box.translated(0, clash.y0 - box.y1 - 1)  # display y grows upwards: this moves down
        x, y = ax.transData.transform(label.get_position())
        label.set_position(ax.transData.inverted().transform((x, y + box.y0 - start.y0)))
        placed.append(box)


def _draw_depth(page: _Page, data: SceneViews, left: float, top: float, width: float, height: float) -> None:
    ax = page.axes(left, top, width, height)
    depth = data.depth[data.centre]
    low, high = depth_range(depth)
    image = ax.imshow(np.ma.masked_invalid(depth), cmap=depth_colormap(), vmin=low, vmax=high,
                      interpolation="nearest")
    _no_ticks(ax)
    ax.set_title("centre depth (grey: background, +inf)", fontsize=10, loc="left")
    bar = page.fig.colorbar(image, cax=page.axes(left + width + 0.08, top, 0.15, height))
    bar.set_label("depth along the optical axis (scene units)", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _draw_sentence(page: _Page, data: SceneViews, sentence: Sentence, colours: list[str], top: float,
                   panel_w: float, panel_h: float) -> None:
    hidden_in = [k for k in range(len(sentence.visible)) if not sentence.visible[k]]
    page.text(MARGIN, top + 0.02, f"pair {sentence.id} · {sentence.family} · {targets_label(sentence, data.scene)}"
              + (f" · hidden in {len(hidden_in)} of {len(sentence.visible)} views" if hidden_in else ""),
              fontsize=7.5, color="#555555")
    page.text(MARGIN, top + 0.22, textwrap.fill(sentence.text, 52, break_long_words=False), fontsize=10.5,
              color="black")
    views = (data.centre,) + data.corners
    for i, k in enumerate(views):
        left = MARGIN + TEXT_WIDTH + i * (panel_w + SMALL_GAP)
        ax = page.axes(left, top + 0.2, panel_w, panel_h)
        visible = bool(sentence.visible[k])
        ax.imshow(data.images[k] if visible else greyed(data.images[k]), interpolation="antialiased")
        for target in sentence.targets:  # every object the sentence names, each in its colour
            colour = colours[target - 1] if visible else HIDDEN_COLOUR
            amodal = data.amodal(k, target)
            if amodal is not None:  # dashed under the visible outline: it shows where the referent is hidden
                _draw_outline(ax, amodal.astype(np.uint8), 1, colour, 1.2, dashed=True)
            _draw_outline(ax, data.masks[k], target, colour, 1.5, dashed=not visible)
        _no_ticks(ax)
        r, c = view_position(k, data.grid)
        name = "centre" if k == data.centre else "corner"
        hidden = " · HIDDEN" if len(sentence.targets) <= 1 else " · NOT ALL VISIBLE"  # refs/visible: every target
        page.text(left, top + 0.02, f"{name} ({r}, {c})" + ("" if visible else hidden), fontsize=7,
                  color="black" if visible else "#c0392b")
        if not visible:
            for spine in ax.spines.values():
                spine.set_edgecolor("#c0392b")
                spine.set_linestyle("--")


def scene_figure(data: SceneViews) -> Figure:
    """The whole page for one scene: mosaic, centre view with labelled masks, depth, sentences."""
    h, w = data.size
    aspect = h / w
    # The centre view gets 45 % of the width, the mosaic 29 %, the depth map the rest.
    band = PAGE_WIDTH - 2 * MARGIN - 2 * GAP - 0.9
    centre_w, mosaic_w = 0.45 * band, 0.29 * band
    depth_w = band - centre_w - mosaic_w
    large_h = centre_w * aspect
    panel_w = (PAGE_WIDTH - 2 * MARGIN - TEXT_WIDTH - 4 * SMALL_GAP) / 5
    panel_h = panel_w * aspect
    row_h = panel_h + 0.45
    top_band = TITLE + PANEL_TITLE + large_h + 0.45
    header = 0.4
    height = top_band + header + max(1, len(data.sentences)) * row_h + MARGIN
    page = _Page(height)
    scene = data.scene
    page.text(MARGIN, 0.15, f"{scene.split} scene {scene.index} · {data.grid}×{data.grid} views of {w}×{h} px · "
              f"{len(scene.objects)} objects · {len(data.sentences)} sentences", fontsize=14, weight="bold")
    colours = object_colours()
    top = TITLE + PANEL_TITLE
    _draw_mosaic(page, data, MARGIN, top, mosaic_w, mosaic_w * aspect)
    _draw_centre(page, data, colours, MARGIN + mosaic_w + GAP, top, centre_w, large_h)
    _draw_depth(page, data, MARGIN + mosaic_w + centre_w + 2 * GAP, top, depth_w, depth_w * aspect)
    top = top_band
    page.text(MARGIN, top, "Sentences, referent outlined in the centre and the four corner views "
              "(grey, dashed: hidden in that view, refs/visible false)"
              + ("; thin dashes: its amodal outline where it is hidden" if data.amodal_packed is not None else ""),
              fontsize=11, weight="bold")
    top += header
    if not data.sentences:
        page.text(MARGIN, top, "(this scene has no referring pairs)", fontsize=10)
    for sentence in data.sentences:
        _draw_sentence(page, data, sentence, colours, top, panel_w, panel_h)
        top += row_h
    return page.fig


def save_figure(fig: Figure, path: Path | str) -> Path:
    """Write `fig` atomically; the format follows the suffix (.png unless .svg, .pdf, .jpg ...)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ValueError(f"cannot write {path}: unknown picture format {fmt!r} (use .png, .svg or .pdf)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=DPI)
    return path
