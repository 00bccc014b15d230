"""Kill a `--workers` render at a random moment, resume it, compare every view with a clean run.

Issue #15 item 7: a SIGKILLed and resumed run twice gave train images up to 176 levels off
(masks and depth identical) under heavy load. This repeats the test's scenario many times:

1. a clean reference: `clevr-remv render ... --workers 2` uninterrupted (and, as a sanity check,
   the same arguments in one process), once per run of this script, under the same load;
2. per cycle, into a fresh directory: the same command in its own process group, SIGKILLed
   (parent and workers at once, as a dead node) at a random moment after its first shard has
   started; then either *waited* (every killed process has exited before the resume) or *not
   waited* (the resume starts at once, while the killed Blenders may still be dying); the same
   command again resumes and must complete; every shard is compared with the reference view by
   view: images (largest difference in levels, pixels off by > 0 and > 1), masks and depth
   (bit-identical), and no temporary file may be left.

`--load` starts a busy loop per core (plus `--load-extra` more) for the whole run, so that the
renders compete for every core. `--in-process` does what tests/test_runners.py does: the reference
in one process and the resume inside this process (the killed run stays a subprocess).
`--reference-rev REV` renders the reference with that git revision's clevr_remv: with d436a97~1
(one Cycles seed for every view) every cycle shows the issue's 176 levels with identical masks and
depth, i.e. a reference made by other rendering code (bench/measured/kill_resume.txt). Cycles with
a difference over one level, a failed resume or a temporary file left keep their output (and the
resume's log) under --keep. One JSON line per cycle goes to --log; the summary at the end gives
the figures per condition (waited / not waited).

    python bench/bench_kill_resume.py --cycles 60 --load          # ~14 s a cycle on 2 busy cores
    python bench/bench_kill_resume.py --cycles 30 --load --in-process --kill-window 0 3 \
        --render-args "--scenes 3 --rig 3 --width 64 --height 48 --samples 2 --scenes-per-shard 2 --seed 11 --no-progress"
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

CLI = str(Path(sys.executable).with_name("clevr-remv"))
DEFAULT_RENDER_ARGS = ("--scenes 10 --scenes-per-shard 2 --rig 3 --width 32 --height 24 --quality draft "
                       "--seed 7 --device cpu --no-progress")


# ---------------------------------------------------------------- processes


def start_load(count: int) -> list[subprocess.Popen]:
    """`count` busy loops (one per core keeps every core busy besides the renders)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_load(load: list[subprocess.Popen]) -> None:
    for process in load:
        process.kill()
    for process in load:
        process.wait()


