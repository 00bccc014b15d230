"""Round trips and failure behaviour of the HDF5 store, on small synthetic renders."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest
from clevr_remv.scene.vocabulary import MAX_OBJECTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clevr_remv.scene.description import Light, RigSpec, Scene, SceneObject
from clevr_remv.store import (
    DatasetReader,
    ShardReader,
    atomic_path,
    read_manifest,
    read_shard_attrs,
    replace_refs,
    shard_is_complete,
    write_json_atomic,
    write_manifest,
    write_shard,
)
from clevr_remv.store import shard as shard_module
from clevr_remv.store.records import Ref, SceneRender

GRID, W, H = 3, 24, 16
V = GRID * GRID


def make_scene(index: int, split: str = "train") -> Scene:
    rig = RigSpec(grid=GRID, baseline=0.05, lens_mm=35.0, sensor_mm=32.0, width=W, height=H,
                  position=(7.5, -6.7, 5.2))
    return Scene(
        split=split,
        index=index,
        seed=(0, 0, index),
        attempt=1,
        directions={"left": (-0.66, -0.75, 0.0), "right": (0.66, 0.75, 0.0),
                    "front": (0.75, -0.66, 0.0), "behind": (-0.75, 0.66, 0.0)},
        objects=(
            SceneObject(1, "cube", "large", "metal", "red", (1.2, -0.4, 0.49), 37.5),
            SceneObject(2, "sphere", "small", "rubber", "cyan", (-1.0, 2.0, 0.35), 0.0),
        ),
        lights=(Light("key", (6.4, -3.0, 6.0), 1000.0, 1.0),),
        rig=rig,
        extras={"note": "test"},
    )


def make_render(index: int, rng: np.random.Generator) -> SceneRender:
    depth = rng.uniform(1.0, 20.0, (V, H, W)).astype(np.float32)
    depth[:, :3] = np.inf
    return SceneRender(
        scene=make_scene(index),
        images=rng.integers(0, 256, (V, H, W, 3), dtype=np.uint8),
        masks=rng.integers(0, 3, (V, H, W), dtype=np.uint8),
        depth=depth,
        intrinsics=rng.normal(size=(V, 3, 3)),
        world_to_camera=rng.normal(size=(V, 4, 4)),
        visible_pixels=rng.integers(0, 500, (V, MAX_OBJECTS), dtype=np.int32),
        amodal_pixels=rng.integers(500, 900, (V, MAX_OBJECTS), dtype=np.int32),
    )


def make_refs(index: int, n: int, rng: np.random.Generator) -> list[Ref]:
    return [
        Ref(id=index * 100 + j, object=1 + j % 2, expression=f"the red cube № {j}",
            family="zero_hop", program=json.dumps([{"type": "scene"}, {"type": "unique", "j": j}]),
            visible=rng.random(V) > 0.3)
        for j in range(n)
    ]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[list[SceneRender], list[list[Ref]]]:
    renders = [make_render(i, rng) for i in (10, 11, 12)]
    refs = [make_refs(10, 3, rng), [], make_refs(12, 2, rng)]
    return renders, refs


ATTRS = {"config": json.dumps({"samples": 16}), "rig": {"grid": GRID}, "baseline": 0.05,
         "scene_indices_first": 10, "scene_indices_count": 3, "generator": "clevr-remv 0.1.0"}


def test_round_trip_every_dataset(tmp_path: Path, data) -> None:
    renders, refs = data
    path = tmp_path / "train" / "shard-00003.h5"
    write_shard(path, renders, refs, ATTRS)
    assert shard_is_complete(path)
    with h5py.File(path, "r") as f:
        expected = {
            "images": (np.uint8, np.stack([r.images for r in renders])),
            "masks": (np.uint8, np.stack([r.masks for r in renders])),
            "depth": (np.float32, np.stack([r.depth for r in renders])),
            "cameras/intrinsics": (np.float64, np.stack([r.intrinsics for r in renders])),
            "cameras/world_to_camera": (np.float64, np.stack([r.world_to_camera for r in renders])),
            "visible_pixels": (np.int32, np.stack([r.visible_pixels for r in renders])),
        }
        for name, (dtype, array) in expected.items():
            assert f[name].dtype == dtype, name
            np.testing.assert_array_equal(f[name][()], array, err_msg=name)
        assert np.isinf(f["depth"][0, 0, 0]).all()
        assert f["scenes"].dtype == h5py.string_dtype("utf-8")
        assert [Scene.from_json(s) for s in f["scenes"].asstr()[()]] == [r.scene for r in renders]
        flat = [(row, r) for row, rs in enumerate(refs) for r in rs]
        assert f["refs/scene"].dtype == np.int32 and f["refs/scene"][()].tolist() == [row for row, _ in flat]
        assert f["refs/object"].dtype == np.int16 and f["refs/object"][()].tolist() == [r.object for _, r in flat]
        assert f["refs/id"].dtype == np.int64 and f["refs/id"][()].tolist() == [r.id for _, r in flat]
        for name in ("expression", "family", "program"):
            assert f[f"refs/{name}"].dtype == h5py.string_dtype("utf-8")
            assert f[f"refs/{name}"].asstr()[()].tolist() == [getattr(r, name) for _, r in flat]
        assert f["refs/visible"].dtype == bool and f["refs/visible"].shape == (5, V)
        np.testing.assert_array_equal(f["refs/visible"][()], np.stack([r.visible for _, r in flat]))


def test_file_attributes(tmp_path: Path, data) -> None:
    renders, refs = data
    path = tmp_path / "shard-00003.h5"
    write_shard(path, renders, refs, ATTRS)
    attrs = read_shard_attrs(path)
    assert attrs["schema_version"] == shard_module.SCHEMA_VERSION
    assert attrs["split"] == "train" and attrs["shard_index"] == 3
    assert json.loads(attrs["config"]) == {"samples": 16}
    assert json.loads(attrs["rig"]) == {"grid": GRID}
    assert attrs["baseline"] == 0.05 and attrs["scene_indices_count"] == 3
    assert attrs["generator"] == "clevr-remv 0.1.0"


def test_shard_index_must_be_known(tmp_path: Path, data) -> None:
    renders, refs = data
    with pytest.raises(ValueError, match="shard_index"):
        write_shard(tmp_path / "anything.h5", renders, refs, {})
    write_shard(tmp_path / "anything.h5", renders, refs, {}, shard_index=7)
    assert read_shard_attrs(tmp_path / "anything.h5")["shard_index"] == 7


def test_refs_empty(tmp_path: Path, data) -> None:
    renders, _ = data
    path = tmp_path / "shard-00000.h5"
    write_shard(path, renders, [[], [], []], ATTRS)
    assert shard_is_complete(path)
    with h5py.File(path, "r") as f:
        for name in shard_module.REF_DATASETS:
            assert f[name].shape[0] == 0, name
        assert f["refs/visible"].shape == (0, V)
    with ShardReader(path) as shard:
        assert shard.refs() == []


def test_chunks_are_one_view(tmp_path: Path, data) -> None:
    renders, refs = data
    path = tmp_path / "shard-00000.h5"
    write_shard(path, renders, refs, ATTRS)
    with h5py.File(path, "r") as f:
        assert f["images"].chunks == (1, 1, H, W, 3)
        assert f["masks"].chunks == (1, 1, H, W)
        assert f["depth"].chunks == (1, 1, H, W)


def _listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_failed_write_leaves_nothing(tmp_path: Path, data, monkeypatch) -> None:
    renders, refs = data

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(shard_module, "_write_refs", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_shard(tmp_path / "shard-00000.h5", renders, refs, ATTRS)
    assert _listing(tmp_path) == []


def test_failed_write_keeps_older_file(tmp_path: Path, data, monkeypatch) -> None:
    renders, refs = data
    path = tmp_path / "shard-00000.h5"
    write_shard(path, renders[:1], refs[:1], ATTRS)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shard_module, "_write_attrs", boom)
    with pytest.raises(KeyboardInterrupt):
        write_shard(path, renders, refs, ATTRS)
    assert _listing(tmp_path) == ["shard-00000.h5"]
    assert path.read_bytes() == before
    assert shard_is_complete(path)


def test_invalid_input_rejected_before_io(tmp_path: Path, data) -> None:
    renders, refs = data
    bad = SceneRender(**{**renders[1].__dict__, "images": renders[1].images.astype(np.float32)})
    with pytest.raises(ValueError, match="dtype"):
        write_shard(tmp_path / "shard-00000.h5", [renders[0], bad], refs[:2], ATTRS)
    with pytest.raises(ValueError, match="object 3"):
        write_shard(tmp_path / "shard-00000.h5", renders[:1], [[Ref(1, 3, "x", "f", "[]", np.ones(V, bool))]], ATTRS)
    with pytest.raises(ValueError, match="ref lists"):
        write_shard(tmp_path / "shard-00000.h5", renders, refs[:2], ATTRS)
    assert _listing(tmp_path) == []


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "shard-00000.h5"
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".shard-00000.h5.tmp-")
        assert tmp.name.endswith(f"-{os.getpid()}") and socket.gethostname() in tmp.name
        tmp.write_text("new")
        assert not final.exists()
    assert final.read_text() == "new"
    with pytest.raises(ValueError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert final.read_text() == "new" and _listing(tmp_path) == ["shard-00000.h5"]


def test_shard_is_complete_rejects_junk(tmp_path: Path, data) -> None:
    assert not shard_is_complete(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    assert not shard_is_complete(junk)
    with h5py.File(tmp_path / "partial.h5", "w") as f:
        f.attrs["schema_version"] = 1
        f.create_dataset("images", data=np.zeros((1, 1, 2, 2, 3), np.uint8))
    assert not shard_is_complete(tmp_path / "partial.h5")
    renders, refs = data
    good = tmp_path / "shard-00000.h5"
    write_shard(good, renders, refs, ATTRS)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert not shard_is_complete(truncated)


def test_replace_refs_round_trip(tmp_path: Path, data, rng) -> None:
    renders, refs = data
    path = tmp_path / "shard-00001.h5"
    write_shard(path, renders, refs, ATTRS)
    with h5py.File(path, "r") as f:
        images = f["images"][()]
    new_refs = [[], make_refs(11, 4, rng), []]
    replace_refs(path, new_refs, attrs={"expressions_version": 2})
    assert shard_is_complete(path)
    assert _listing(tmp_path) == ["shard-00001.h5"]
    with ShardReader(path) as shard:
        got = shard.refs()
    assert [r["id"] for r in got] == [r.id for r in new_refs[1]]
    assert {r["scene"] for r in got} == {1}
    for g, r in zip(got, new_refs[1]):
        assert (g["object"], g["expression"], g["family"], g["program"]) == (r.object, r.expression, r.family, r.program)
        np.testing.assert_array_equal(g["visible"], r.visible)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["images"][()], images)
    attrs = read_shard_attrs(path)
    assert attrs["expressions_version"] == 2 and attrs["shard_index"] == 1


def test_replace_refs_failure_keeps_original(tmp_path: Path, data, rng, monkeypatch) -> None:
    renders, refs = data
    path = tmp_path / "shard-00001.h5"
    write_shard(path, renders, refs, ATTRS)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="^1 ref lists for 3 scenes$"):
        replace_refs(path, [[]], {})  # wrong number of scenes
    monkeypatch.setattr(shard_module, "_write_refs", lambda *a: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError, match="full"):
        replace_refs(path, [[], make_refs(11, 1, rng), []])
    assert path.read_bytes() == before and _listing(tmp_path) == ["shard-00001.h5"]


def test_reader_views_and_scenes(tmp_path: Path, data) -> None:
    renders, refs = data
    path = tmp_path / "shard-00000.h5"
    write_shard(path, renders, refs, ATTRS)
    with ShardReader(path) as shard:
        assert len(shard) == 3 and shard.num_views == V and shard.image_size == (H, W)
        assert shard.attrs["split"] == "train"
        for i, r in enumerate(renders):
            assert shard.scene(i) == r.scene
            np.testing.assert_array_equal(shard.visible_pixels(i), r.visible_pixels)
            for v in (0, V // 2, V - 1):
                view = shard.view(i, v)
                np.testing.assert_array_equal(view["image"], r.images[v])
                np.testing.assert_array_equal(view["mask"], r.masks[v])
                np.testing.assert_array_equal(view["depth"], r.depth[v])
                np.testing.assert_array_equal(view["intrinsics"], r.intrinsics[v])
                np.testing.assert_array_equal(view["world_to_camera"], r.world_to_camera[v])
        assert [r["id"] for r in shard.refs()] == [r.id for rs in refs for r in rs]


def test_dataset_reader_and_manifest(tmp_path: Path, data) -> None:
    renders, refs = data
    assert read_manifest(tmp_path) is None
    write_shard(tmp_path / "val" / "shard-00000.h5", renders[:2], refs[:2], ATTRS, split="train")
    write_shard(tmp_path / "val" / "shard-00001.h5", renders[2:], refs[2:], ATTRS, split="train")
    manifest = {"version": "0.1.0", "config": {}, "views": 4, "splits": {"train": {"scenes": 3, "pairs": 5,
                "shards": ["val/shard-00000.h5", "val/shard-00001.h5"]}}}
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    ds = DatasetReader(tmp_path)
    assert ds.splits == ["train"]
    seen = [(shard.path.name, row, shard.scene(row).index) for shard, row in ds.iter_scenes("train")]
    assert seen == [("shard-00000.h5", 0, 10), ("shard-00000.h5", 1, 11), ("shard-00001.h5", 0, 12)]
    with pytest.raises(KeyError, match="test"):
        ds.shard_paths("test")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"splits": []}',
                                  '{"splits": {"train": {"shards": [1]}}}'])
def test_malformed_manifest_names_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(ValueError, match="dataset.json"):
        read_manifest(tmp_path)


def test_write_json_atomic(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "x.json", {"a": "é", "b": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == {"a": "é", "b": [1, 2]}
    assert _listing(tmp_path) == ["x.json"]


def test_dataset_reader_needs_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        DatasetReader(tmp_path)


# HDF5 variable-length strings end at NUL, and UTF-8 cannot encode lone surrogates.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expressions=st.lists(_TEXT, min_size=1, max_size=4), family=_TEXT)
def test_ref_strings_round_trip(tmp_path: Path, expressions: list[str], family: str) -> None:
    rng = np.random.default_rng(0)
    refs = [[Ref(j, 1, e, family, "[]", np.ones(V, bool)) for j, e in enumerate(expressions)]]
    path = tmp_path / "shard-00000.h5"
    write_shard(path, [make_render(0, rng)], refs, {})
    with ShardReader(path) as shard:
        got = shard.refs()
    assert [g["expression"] for g in got] == expressions
    assert {g["family"] for g in got} == {family}


def test_a_zombie_or_finished_process_counts_as_gone_and_a_running_one_as_alive(tmp_path: Path) -> None:
    """A killed writer whose parent died too may stay a zombie (unreaped): it writes nothing, so its file is stale."""
    import subprocess
    import time

    from clevr_remv.store.atomic import pid_is_alive
    from clevr_remv.store.cleanup import stale_temporaries

    sleeper = subprocess.Popen(["sleep", "60"])
    finished = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{finished.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not pid_is_alive(finished.pid)  # exited, not yet reaped
        assert pid_is_alive(sleeper.pid) and pid_is_alive(os.getpid())
        host = socket.gethostname()
        zombie = tmp_path / f".shard-00000.h5.tmp-{host}-{finished.pid}"
        live = tmp_path / f".shard-00001.h5.tmp-{host}-{sleeper.pid}"
        for path in (zombie, live):
            path.write_bytes(b"")
        assert stale_temporaries(tmp_path) == [zombie]
    finally:
        sleeper.kill()
        sleeper.wait()
        finished.wait()


def test_a_shard_read_after_its_iterator_closed_it_says_so(tiny_dataset: Path) -> None:
    """next(iter_shards(...)) drops the generator, which closes the shard at once: the read that follows
    names that, where HDF5's "invalid identifier" would have been reported as a damaged shard."""
    from clevr_remv.store import DatasetReader

    reader = DatasetReader(tiny_dataset)
    for shard in reader.iter_shards("train"):  # inside the loop the shard is open
        assert shard.scene(0).objects
        break
    shard = next(reader.iter_shards("train"))
    with pytest.raises(ValueError, match="was closed before this read.*read inside the loop"):
        shard.scene(0)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=0, max_size=3000), level=st.sampled_from([0, 1, 6]))
def test_the_stored_checksum_check_agrees_with_hdf5(tmp_path_factory, data: bytes, level: int) -> None:
    """bad_pixel_chunk's Fletcher-32 on the stored bytes (no decompression) matches what HDF5 wrote,
    for odd and even chunk sizes, and finds a flipped byte and a chunk never written."""
    path = tmp_path_factory.mktemp("fletcher") / "s.h5"
    values = np.frombuffer(data.ljust(3000, b"\0"), np.uint8).reshape(2, 2, 25, 10, 3)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("images", values.shape, np.uint8, chunks=(1, 1, 25, 10, 3), compression="gzip",
                              compression_opts=level, fletcher32=True)
        ds[...] = values
    assert shard_module.bad_pixel_chunk(path) is None
    with h5py.File(path, "r") as f:
        info = f["images"].id.get_chunk_info(3)  # row 1, view 1
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))
    assert shard_module.bad_pixel_chunk(path) == "images[1, 1] fails its checksum"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", values.shape, np.uint8, chunks=(1, 1, 25, 10, 3), compression="gzip",
                         fletcher32=True)[0] = values[0]
    assert shard_module.bad_pixel_chunk(path) == "images[1, 0] was never written"
