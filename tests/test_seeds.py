"""Per-view Cycles seeds: distinct across views and scenes, a function of (scene seed, view) alone.

That the renderer gives each view this seed (whatever it rendered before) is read back from Blender in
tests/test_render.py::test_each_view_renders_with_its_own_cycles_seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clevr_remv.scene.seeds import MAX_CYCLES_SEED, cycles_seed

scene_seeds = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2), st.integers(0, 100_000))


@given(scene_seeds, st.integers(0, 80), st.integers(0, 80))
def test_two_views_of_one_scene_get_different_seeds(seed: tuple[int, int, int], a: int, b: int) -> None:
    if a != b:
        assert cycles_seed(seed, a) != cycles_seed(seed, b)


@given(scene_seeds, st.integers(0, 80))
def test_seeds_fit_cycles_and_repeat(seed: tuple[int, int, int], view: int) -> None:
    value = cycles_seed(seed, view)
    assert 0 <= value <= MAX_CYCLES_SEED
    assert cycles_seed(tuple(seed), view) == cycles_seed(list(seed), view) == value


def test_the_same_view_of_different_scenes_gets_different_seeds() -> None:
    seeds = {cycles_seed((0, split, index), 40) for split in range(3) for index in range(200)}
    assert len(seeds) == 600


def test_seeds_spread_over_the_whole_range() -> None:
    values = np.array([cycles_seed((5, 0, index), view) for index in range(50) for view in range(81)])
    assert values.min() < MAX_CYCLES_SEED // 50 and values.max() > MAX_CYCLES_SEED - MAX_CYCLES_SEED // 50


def test_negative_views_are_refused() -> None:
    with pytest.raises(ValueError, match="view index"):
        cycles_seed((0, 0, 0), -1)