def group_members(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` that still exist and are not zombies (a zombie has exited)."""
    left = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.append(pid)
    return left


def render_command(out: Path, render_args: list[str], workers: int) -> list[str]:
    return [CLI, "render", *render_args, "--out", str(out), *(["--workers", str(workers)] if workers else [])]


def code_at(revision: str, root: Path) -> Path:
    """This repository's files as of `revision` (git archive), to import clevr_remv from."""
    repository = Path(__file__).resolve().parents[1]
    dest = root / f"code-{revision.replace('/', '_')}"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repository), "archive", "--format=tar", revision],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_to_end(out: Path, render_args: list[str], workers: int, timeout: float,
               code: Path | None = None) -> tuple[int, str, float, float]:
    """Exit status, output, wall time, and when the first shard's temporary file appeared.

    `code`: a folder holding another revision's clevr_remv, imported instead of the installed one
    (by this Python, so with the same bpy), for the parent and its spawned workers alike."""
    start = time.monotonic()
    first_temporary = None
    command, env, cwd = render_command(out, render_args, workers), None, None
    if code is not None:  # run in that folder: `python -c` puts the working directory first on sys.path
        command = [sys.executable, "-c", "import sys; from clevr_remv.cli import main; sys.argv[0] = 'clevr-remv'; main()",
                   *command[1:]]
        env, cwd = {**os.environ, "PYTHONPATH": str(code)}, str(code)
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(command, stdout=output, env=env, cwd=cwd,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        while process.poll() is None:
            if first_temporary is None and out.is_dir() and temporaries(out):
                first_temporary = time.monotonic() - start
            if time.monotonic() - start > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                output.write(f"\ntimed out after {timeout} s")
                break
            time.sleep(0.02)
        output.seek(0)
        wall = time.monotonic() - start
        return process.returncode, output.read(), wall, first_temporary if first_temporary is not None else wall


def run_in_process(out: Path, render_args: list[str], workers: int) -> tuple[int, str, float, float]:
    """As tests/test_runners.py does: the CLI inside this process (which then holds a Blender)."""
    from click.testing import CliRunner

    from clevr_remv.cli import main

    start = time.monotonic()
    result = CliRunner().invoke(main, render_command(out, render_args, workers)[1:], catch_exceptions=True)
    wall = time.monotonic() - start
    return result.exit_code, result.output + (repr(result.exception) if result.exception else ""), wall, wall


def temporaries(out: Path) -> list[Path]:
    return sorted(out.rglob(".*.tmp-*"))


def complete_shards(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.glob("*/shard-*.h5"))


# ---------------------------------------------------------------- comparison


def compare(out: Path, reference: Path) -> dict:
    """Every shard of `reference` against `out`'s, view by view."""
    result = {"shards": 0, "image_max": 0, "pixels_off": 0, "pixels_off_by_more_than_1": 0, "pixels": 0,
              "masks_equal": True, "depth_equal": True, "scenes_equal": True, "missing": [], "worst": None}
    for name in complete_shards(reference):
        if not (out / name).exists():
            result["missing"].append(name)
            continue
        result["shards"] += 1
        with h5py.File(out / name, "r") as fa, h5py.File(reference / name, "r") as fb:
            result["scenes_equal"] &= list(fa["scenes"].asstr()[:]) == list(fb["scenes"].asstr()[:])
            result["masks_equal"] &= bool(np.array_equal(fa["masks"][:], fb["masks"][:]))
            result["depth_equal"] &= bool(np.array_equal(fa["depth"][:], fb["depth"][:]))
            a, b = fa["images"][:].astype(np.int16), fb["images"][:].astype(np.int16)
        diff = np.abs(a - b)  # (S, V, H, W, 3)
        result["pixels"] += diff[..., 0].size
        per_pixel = diff.max(axis=-1)
        result["pixels_off"] += int((per_pixel > 0).sum())
        result["pixels_off_by_more_than_1"] += int((per_pixel > 1).sum())
        if diff.size and diff.max() > result["image_max"]:
            s, v = np.unravel_index(np.argmax(diff.max(axis=(2, 3, 4))), diff.shape[:2])
            result["image_max"] = int(diff.max())
            result["worst"] = {"shard": name, "scene_row": int(s), "view": int(v),
                               "view_pixels_off_by_more_than_1": int((per_pixel[s, v] > 1).sum())}
    return result


# ---------------------------------------------------------------- one cycle


def cycle(number: int, waited: bool, reference: Path, render_args: list[str], workers: int, root: Path,
          kill_window: tuple[float, float], timeout: float, rng: random.Random, in_process: bool) -> dict:
    out = root / f"cycle-{number:04d}"
    process = subprocess.Popen(render_command(out, render_args, workers), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    # A random moment after the first shard has started (its temporary file exists).
    while not temporaries(out) and process.poll() is None and time.monotonic() - start < timeout:
        time.sleep(0.02)
    started = time.monotonic() - start
    delay = rng.uniform(*kill_window)
    time.sleep(delay)
    members = group_members(process.pid)
    finished_before_kill = process.poll() is not None
    shards_at_kill, temps_at_kill = complete_shards(out), len(temporaries(out))
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    killed_at = time.monotonic()
    if waited:
        process.wait()
        while alive(members) and time.monotonic() - killed_at < 60:
            time.sleep(0.01)
    left_alive = len(alive(members))  # at the resume's start
    if in_process:
        code, log, resume_s, _ = run_in_process(out, render_args, workers)
    else:
        code, log, resume_s, _ = run_to_end(out, render_args, workers, timeout)
    process.wait()
    record = {
        "cycle": number, "waited": waited, "kill_after_s": round(started + delay, 2),
        "first_temporary_s": round(started, 2), "killed_processes": len(members),
        "still_alive_at_resume": left_alive, "finished_before_kill": finished_before_kill,
        "complete_shards_at_kill": len(shards_at_kill), "temporaries_at_kill": temps_at_kill,
        "resume_exit": code, "resume_s": round(resume_s, 2),
        "temporaries_left": len(temporaries(out)), "manifest": (out / "dataset.json").exists(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    record.update(compare(out, reference))
    bad = (record["image_max"] > 1 or not (record["masks_equal"] and record["depth_equal"] and record["scenes_equal"])
           or code != 0 or record["missing"] or record["temporaries_left"] or not record["manifest"])
    record["bad"] = bool(bad)
    if bad:
        (out / "resume.log").write_text(log)
        record["kept"] = str(out)
    else:
        shutil.rmtree(out, ignore_errors=True)
    return record


# ---------------------------------------------------------------- main


def summary(records: list[dict]) -> dict:
    def figures(rows: list[dict]) -> dict:
        if not rows:
            return {"cycles": 0}
        return {
            "cycles": len(rows),
            "image_max_levels": max(r["image_max"] for r in rows),
            "cycles_with_a_pixel_off_by_more_than_1": sum(r["image_max"] > 1 for r in rows),
            "pixels_off_share": sum(r["pixels_off"] for r in rows) / max(1, sum(r["pixels"] for r in rows)),
            "masks_and_depth_identical": all(r["masks_equal"] and r["depth_equal"] for r in rows),
            "resumes_failed": sum(r["resume_exit"] != 0 for r in rows),
            "temporaries_left": sum(r["temporaries_left"] for r in rows),
            "killed_before_any_shard_complete": sum(r["complete_shards_at_kill"] == 0 for r in rows),
            "finished_before_kill": sum(r["finished_before_kill"] for r in rows),
            "killed_processes_still_alive_at_resume": sum(r["still_alive_at_resume"] > 0 for r in rows),
            "loadavg_1min_range": [min(r["loadavg_1min"] for r in rows), max(r["loadavg_1min"] for r in rows)],
        }

    return {"waited": figures([r for r in records if r["waited"]]),
            "not_waited": figures([r for r in records if not r["waited"]]),
            "all": figures(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="kill-and-resume cycles (alternately waited, not waited)")
    parser.add_argument("--wait", choices=("alternate", "yes", "no"), default="alternate",
                        help="wait for the killed processes to exit before resuming")
    parser.add_argument("--load", action="store_true", help="a busy loop on every core for the whole run")
    parser.add_argument("--load-extra", type=int, default=0, help="this many busy loops more")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--render-args", default=DEFAULT_RENDER_ARGS, help="the render options (shell words)")
    parser.add_argument("--kill-window", type=float, nargs=2, default=None, metavar=("MIN_S", "MAX_S"),
                        help="kill this many seconds after the first shard starts (default: across the clean run)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--reference-rev", default=None, metavar="REV",
                        help="render the reference with this git revision's clevr_remv (same Python and bpy): "
                             "what a comparison against a reference made by other code looks like")
    parser.add_argument("--in-process", action="store_true",
                        help="as the test: the reference in one process and the resume run inside this process "
                             "(click's CliRunner), not as subprocesses")
    parser.add_argument("--seed", type=int, default=None, help="of the kill moments (default: random)")
    parser.add_argument("--root", type=Path, default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--keep", type=Path, default=Path("bench/results/kill_resume"),
                        help="where bad cycles' outputs are moved")
    parser.add_argument("--log", type=Path, default=None, help="one JSON line per cycle (default: under --keep)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # so that the busy loops are ended too

    import bpy  # only for the version it reports; the renders run in the CLI's processes

    blender = bpy.app.version_string
    render_args = shlex.split(args.render_args)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    root = args.root or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    root.mkdir(parents=True, exist_ok=True)
    args.keep.mkdir(parents=True, exist_ok=True)
    log_path = args.log or args.keep / f"cycles-{blender.split()[0]}-{int(time.time())}.jsonl"
    load = start_load((os.cpu_count() or 1) + args.load_extra if args.load else args.load_extra)
    print(f"Blender {blender}, Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{len(load)} busy loop(s); render {' '.join(render_args)} --workers {args.workers}; kill seed {seed}",
          flush=True)
    try:
        reference = root / "reference"
        other_code = code_at(args.reference_rev, root) if args.reference_rev else None
        code, output, clean_s, clean_first = run_to_end(reference, render_args, args.workers, args.timeout, other_code)
        assert code == 0, output
        serial = root / "serial"
        code, output, serial_s, _ = (run_in_process if args.in_process else run_to_end)(
            serial, render_args, 0, *([] if args.in_process else [args.timeout]))
        assert code == 0, output
        sanity = compare(serial, reference)
        if args.in_process and not args.reference_rev:  # as the test's tiny_dataset: rendered in the pytest process
            reference, serial = serial, reference
        shutil.rmtree(serial)
        print(f"clean run{' by ' + args.reference_rev + ' (the reference)' if args.reference_rev else ''} {clean_s:.1f} s "
              f"(--workers {args.workers}; first shard started at {clean_first:.1f} s), "
              f"one process {serial_s:.1f} s; "
              f"one process{' (this code)' if args.reference_rev else ''} vs the --workers run: images max "
              f"{sanity['image_max']} levels, "
              f"{sanity['pixels_off']} of {sanity['pixels']} pixels off, masks/depth identical "
              f"{sanity['masks_equal'] and sanity['depth_equal']}", flush=True)
        # By default anywhere between the first shard's start and the clean run's end.
        window = tuple(args.kill_window) if args.kill_window else (0.0, max(0.5, clean_s - clean_first))
        records = []
        with log_path.open("a") as log:
            for number in range(args.cycles):
                waited = {"yes": True, "no": False, "alternate": number % 2 == 0}[args.wait]
                record = cycle(number, waited, reference, render_args, args.workers, root, window, args.timeout, rng,
                               args.in_process)
                record.update(blender=blender)
                if record["bad"]:
                    kept = args.keep / f"{blender.split()[0]}-{int(time.time())}-cycle-{number:04d}"
                    shutil.move(record["kept"], kept)
                    record["kept"] = str(kept)
                log.write(json.dumps(record) + "\n")
                log.flush()
                records.append(record)
                print(f"cycle {number:3d} {'waited    ' if waited else 'not waited'} kill at {record['kill_after_s']:5.1f} s "
                      f"({record['complete_shards_at_kill']} shards done, {record['still_alive_at_resume']} alive at "
                      f"resume) resume exit {record['resume_exit']} in {record['resume_s']:.1f} s; images max "
                      f"{record['image_max']}, {record['pixels_off']} px off, masks/depth "
                      f"{'same' if record['masks_equal'] and record['depth_equal'] else 'DIFFER'}; load "
                      f"{record['loadavg_1min']}{'  BAD -> ' + record['kept'] if record['bad'] else ''}", flush=True)
    finally:
        stop_load(load)
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "blender": blender,
              "python": platform.python_version(), "cores": os.cpu_count(), "busy_loops": len(load),
              "render_args": render_args, "workers": args.workers, "kill_window_s": window, "kill_seed": seed,
              "clean_run_s": round(clean_s, 1), "reference_rev": args.reference_rev, "one_process_vs_workers_image_max": sanity["image_max"],
              "log": str(log_path), **summary(records)}
    print(json.dumps(result, indent=1))
    if args.root is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
