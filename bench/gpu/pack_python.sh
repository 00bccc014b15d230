#!/usr/bin/env bash
# Pack a self-contained Python 3.11 + bpy for a GPU machine whose own Python cannot install bpy
# (another version, no network), in parts small enough to carry one per call:
#
#   bash bench/gpu/pack_python.sh .venv .gpu 9.0      # .gpu/c0/part-00, .gpu/c1/part-01, ...
#
# VENV is a venv with clevr-remv's runtime packages and bpy (4.5 or 5.0); each CAP after OUT gets a
# prebuilt Cycles kernel (clevr-remv gpu-kernels --build CAP, 13 min of one core, reused from
# OUT/kernel_sm_XY.cubin.zst when there), so the GPU renders at once instead of JIT-compiling.
# The tree drops what rendering on NVIDIA does not need (HIP kernels, the shipped cubins, tests,
# tkinter): about 890 MB, 265 MB as xz (5 parts). bench/gpu/measure.sh unpacks and uses it on the GPU machine.
set -euo pipefail
VENV=$(realpath "$1"); OUT=$(realpath -m "$2"); shift 2
PART_MB=${PART_MB:-60}
PY=$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)')
VER=$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
SRC=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
STAGE=$(mktemp -d)/py
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/syslib" "$OUT"
cp "$PY/bin/python$VER" "$STAGE/bin/"
cp -a "$PY"/lib/libpython"$VER".so* "$STAGE/lib/"
(cd "$PY/lib/python$VER" && tar cf - --exclude=./site-packages --exclude=./test --exclude=./idlelib \
    --exclude=./tkinter --exclude=./turtledemo --exclude=./lib2to3 --exclude=./ensurepip \
    --exclude=__pycache__ --exclude="./config-$VER-*" .) \
  | (mkdir -p "$STAGE/lib/python$VER" && cd "$STAGE/lib/python$VER" && tar xf -)
SP="$STAGE/lib/python$VER/site-packages"; mkdir -p "$SP"
(cd "$SRC" && tar cf - --exclude=__pycache__ bpy numpy numpy.libs h5py h5py.libs OpenEXR*.so Imath.py \
    click tqdm PIL pillow.libs zstandard) | (cd "$SP" && tar xf -)
LIB=$(ls -d "$SP"/bpy/*/scripts/addons_core/cycles/lib)
rm -f "$LIB"/*gfx* "$LIB"/kernel_sm_* "$LIB"/kernel_optix_osl* "$SP"/bpy/lib/libOpenImageDenoise_device_{hip,sycl}*
rm -rf "$LIB/../source" "$SP"/bpy/*/datafiles/studiolights "$SP"/bpy/*/scripts/freestyle
for CAP in "$@"; do
    NAME=kernel_sm_${CAP/./}.cubin.zst
    if [ -f "$OUT/$NAME" ]; then cp "$OUT/$NAME" "$LIB/"
    else "$VENV/bin/clevr-remv" gpu-kernels --lib "$LIB" --build "$CAP" && cp "$LIB/$NAME" "$OUT/"; fi
done
# System libraries the extension modules load; measure.sh drops those the GPU machine has itself.
find "$STAGE" -name '*.so*' -type f -print0 | xargs -0 ldd 2>/dev/null | awk '$3 ~ /^\/(usr\/)?lib/ {print $3}' \
  | sort -u | grep -vE 'lib(c|m|pthread|dl|rt|util|gcc_s|stdc\+\+)\.so|ld-linux' \
  | while read -r l; do cp -L "$l" "$STAGE/syslib/"; done || true  # ldd fails on data-only .so files
rm -f "$STAGE"/lib/python"$VER"/lib-dynload/_tkinter* "$STAGE"/syslib/libt[ck]*
du -sh "$STAGE"
rm -rf "$OUT"/c[0-9]*
(cd "$(dirname "$STAGE")" && tar cf - py) | xz -9 -T0 | split -b "${PART_MB}M" -d - "$OUT/part-"
i=0; for p in "$OUT"/part-*; do mkdir -p "$OUT/c$i"; mv "$p" "$OUT/c$i/"; i=$((i + 1)); done
rm -rf "$(dirname "$STAGE")"
ls -la "$OUT"/c*/
