"""Benchmark HDF5 compression settings for the shard's pixel datasets.

Why: images, masks and depth are > 99.9 % of a shard, so their filters decide the
dataset's size on disk (the published one is > 150 GB as PNG) and how fast a training
loader reads one view. This measures, per dataset and per filter setting, with the
shard's real layout (one view per chunk):

  * bytes per scene on disk (HDF5 storage size of the dataset / scenes) and the ratio;
  * write MB/s (uncompressed MB / time to create, fill scene by scene, and close);
  * read MB/s (uncompressed MB / time to read every view one at a time, file reopened);
  * whether the round trip is exact.

Reads come from the page cache, so they measure decompression and HDF5 overhead, not
the disk. Each figure is the best of --repeats runs (time.perf_counter).

Data: the first --scenes scenes of an existing shard (--shard PATH), or, without one,
SYNTHETIC scenes: smooth shaded floor and objects with a little render noise, masks of
a few blobs, planar depth with a +inf background above the horizon. Synthetic figures
are only indicative: real Cycles noise compresses worse.

Only gzip, lzf, shuffle and scale-offset are built into every HDF5. Blosc/Zstd/Bitshuffle
come from the `hdf5plugin` package and are measured if it is importable: a dataset written
with them cannot be read without that plugin (plain h5py, MATLAB, HDFView... fail), so
prefer the built-in filters unless the gain is large.

    python bench/bench_storage.py                      # synthetic
    python bench/bench_storage.py --shard out/train/shard-00000.h5 --scenes 2

Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from clevr_remv.scene.vocabulary import COLORS  # noqa: E402

from clevr_remv.config import RenderConfig  # noqa: E402
from clevr_remv.store import shard as shard_module  # noqa: E402
from clevr_remv.truth.depth_precision import round_mantissa  # noqa: E402

try:
    import hdf5plugin  # type: ignore[import-not-found]
except ImportError:  # the plugin filters are optional
    hdf5plugin = None


@dataclass
class Setting:
    """One filter configuration: a label for the table and create_dataset keyword arguments."""

    label: str
    kwargs: dict[str, Any]
    plugin: bool = False
    mantissa_bits: int | None = None  # depth rounded first (clevr_remv.truth.depth_precision), as the pipeline does


def builtin_settings(kind: str) -> list[Setting]:
    """Built-in filters worth considering. Shuffle is a no-op on 1-byte types, shown once to prove it."""
    out = [Setting("none", {}), Setting("lzf", dict(compression="lzf"))]
    for level in (1, 4, 6, 9):
        out.append(Setting(f"gzip{level}", dict(compression="gzip", compression_opts=level)))
    if kind == "depth":
        out.append(Setting("shuffle+lzf", dict(compression="lzf", shuffle=True)))
        for level in (1, 4, 6, 9):
            out.append(Setting(f"shuffle+gzip{level}", dict(compression="gzip", compression_opts=level, shuffle=True)))
        for bits in (16, 14, 12, 10):
            out.append(Setting(f"round{bits}+shuffle+gzip4 (lossy)",
                               dict(compression="gzip", compression_opts=4, shuffle=True), mantissa_bits=bits))
        # Lossy D-scaling to 1e-3; with +inf in a chunk HDF5 stores it unscaled (a no-op).
        out.append(Setting("scaleoffset3+gzip4 (lossy)", dict(scaleoffset=3, compression="gzip", compression_opts=4)))
    else:
        out.append(Setting("shuffle+gzip4", dict(compression="gzip", compression_opts=4, shuffle=True)))
    if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
        # szip (libaec) has a nearest-neighbour predictor, like PNG's; built into most but
        # not all HDF5 builds, so a reader could lack it.
        out.append(Setting("szip-nn32 (not in every HDF5)", dict(compression="szip", compression_opts=("nn", 32))))
    return out


def plugin_settings(kind: str) -> list[Setting]:
    """hdf5plugin filters (only if installed): the usual fast/strong candidates."""
    if hdf5plugin is None:
        return []
    blosc = hdf5plugin.Blosc
    shuffle = blosc.SHUFFLE if kind == "depth" else blosc.NOSHUFFLE
    out = [
        Setting("zstd3", dict(hdf5plugin.Zstd(clevel=3)), plugin=True),
        Setting("zstd9", dict(hdf5plugin.Zstd(clevel=9)), plugin=True),
        Setting("blosc-lz4", dict(blosc(cname="lz4", clevel=5, shuffle=shuffle)), plugin=True),
        Setting("blosc-zstd5", dict(blosc(cname="zstd", clevel=5, shuffle=shuffle)), plugin=True),
    ]
    if kind == "depth":
        out.append(Setting("blosc-zstd5-bitshuffle", dict(blosc(cname="zstd", clevel=5, shuffle=blosc.BITSHUFFLE)),
                           plugin=True))
        out.append(Setting("bitshuffle-lz4", dict(hdf5plugin.Bitshuffle(cname="lz4")), plugin=True))
    return out


def current_label(kind: str) -> dict[str, Any]:
    """The setting shard.py uses now, to mark it in the table."""
    return {"images": shard_module.IMAGE_COMPRESSION, "masks": shard_module.MASK_COMPRESSION,
            "depth": shard_module.DEPTH_COMPRESSION}[kind]


# ---------------------------------------------------------------------------- data


def load_shard(path: Path, scenes: int, views: int | None) -> dict[str, np.ndarray]:
    """Pixel arrays of the first `scenes` scenes (and `views` views) of a real shard."""
    with h5py.File(path, "r") as f:
        v = views or f["masks"].shape[1]
        return {k: f[k][:scenes, :v] for k in ("images", "masks", "depth")}


def _blob_layout(rng: np.random.Generator, n: int, h: int, w: int) -> list[tuple[float, float, float, int]]:
    """(row, col, radius, colour index) of n objects in the lower part of the image."""
    return [(rng.uniform(0.45, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(0.05, 0.12) * h, int(rng.integers(8)))
            for _ in range(n)]


def synthetic_scene(rng: np.random.Generator, views: int, h: int, w: int) -> dict[str, np.ndarray]:
    """One scene of V views that looks like a CLEVR render to a compressor.

    Floor: a smooth vertical gradient; objects: shaded discs that shift by a few pixels
    per view step (disparity); noise: sigma 1.5 grey levels like a denoised render.
    """
    grid = int(round(np.sqrt(views)))
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = 0.2 * h
    floor_depth = np.where(rows > horizon, 4.0 * h / np.maximum(rows - horizon, 1e-3) + 3.0, np.inf).astype(np.float32)
    floor = 95 + 50 * (rows / h) + 8 * np.sin(cols / w * np.pi)
    palette = np.array(list(COLORS.values()), dtype=np.float32)
    blobs = _blob_layout(rng, int(rng.integers(3, 11)), h, w)
    images = np.empty((views, h, w, 3), np.uint8)
    masks = np.zeros((views, h, w), np.uint8)
    depth = np.empty((views, h, w), np.float32)
    for v in range(views):
        du, dv = v % grid - grid // 2, v // grid - grid // 2
        img = np.repeat(floor[..., None], 3, axis=2)
        dep = floor_depth.copy()
        for k, (r0, c0, rad, colour) in enumerate(blobs, start=1):
            r, c = r0 + 1.5 * dv, c0 + 1.5 * du
            d2 = ((rows - r) ** 2 + (cols - c) ** 2) / rad**2
            inside = d2 < 1
            shade = (0.55 + 0.45 * np.sqrt(np.clip(1 - d2, 0, 1)) - 0.15 * (cols - c) / rad)[..., None]
            img = np.where(inside[..., None], palette[colour] * shade, img)
            obj_depth = (8.0 + r0 / h * 4 - rad / h * 3 * np.sqrt(np.clip(1 - d2, 0, 1))).astype(np.float32)
            dep = np.where(inside & (obj_depth < dep), obj_depth, dep)
            masks[v][inside] = k
        img = img + rng.normal(0, 1.5, img.shape)
        images[v] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        depth[v] = dep
    return {"images": images, "masks": masks, "depth": depth}


def synthetic_data(scenes: int, views: int, h: int, w: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    per_scene = [synthetic_scene(rng, views, h, w) for _ in range(scenes)]
    return {k: np.stack([s[k] for s in per_scene]) for k in ("images", "masks", "depth")}


# ---------------------------------------------------------------------------- measuring


def _write(path: Path, array: np.ndarray, kwargs: dict[str, Any]) -> float:
    """Seconds to write `array` the way write_shard does: one-view chunks, scene by scene."""
    chunks = (1, 1) + array.shape[2:]
    start = time.perf_counter()
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", array.shape, array.dtype, chunks=chunks, **kwargs)
        for i in range(array.shape[0]):
            ds[i] = array[i]
    return time.perf_counter() - start


def _read(path: Path) -> tuple[float, np.ndarray, int]:
    """Seconds to read every view one at a time, the data read back, and the storage size."""
    start = time.perf_counter()
    with h5py.File(path, "r") as f:
        ds = f["x"]
        out = np.empty(ds.shape, ds.dtype)
        for i in range(ds.shape[0]):
            for v in range(ds.shape[1]):
                out[i, v] = ds[i, v]
        size = ds.id.get_storage_size()
    return time.perf_counter() - start, out, size


def _exact(a: np.ndarray, b: np.ndarray) -> tuple[bool, float]:
    """Whether the round trip is exact (inf matching inf), and the largest finite error."""
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b)), float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())
    same_inf = np.array_equal(np.isinf(a), np.isinf(b))
    finite = np.isfinite(a) & np.isfinite(b)
    err = float(np.abs(a[finite] - b[finite]).max()) if finite.any() else 0.0
    return bool(same_inf and err == 0.0 and np.isfinite(b).sum() == np.isfinite(a).sum()), err


def measure(kind: str, array: np.ndarray, setting: Setting, workdir: Path, repeats: int) -> dict[str, Any]:
    """Best-of-`repeats` figures of one setting on one dataset."""
    path = workdir / f"{kind}.h5"
    mb = array.nbytes / 1e6
    if setting.mantissa_bits is not None:
        array = round_mantissa(array, setting.mantissa_bits)
    try:
        writes, reads = [], []
        for _ in range(repeats):
            writes.append(_write(path, array, setting.kwargs))
            seconds, back, size = _read(path)
            reads.append(seconds)
        exact, err = _exact(array, back)
    except Exception as e:  # a filter that cannot handle this data is a result too
        return {"kind": kind, "setting": setting.label, "error": f"{type(e).__name__}: {e}"}
    finally:
        path.unlink(missing_ok=True)
    return {
        "kind": kind,
        "setting": setting.label,
        "plugin": setting.plugin,
        "current": setting.kwargs == {k: v for k, v in current_label(kind).items() if v is not False}
        and setting.mantissa_bits == (RenderConfig().depth_mantissa_bits if kind == "depth" else None),
        "bytes_per_scene": int(size / array.shape[0]),
        "ratio": round(array.nbytes / size, 2),
        "write_MBps": round(mb / min(writes), 1),
        "read_MBps": round(mb / min(reads), 1),
        "exact": exact,
        "max_error": err,
    }


def print_table(results: list[dict[str, Any]], header: str) -> None:
    print(header)
    print(f"{'dataset':8} {'setting':28} {'MB/scene':>9} {'ratio':>6} {'write MB/s':>11} {'read MB/s':>10}  exact")
    for r in results:
        if "error" in r:
            print(f"{r['kind']:8} {r['setting']:28} error: {r['error']}")
            continue
        mark = " *" if r["current"] else ("  (plugin)" if r["plugin"] else "")
        exact = "yes" if r["exact"] else f"NO (max err {r['max_error']:.3g})"
        print(f"{r['kind']:8} {r['setting']:28} {r['bytes_per_scene'] / 1e6:9.2f} {r['ratio']:6.2f} "
              f"{r['write_MBps']:11.1f} {r['read_MBps']:10.1f}  {exact}{mark}")
    print("* = the setting shard.py uses now")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shard", type=Path, help="take data from this shard (default: synthetic)")
    p.add_argument("--scenes", type=int, default=2)
    p.add_argument("--views", type=int, default=None, help="views per scene (default: all; 81 synthetic)")
    p.add_argument("--width", type=int, default=480, help="synthetic only")
    p.add_argument("--height", type=int, default=320, help="synthetic only")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=None, help="where temporary files go (default: system tmp)")
    p.add_argument("--only", choices=("images", "masks", "depth"), action="append")
    p.add_argument("--no-plugins", action="store_true", help="skip hdf5plugin filters even if installed")
    args = p.parse_args(argv)

    if args.shard:
        data, source = load_shard(args.shard, args.scenes, args.views), str(args.shard)
    else:
        data, source = synthetic_data(args.scenes, args.views or 81, args.height, args.width), "SYNTHETIC"
    s, v, h, w = data["masks"].shape
    workdir = Path(tempfile.mkdtemp(prefix="bench_storage_", dir=args.workdir))
    results = []
    try:
        for kind in args.only or ("images", "masks", "depth"):
            settings = builtin_settings(kind) + ([] if args.no_plugins else plugin_settings(kind))
            for setting in settings:
                results.append(measure(kind, data[kind], setting, workdir, args.repeats))
                print(".", end="", flush=True, file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(file=sys.stderr)
    header = (f"data: {source} ({s} scenes x {v} views x {h}x{w}), best of {args.repeats}, "
              f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, "
              f"hdf5plugin {'%s' % hdf5plugin.version if hdf5plugin else 'not installed'}")
    print_table(results, header)
    print(json.dumps({"bench": "storage", "synthetic": args.shard is None, "source": source,
                      "shape": {"scenes": s, "views": v, "height": h, "width": w},
                      "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
