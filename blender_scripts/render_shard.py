"""Render shards inside a Blender install: `blender -b -P blender_scripts/render_shard.py -- ARGS`.

For render farms whose nodes have Blender (4.5 LTS or 5.x) but not pip's `bpy` module. ARGS are those of
`clevr-remv render` for one process (e.g. `--scenes 10000 --out /data/clevr-remv --shard auto --gpus 0`).
The script imports the package from its own checkout; Blender's bundled Python needs the other
dependencies once (not `bpy`, which Blender is, nor NumPy, which Blender bundles):
    PY=$(blender -b --python-expr "import sys; print('PY=' + sys.executable)" | sed -n 's/^PY=//p')
    $PY -m ensurepip && $PY -m pip install h5py click pycocotools OpenEXR tqdm pillow matplotlib
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.cli import main  # noqa: E402
from clevr_remv.contract import exit_now  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
# One process: Blender's bundled Python cannot start more Blenders, so --workers > 1 is refused
# here; --gpus I pins this Blender to GPU I (start one per GPU), --shard I/N|auto splits a farm.
try:
    main(args=["render", *argv], prog_name="clevr-remv", obj={"single_process": True})
except SystemExit as done:  # this process is the command: exit deaf to late signals, as the console script does
    exit_now(0 if done.code is None else done.code if isinstance(done.code, int) else 1)
