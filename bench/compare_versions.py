"""Whether two versions of the code behave the same: every command's `--help`, a tiny rendered dataset
and what the commands make of it, compared side by side in one run.

A refactoring promises that no output changes. This checks it: the code at a git revision (by default
HEAD, so that the working tree's uncommitted or newest changes are compared with the last commit;
`--ref main~5` compares with an older one) is checked out into a temporary worktree, and both trees
are run by this Python (the checkout's venv) with PYTHONPATH pointing at each:

    .venv/bin/python bench/compare_versions.py --ref 02f7808

1. `--help` of every command and subcommand, text for text;
2. a tiny dataset (5 scenes, 3x3 views at 32x24, --amodal-masks) rendered by each: every HDF5 dataset
   and attribute equal, but `render_code` (the fingerprint of the pixel code, which moves with any
   edit to it) and the images, which Cycles on several CPU threads renders up to 1 level apart from
   run to run even with the same code (the figure is printed);
3. `stats`, `evaluate` (centre-mask baseline, by occlusion too), `evaluate-disparity`, `verify` and the
   exports, each run by both versions on the same dataset: printed output and every file equal (JSON
   and text byte for byte, PNGs pixel for pixel, HDF5 dataset for dataset).

Prints one line per difference and a last JSON line; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RENDER = ["render", "--scenes", "5", "--rig", "3", "--width", "32", "--height", "24", "--samples", "2",
          "--scenes-per-shard", "2", "--seed", "3", "--amodal-masks", "--no-progress"]
COMMANDS = {  # name -> arguments after the dataset; {out} is a fresh folder per version
    "verify": ["verify", "{data}", "--no-progress"],
    "stats": ["stats", "{data}", "--out", "{out}/figures"],
    "evaluate": ["evaluate", "{data}", "--split", "test", "--baseline", "centre-mask", "--views", "corners",
                 "--no-progress", "--json", "{out}/scores.json"],
    "evaluate-occlusion": ["evaluate", "{data}", "--split", "test", "--baseline", "centre-mask", "--by", "occlusion",
                           "--no-progress"],
    "evaluate-disparity": ["evaluate-disparity", "{data}", "--split", "test", "--baseline", "zero"],
    "export-refcoco": ["export", "refcoco", "{data}", "--out", "{out}/refcoco"],
    "export-coco": ["export", "coco", "{data}", "--out", "{out}/coco", "--amodal"],
    "export-hci": ["export", "hci", "{data}", "--out", "{out}/hci"],
    "export-lf-mat": ["export", "lf-mat", "{data}", "--out", "{out}/lf-mat"],
    "export-focal-stack": ["export", "focal-stack", "{data}", "--out", "{out}/focal-stack"],
    "export-hf": ["export", "hf", "{data}", "--out", "{out}/hf"],
}
HELP_SCRIPT = """
import json, click
from click.testing import CliRunner
from clevr_remv.cli import main
texts = {}
def walk(command, path):
    texts[" ".join(path) or "clevr-remv"] = CliRunner().invoke(main, [*path, "--help"], terminal_width=100).output
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            walk(command.get_command(context, name), [*path, name])
walk(main, [])
print(json.dumps(texts))
"""
# matplotlib names SVG elements from a random salt unless one is set
MATPLOTLIBRC = Path(tempfile.mkdtemp(prefix="clevr-remv-compare-mpl-")) / "matplotlibrc"
MATPLOTLIBRC.write_text("svg.hashsalt: clevr-remv\n")
# What differs between two runs of the same code: progress bars (rates, ETA) and measured seconds.
VOLATILE = [re.compile(r"^.*\|[^|\n]*\|.*(?:/s\]|s/\w+\])$", re.M), re.compile(r"in \d+(?:\.\d+)? s\b")]
IGNORED_ATTRS = {"render_code"}  # the pixel code's fingerprint: it follows every edit of that code


def run(tree: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # SOURCE_DATE_EPOCH: matplotlib's SVG and PDF files carry it instead of the time they were drawn.
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "100", "SOURCE_DATE_EPOCH": "0",
           "MATPLOTLIBRC": str(MATPLOTLIBRC.parent)}
    code = "import sys; from clevr_remv.cli import main; sys.argv[0] = 'clevr-remv'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)


def help_texts(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", HELP_SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def hdf5_items(path: Path) -> dict[str, object]:
    """Every dataset (as an array) and attribute of an HDF5 file, by name."""
    items: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Dataset):
                items[name] = obj[()]
            for key, value in obj.attrs.items():
                if key not in IGNORED_ATTRS:
                    items[f"{name}@{key}"] = value
        visit("/", f)
        f.visititems(visit)
    return items


def same(a: object, b: object) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def compare_files(old: Path, new: Path, where: str, differences: list[str], image_levels: list[int]) -> None:
    """Every file under `old` and `new` (relative names must match), by kind."""
    names = {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
    other = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    differences += [f"{where}: only in one version: {n}" for n in sorted(names ^ other)]
    for name in sorted(names & other):
        a, b = old / name, new / name
        if a.suffix == ".h5":
            x, y = hdf5_items(a), hdf5_items(b)
            differences += [f"{where}/{name}: {k} only in one version" for k in sorted(x.keys() ^ y.keys())]
            for key in sorted(x.keys() & y.keys()):
                if key.endswith("images") and np.asarray(x[key]).shape == np.asarray(y[key]).shape:
                    image_levels.append(int(np.abs(np.asarray(x[key], int) - np.asarray(y[key], int)).max()))
                    if image_levels[-1] > 1:
                        differences.append(f"{where}/{name}: {key} differs by {image_levels[-1]} levels")
                elif not same(x[key], y[key]):
                    differences.append(f"{where}/{name}: {key} differs")
        elif a.suffix == ".mat":  # the header holds the time it was written
            x, y = (scipy.io.loadmat(p) for p in (a, b))
            if x.keys() != y.keys() or not all(same(x[k], y[k]) for k in x if not k.startswith("__")):
                differences.append(f"{where}/{name}: arrays differ")
        elif a.suffix == ".parquet":
            import pyarrow.parquet as pq

            if not pq.read_table(a).equals(pq.read_table(b)):
                differences.append(f"{where}/{name}: rows differ")
        elif a.suffix == ".png":
            if not same(np.asarray(Image.open(a)), np.asarray(Image.open(b))):
                differences.append(f"{where}/{name}: pixels differ")
        elif name.name in ("dataset.json", "README.md"):
            if _without_render_code(a) != _without_render_code(b):
                differences.append(f"{where}/{name} differs")
        elif a.read_bytes() != b.read_bytes():
            differences.append(f"{where}/{name} differs")


def _steady(text: str) -> str:
    for pattern in VOLATILE:
        text = pattern.sub("", text.replace("\r", "\n"))
    return "\n".join(line for line in text.splitlines() if line.strip())


def _without_render_code(path: Path) -> object:
    """dataset.json without `render_codes`, the card without its render-code row: both follow the
    pixel code's fingerprint."""
    if path.suffix == ".json":
        return {k: v for k, v in json.loads(path.read_text()).items() if k != "render_codes"}
    return [line for line in path.read_text().splitlines() if "render code" not in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD", help="git revision to compare the working tree with")
    args = parser.parse_args()
    differences: list[str] = []
    image_levels: list[int] = []
    with tempfile.TemporaryDirectory(prefix="clevr-remv-compare-") as tmp:
        tmp = Path(tmp)
        old_tree = tmp / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old_tree), args.ref],
                       check=True, capture_output=True)
        try:
            trees = {"old": old_tree, "new": REPO}
            helps = {k: help_texts(tree) for k, tree in trees.items()}
            differences += [f"--help of {name!r} differs or exists in one version only"
                            for name in sorted(helps["old"].keys() | helps["new"].keys())
                            if helps["old"].get(name) != helps["new"].get(name)]
            for version, tree in trees.items():
                done = run(tree, [*RENDER, "--out", str(tmp / version / "data")], tmp)
                if done.returncode:
                    differences.append(f"render by the {version} version failed: {done.stderr.strip()[-300:]}")
            compare_files(tmp / "old" / "data", tmp / "new" / "data", "render", differences, image_levels)
            data = tmp / "new" / "data"  # both versions read one dataset: any difference is theirs
            for name, command in COMMANDS.items():
                printed = {}
                for version, tree in trees.items():
                    out = tmp / "out"  # one path for both versions, since commands print it
                    out.mkdir()
                    done = run(tree, [a.format(data=data, out=out) for a in command], tmp)
                    printed[version] = (done.returncode, *(_steady(text) for text in (done.stdout, done.stderr)))
                    out.rename(tmp / version / name)
                if printed["old"] != printed["new"]:
                    differences.append(f"{name}: exit status or printed output differs: {printed}")
                compare_files(tmp / "old" / name, tmp / "new" / name, name, differences, image_levels)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)], check=False)
    for line in differences:
        print(line)
    print(json.dumps({"ref": args.ref, "help_texts": len(helps["new"]), "commands": len(COMMANDS),
                      "differences": len(differences), "image_max_level_difference": max(image_levels, default=0)}))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
