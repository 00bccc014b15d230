"""`export lf-mat`: one MATLAB `.mat` per scene with key `LF`, a (U, V, H, W, 3) uint8 array, as
BasicLFSR (and the light-field super-resolution code built on it) reads its datasets.

    OUT/training/<scene>.mat      the train split (BasicLFSR's Generate_Data_for_Training reads training/)
    OUT/validation/<scene>.mat    the val split
    OUT/test/<scene>.mat          the test split (Generate_Data_for_Test reads test/)
    OUT/export.json               what was exported

`LF[u, v]` is view k = u·N + v (u the row from the top, v the column from the left), as BasicLFSR's
`LF[u, v, h, w, c]`. Nothing else goes into the split folders: BasicLFSR loads every file there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clevr_remv.data.lightfield_scenes import LightFieldScene
from clevr_remv.export.light_field_plan import export_lightfield, split_folder


def write_lf_mat_scene(scene: LightFieldScene, staging: Path, options: dict[str, Any]) -> int:
    from scipy.io import savemat

    n = scene.grid
    lf = scene.images.reshape(n, n, *scene.images.shape[1:])
    path = staging / split_folder("lf-mat", scene.split) / f"{scene.name}.mat"
    savemat(path, {"LF": lf}, do_compression=bool(options.get("compress")), oned_as="column")
    return n * n


def export_lf_mat(root: Path, out: Path, views: Any = "all", splits: list[str] | None = None, *,
                  scenes: str | None = None, compress: bool = False, overwrite: bool = False, workers: int = 1,
                  progress: bool = False) -> dict[str, Any]:
    """Export the chosen splits and scenes of `root` to `out` as BasicLFSR `.mat` files."""
    return export_lightfield("lf-mat", write_lf_mat_scene, Path(root), Path(out), splits, scenes=scenes,
                             what=("images",), options={"compress": compress},
                             overwrite=overwrite, workers=workers, progress=progress)
