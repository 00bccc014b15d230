"""Which code rendered a shard: a fingerprint of the modules that decide its pixels.

A render resumed after clevr-remv was upgraded (or, in a development checkout, edited) renders
its remaining shards with other code than the first ones. Masks, depth and cameras come out the
same as long as the layout and the rig do, but the images' noise need not: the per-view Cycles
seeds once changed every image by up to 176 levels and nothing else, and a killed-and-resumed
test compared two such versions without a word (bench/measured/kill_resume.txt). Like a farm
that mixes Blender versions, a mix is allowed but never silent: every shard records the
fingerprint, a resume that meets another one says so, and dataset.json lists them all.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent.parent

# What decides a shard's pixels, relative to the package: the scene drawn from the seed and the rig
# (scene/), the Cycles settings, seeds and passes (render/, config.py), the hidden-object rule and
# the depth rounding (truth/), and the path that strings them together (produce/pixel_path.py).
# Not finishing, resuming, regenerating, the card or the expressions: they change no pixel, and the
# expressions can be regenerated from the stored scenes.
PIXEL_CODE = ("render", "scene", "config.py", "truth/visibility.py", "truth/depth_precision.py",
              "produce/pixel_path.py")

ATTRIBUTE = "render_code"


def _sources(package: Path) -> list[Path]:
    files = []
    for name in PIXEL_CODE:
        path = package / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    return files


@lru_cache(maxsize=None)
def render_code_fingerprint(package: Path = PACKAGE) -> str:
    """16 hex digits of SHA-256 over the pixel-deciding sources (names and bytes): the same for
    every install of one release, different as soon as one of those files differs."""
    digest = hashlib.sha256()
    for path in _sources(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def warn_of_other_code(shard_attrs: Iterable[tuple[Path, dict]]) -> list[Path]:
    """Log one line naming the complete shards rendered by other code than this one; return them.

    Shards from before the fingerprint existed carry none and are not counted.
    """
    ours = render_code_fingerprint()
    other = [(path, str(attrs[ATTRIBUTE])) for path, attrs in shard_attrs
             if attrs.get(ATTRIBUTE) not in (None, ours)]
    if other:
        codes = sorted({code for _, code in other})
        log.warning("%d complete shard(s), e.g. %s, were rendered by other clevr-remv code (render code %s; "
                    "this is %s): the shards rendered now may differ from them in image noise (masks, depth "
                    "and cameras do not); to keep one version, finish the dataset with the clevr-remv that "
                    "started it", len(other), other[0][0], ", ".join(codes), ours)
    return [path for path, _ in other]


def codes_of(shard_attrs: Iterable[dict]) -> list[str]:
    """Every render-code fingerprint among the shards' attributes, for dataset.json."""
    return sorted({str(a[ATTRIBUTE]) for a in shard_attrs if a.get(ATTRIBUTE)})
