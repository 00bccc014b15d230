"""Read a rendered CLEVR-Remv dataset: scenes, views, masks and referring pairs.

    python examples/read_dataset.py out/            # after `clevr-remv render ... --out out/`

Prints every referring pair of the first train scene with its visibility across views,
and saves the centre view with the first referent highlighted to `example.png`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from clevr_remv.contract import ScriptParser, run_script
from clevr_remv.store import DatasetReader


def main() -> None:
    parser = ScriptParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="a rendered dataset (the folder with dataset.json)")
    dataset = DatasetReader(parser.parse_args().root)
    print("splits:", {s: dataset.manifest["splits"][s]["scenes"] for s in dataset.splits})
    for shard, row in dataset.iter_scenes("train"):  # the shard stays open inside the loop
        show_scene(shard, row)
        break


def show_scene(shard, row: int) -> None:
    scene = shard.scene(row)
    print(f"scene {scene.index}: {len(scene.objects)} objects, {shard.num_views} views of {shard.image_size}")
    for obj in scene.objects:
        print(f"  object {obj.id}: {obj.size} {obj.color} {obj.material} {obj.shape} at {np.round(obj.position, 2)}")

    pairs = [p for p in shard.refs() if p["scene"] == row]
    for p in pairs:
        print(f"  [{p['family']}] {p['expression']!r} -> object {p['object']}, visible in {p['visible'].sum()} views")

    centre = shard.view(row, scene.rig.centre_view)
    image = centre["image"].copy()
    if pairs:
        referent = centre["mask"] == pairs[0]["object"]
        image[referent] = (0.5 * image[referent] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
        print(f"saved example.png: {pairs[0]['expression']!r} in red")
    Image.fromarray(image).save("example.png")


if __name__ == "__main__":
    run_script(main)
