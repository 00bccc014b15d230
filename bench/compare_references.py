"""Do two devices render the same reference? PSNR between the cached references of two result folders.

bench_render.py keys a cached reference by everything its pixels depend on except the device, so
that references rendered on a GPU can serve a CPU run. This measures that assumption: run the same
`bench_render.py` on both devices, each with its own --results folder, then

    python bench/compare_references.py bench/results bench/results-gpu

pairs the files with the same key and prints, per reference, the devices and the PSNR between
them (8-bit sRGB, per view), and one JSON line with the mean and the worst.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.gpu.image_quality import psnr  # noqa: E402


def device(cached) -> str:
    return str(cached["device"]) if "device" in cached.files else "unknown device"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    pairs = sorted(p.name for p in args.first.glob("reference-*.npz") if (args.second / p.name).exists())
    if not pairs:
        parser.error(f"no reference in {args.first} has a counterpart in {args.second}")
    values = []
    for name in pairs:
        a, b = np.load(args.first / name), np.load(args.second / name)
        per_view = [psnr(x, y) for x, y in zip(a["images"], b["images"])]
        values.extend(per_view)
        shape = "x".join(map(str, a["images"].shape[1:3][::-1]))
        print(f"{name}  {shape}  {device(a):>28} vs {device(b):<28} "
              + " ".join(f"{v:6.2f}" for v in per_view) + " dB")
    print(json.dumps({"references": len(pairs), "views": len(values), "psnr_db_mean": round(float(np.mean(values)), 2),
                      "psnr_db_worst": round(float(np.min(values)), 2)}))


if __name__ == "__main__":
    main()
