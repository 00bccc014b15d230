"""Streaming shard writes (memory does not grow with the shard) and the refusal of scenes too big for memory."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import run_cli
from test_store import ATTRS, GRID, H, V, W, make_refs, make_render

from clevr_remv.config import (
    Quality,
    RenderConfig,
    check_fits_in_memory,
    scene_memory_bytes,
)
from clevr_remv.produce.pixel_path import render_shard
from clevr_remv.store import ShardWriter, shard_is_complete, write_shard
from clevr_remv.store.plan import ShardSpec
from clevr_remv.store.shard import ALL_DATASETS


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _writer(path: Path, scenes: int = 2) -> ShardWriter:
    return ShardWriter(path, scenes, V, H, W, split="train", shard_index=0)


def test_streamed_shard_equals_write_shard(tmp_path: Path, rng) -> None:
    renders = [make_render(i, rng) for i in (4, 5)]
    refs = [make_refs(4, 2, rng), make_refs(5, 3, rng)]
    with _writer(tmp_path / "a" / "shard-00000.h5") as writer:
        for render, scene_refs in zip(renders, refs):
            writer.add(render, scene_refs)
        assert writer.added == 2
        writer.commit(ATTRS)
    write_shard(tmp_path / "b" / "shard-00000.h5", renders, refs, ATTRS)
    with h5py.File(tmp_path / "a" / "shard-00000.h5") as a, h5py.File(tmp_path / "b" / "shard-00000.h5") as b:
        names = []
        a.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert sorted(names) == sorted(ALL_DATASETS) and len(names) == 18  # schema 4: refs/targets, target_count
        for name in names:
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
        assert dict(a.attrs) == dict(b.attrs)


@pytest.mark.parametrize("failure", ["render", "refs", "interrupt"])
def test_writer_leaves_no_temporary_file_on_exception(tmp_path: Path, rng, failure: str) -> None:
    path = tmp_path / "shard-00000.h5"
    write_shard(path, [make_render(0, rng)], [[]], ATTRS)  # an older complete version
    before = path.read_bytes()
    bad_refs = make_refs(1, 1, rng)
    bad_refs[0] = bad_refs[0].__class__(**{**bad_refs[0].__dict__, "object": 7})
    error = {"render": ValueError, "refs": ValueError, "interrupt": KeyboardInterrupt}[failure]
    with pytest.raises(error):
        with _writer(path) as writer:
            writer.add(make_render(1, rng), [])
            assert any(p.name.startswith(".shard-00000.h5.tmp-") for p in tmp_path.iterdir())
            if failure == "render":
                writer.add(make_render(2, rng).__class__(**{**make_render(2, rng).__dict__, "masks": np.zeros((1, 2))}), [])
            elif failure == "refs":
                writer.add(make_render(2, rng), bad_refs)
            else:
                raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["shard-00000.h5"]
    assert path.read_bytes() == before


def test_writer_refuses_to_close_an_unfinished_shard(tmp_path: Path, rng) -> None:
    path = tmp_path / "shard-00000.h5"
    with pytest.raises(ValueError, match="1 of 2 scenes"):
        with _writer(path) as writer:
            writer.add(make_render(0, rng), [])
            writer.commit(ATTRS)
    with pytest.raises(ValueError, match="without commit"):
        with _writer(path) as writer:
            writer.add(make_render(0, rng), [])
    with pytest.raises(ValueError, match="split"):
        with ShardWriter(path, 1, V, H, W, split="val", shard_index=0) as writer:
            writer.add(make_render(0, rng), [])
    assert os.listdir(tmp_path) == []


def _peak_bytes_of_one_shard(out: Path, config: RenderConfig, renderer, scenes: int) -> int:
    """Peak Python/NumPy memory (tracemalloc) while render_shard renders and writes `scenes` scenes."""
    shard = ShardSpec("train", 0, 0, scenes)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        render_shard(config, shard, out, renderer, "test")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_worker_memory_does_not_grow_with_scenes_per_shard(tmp_path: Path) -> None:
    """A shard of 6 scenes needs no more memory than a shard of 1: scenes go to disk one by one.

    Holding the shard, as before streaming, would add 5 scenes' arrays (6.9 MB here).
    """
    from clevr_remv.render.renderer import BlenderRenderer

    config = RenderConfig(scenes=10, seed=3, grid=GRID, width=160, height=120, quality=Quality(samples=1, denoise=False),
                          scenes_per_shard=6)
    scene_bytes = config.views * config.width * config.height * (3 + 1 + 4)
    renderer = BlenderRenderer(config)
    try:
        _peak_bytes_of_one_shard(tmp_path / "warm", config, renderer, 1)  # caches, meshes, materials
        one = _peak_bytes_of_one_shard(tmp_path / "one", config, renderer, 1)
        six = _peak_bytes_of_one_shard(tmp_path / "six", config, renderer, 6)
    finally:
        renderer.close()
    assert shard_is_complete(tmp_path / "six" / "train" / "shard-00000.h5")
    assert six - one < 1.5 * scene_bytes, (one, six, scene_bytes)


def test_memory_limit_is_the_scene_estimate() -> None:
    config = RenderConfig(width=480, height=320)
    need = scene_memory_bytes(config)
    assert need > config.views * 480 * 320 * 8  # at least the scene's images, masks and depth
    check_fits_in_memory(config, available_bytes=need)
    with pytest.raises(ValueError, match=r"one scene of 81 views at 480x320 needs about .* GiB"):
        check_fits_in_memory(config, available_bytes=need - 1)


def test_a_scene_too_big_for_memory_is_refused_before_rendering(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", "--scenes", "1", "--height", "100000", "--width", "100000", "--out", str(out))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: one scene of 81 views at 100000x100000")
    assert not list(out.glob("**/*.h5"))
