"""Feed CLEVR-Remv to PyTorch: RefDataset in a torch.utils.data.DataLoader with worker processes.

    pip install torch                # optional: clevr-remv itself does not need PyTorch
    python examples/train_loader.py out/                          # train split, centre view
    python examples/train_loader.py out/ --split test --views corners --start-method spawn

Runs one pass over the split as a training loop would (batches of image tensors, target
masks and sentences) and prints what the batches hold. Replace the loop body with your
model; the text side (tokenising `batch["sentence"]`) belongs to the model.
"""

from __future__ import annotations

import time

import numpy as np

from clevr_remv import RefDataset
from clevr_remv.contract import ScriptParser, UserError, run_script

try:
    import torch
    from torch.utils.data import DataLoader
except ImportError:  # said after the arguments and the dataset are checked
    torch = None


def to_tensors(sample: dict) -> dict:
    """Image as float CHW in [0, 1], mask as a float (1, H, W) target; ids and sentence as they are.

    A module-level function, so that it pickles into spawned workers.
    """
    sample["image"] = torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))).float() / 255
    sample["mask"] = torch.from_numpy(sample["mask"]).float()[None]
    return sample


def main() -> None:
    parser = ScriptParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a rendered dataset (the folder with dataset.json)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--views", default="center", help="center, corners, all or indices like 0,4,8")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start-method", choices=["fork", "spawn", "forkserver"], default=None,
                        help="worker start method (default: the platform's)")
    args = parser.parse_args()

    if args.batch_size < 1 or args.workers < 0:
        parser.error("--batch-size must be at least 1 and --workers at least 0")
    dataset = RefDataset(args.root, args.split, views=args.views, transform=to_tensors)
    if torch is None:
        raise UserError("this example needs PyTorch: pip install torch  (CPU-only wheels are enough)")
    print(dataset)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        multiprocessing_context=args.start_method if args.workers else None,
                        persistent_workers=args.workers > 0)
    start, samples, foreground = time.perf_counter(), 0, 0.0
    for step, batch in enumerate(loader):
        if step == 0:
            print("image", tuple(batch["image"].shape), batch["image"].dtype,
                  "| mask", tuple(batch["mask"].shape), "| views", batch["view"].tolist())
            print("sentences:", batch["sentence"][:3])
        samples += len(batch["ref_id"])
        foreground += batch["mask"].mean(dim=(1, 2, 3)).sum().item()
    seconds = time.perf_counter() - start
    print(f"{samples} samples in {seconds:.2f} s ({samples / max(seconds, 1e-9):.0f}/s) with {args.workers} workers; "
          f"mean referent area {foreground / max(samples, 1):.2%} of the image")


if __name__ == "__main__":
    run_script(main)
