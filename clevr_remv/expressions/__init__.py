"""The expression engine: template families -> functional programs -> checked referring sentences.

`generate_pairs` is what the pipeline calls once per scene. Every sentence is realised from a
CLEVR-style functional program (stored in `refs/program`); a pair is kept only when the
evaluator, run on the scene description, returns exactly its targets (its one referent in the
published language). Templates are data in the repository's `templates/` folder
(docs/expressions.md documents the format); `language_templates` keeps the families a dataset's
options (`--max-hops`, `--targets`, `--ordinals`) allow.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from clevr_remv.expressions.pairs import PAIRS_PER_SCENE, ExpressionResult, expression_rng, generate_pairs
from clevr_remv.expressions.programs import ProgramError, evaluate, execute, from_json, relation_count, to_json
from clevr_remv.expressions.templates import (
    TemplateError,
    TemplateSet,
    default_template_dir,
    load_templates,
    select_families,
)
from clevr_remv.scene.description import Scene
from clevr_remv.store.records import Ref

__all__ = [
    "PAIRS_PER_SCENE",
    "ExpressionResult",
    "ProgramError",
    "TemplateError",
    "TemplateSet",
    "default_template_dir",
    "evaluate",
    "execute",
    "expression_attrs",
    "expression_rng",
    "from_json",
    "generate_pairs",
    "generate_refs",
    "language_templates",
    "load_templates",
    "relation_count",
    "resolve_templates",
    "to_json",
]


@lru_cache(maxsize=None)
def _templates_in(path: str) -> TemplateSet:
    """Loaded once per process and folder: every scene of a run uses the same templates."""
    return load_templates(path)


def resolve_templates(templates: TemplateSet | str | Path | None) -> TemplateSet:
    """A loaded set as is; a folder (or None: the repository's) loaded once and cached, with EVERY family
    it holds (the harder language's too): to generate a dataset's sentences use `language_templates`,
    which keeps the families its options allow."""
    if isinstance(templates, TemplateSet):
        return templates
    return _templates_in(str(Path(templates or default_template_dir()).resolve()))


@lru_cache(maxsize=None)
def _selected(path: str, max_hops: int, targets: str, ordinals: bool) -> TemplateSet:
    return select_families(_templates_in(path), max_hops, targets, ordinals)


def language_templates(templates: str | Path | None = None, max_hops: int = 1, targets: str = "one",
                       ordinals: bool = False) -> TemplateSet:
    """The families a dataset's language options allow (RenderConfig.max_hops, .targets, .ordinals), from a
    template folder (None: the repository's); the published options give the published families."""
    return _selected(str(Path(templates or default_template_dir()).resolve()), max_hops, targets, bool(ordinals))


def generate_refs(
    scene: Scene,
    visible_pixels: np.ndarray,
    min_visible: int,
    templates: TemplateSet | str | Path | None = None,
    max_hops: int = 1,
    targets: str = "one",
    ordinals: bool = False,
) -> list[Ref]:
    """About 8 referring pairs for one scene, each naming exactly its targets (one visible object in
    the published language; `max_hops` and `targets` choose another, see docs/expressions.md).

    visible_pixels: int (V, 10), column k-1 = object k; a pair is dropped when a target
    or related object has fewer than `min_visible` pixels in the central view.
    `templates`: a loaded set is used as it is; a folder (None: the repository's) is narrowed to the
    families the options allow. Deterministic in the scene's seed. See `generate_pairs` for the
    dropped counts too.
    """
    chosen = (templates if isinstance(templates, TemplateSet)
              else language_templates(templates, max_hops, targets, ordinals))
    return generate_pairs(scene, visible_pixels, min_visible, chosen).refs


def expression_attrs(expressions: list[ExpressionResult]) -> dict[str, int]:
    """Pair counts a shard carries in its attributes, summed into the manifest."""
    return {
        "pair_count": sum(len(e.refs) for e in expressions),
        "dropped_referent_hidden": sum(e.dropped_referent for e in expressions),
        "dropped_related_hidden": sum(e.dropped_related for e in expressions),
    }
