#!/usr/bin/env bash
# The GPU figures, on a machine where bench/gpu/pack_python.sh's parts have been carried in.
# Run from the repository root; every stage appends to $OUT/log.txt (OUT defaults to /tmp/gpu-out)
# and writes its own file, so a stage cut off by a time limit still leaves what it measured.
#
#   bash bench/gpu/measure.sh receive          # one call per carried .gpu/cK folder: keep its part
#   bash bench/gpu/measure.sh info             # unpack once; GPUs, driver, Cycles' devices and kernels
#   bash bench/gpu/measure.sh warmup optix     # first render: kernel load (and any compile), timed
#   bash bench/gpu/measure.sh scale optix 1 2  # bench_scale: 4 scenes, 9x9 views, 480x320, default quality
#   bash bench/gpu/measure.sh quality optix    # bench_render: speed and PSNR against GPU references
#
# Stage time limits (seconds) come from LIMIT (default 300). With this project's device tool: one call
# per part, `bash bench/gpu/measure.sh receive` carrying [".gpu/cK"] (about 10 s each on a warm
# machine), then one call chaining info, warmup and scale, then quality if time is left.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; WORK=/tmp/clevr-remv-gpu; LIMIT=${LIMIT:-300}
mkdir -p "$OUT" "$WORK/parts" "$WORK/home"
exec > >(tee -a "$OUT/log.txt") 2>&1
START=$(date +%s)
say() { echo "== $(date -u +%H:%M:%S) +$(( $(date +%s) - START )) s: $*"; }

unpack() {
    [ -x "$WORK/py/bin/python3.11" ] && return
    say "unpack $(ls "$WORK/parts" | wc -l) part(s)"
    cat "$WORK"/parts/part-* | xz -dc -T0 | tar xf - -C "$WORK" || { echo "unpack failed"; exit 1; }
    for f in "$WORK"/py/syslib/*; do  # the machine's own libraries win where it has them
        ldconfig -p | awk '{print $1}' | grep -qxF "$(basename "$f")" && rm -f "$f"
    done
    say "unpacked; bundled system libraries kept: $(ls "$WORK/py/syslib" | tr '\n' ' ')"
}

environment() {
    unpack
    export LD_LIBRARY_PATH=$WORK/py/lib:$WORK/py/syslib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
    export PYTHONPATH=$PWD HOME=$WORK/home PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
    PY=$WORK/py/bin/python3.11
}

cli() { "$PY" -c "from clevr_remv.cli import main; main()" "$@"; }

case "${1:-}" in
receive)
    cp -v .gpu/c*/part-* "$WORK/parts/" ;;
info)
    environment
    nvidia-smi --query-gpu=index,name,compute_cap,driver_version,memory.total,clocks.max.sm --format=csv
    nproc; grep PRETTY /etc/os-release
    cli gpu-kernels
    "$PY" -c "import bpy; from clevr_remv.render.cycles import available_gpus; print('Blender', bpy.app.version_string, available_gpus())" ;;
warmup)
    environment; device=${2:-optix}; say "warm-up render, $device"
    t0=$(date +%s.%N)
    timeout "$LIMIT" "$PY" -c "from clevr_remv.cli import main; main()" render --scenes 1 --rig 3 --width 48 --height 32 \
        --device "$device" --out "$WORK/warmup-$device-$(date +%s)" 2>&1 | tr '\r' '\n' \
        | tee "$OUT/warmup-$device.txt" | grep -E "clevr-remv:|rror|arning"
    status=${PIPESTATUS[0]}
    say "warm-up $device: $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $t0}") s wall (exit $status)" ;;
scale)
    environment; device=${2:-optix}; shift 2; workers=${*:-1 2}; say "bench_scale $device, workers $workers"
    timeout "$LIMIT" "$PY" bench/bench_scale.py --device "$device" --gpus 0 --workers $workers --scenes 4 --rig 9 \
        --width 480 --height 320 --samples 12 | tee "$OUT/scale-$device.txt"
    say "bench_scale $device exit ${PIPESTATUS[0]}" ;;
quality)
    environment; device=${2:-optix}; say "bench_render $device"
    timeout "$LIMIT" "$PY" bench/bench_render.py --device "$device" --results "$WORK/references" \
        | tee "$OUT/render-$device.txt"
    say "bench_render $device exit ${PIPESTATUS[0]}"
    tar cf "$OUT/references-$device.tar" -C "$WORK" references ;;
*)
    sed -n '2,14p' "$0"; exit 2 ;;
esac
