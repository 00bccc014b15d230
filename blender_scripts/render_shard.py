"""Render shards inside a Blender install: `blender -b -P blender_scripts/render_shard.py -- ARGS`.

For render farms whose nodes have Blender 4.5 but not pip's `bpy` module. ARGS are those of
`clevr-remv render` for one process (e.g. `--scenes 10000 --out /data/clevr-remv --shard auto --gpus 0`). Blender's
bundled Python needs this package's dependencies once:
    blender -b --python-expr "import subprocess, sys; subprocess.check_call([sys.executable, '-m', 'pip', 'install', '/path/to/clevr-remv'])"
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.cli import main  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
# One process: Blender's bundled Python cannot start more Blenders, so --workers > 1 is refused
# here; --gpus I pins this Blender to GPU I (start one per GPU), --shard I/N|auto splits a farm.
main(args=["render", *argv], prog_name="clevr-remv", obj={"single_process": True})
