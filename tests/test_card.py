"""The dataset card DIR/README.md (clevr_remv/produce/card.py): written by render, finalize and expressions in the
Hugging Face format, its statistics those of `clevr-remv stats`, a hand-written README.md kept; the card
of a Parquet export loads with `datasets`."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import h5py
import pytest
import yaml
from conftest import need, run_cli, templates_with_zero_hop

from clevr_remv import __version__
from clevr_remv.produce.card import (
    MARKER,
    _yaml_lines,
    dataset_card,
    dataset_report,
    size_category,
)
from clevr_remv.stats.collect import dataset_shards

CARD = "README.md"


def header_and_body(text: str) -> tuple[dict, str]:
    """The YAML front matter (parsed) and the Markdown after it."""
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def stats_json(dataset: Path, where: Path) -> dict:
    result = run_cli("stats", str(dataset), "--out", str(where), "--no-figures", "--no-progress")
    assert result.exit_code == 0, result.output
    return json.loads((where / "stats.json").read_text(encoding="utf-8"))


def numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def section(body: str, title: str) -> str:
    return body.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def copy(dataset: Path, where: Path) -> Path:
    return Path(shutil.copytree(dataset, where))


def test_render_writes_a_hugging_face_card(tiny_dataset: Path) -> None:
    text = (tiny_dataset / CARD).read_text(encoding="utf-8")
    meta, body = header_and_body(text)
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    assert meta["pretty_name"] == "CLEVR-Remv" and meta["license"] == "cc-by-4.0"
    assert meta["language"] == ["en"] and meta["task_categories"] == ["image-segmentation"]
    assert meta["size_categories"] == ["n<1K"]  # 24 pairs
    assert {"synthetic", "light-field", "clevr", "referring-expression-segmentation"} <= set(meta["tags"])
    assert meta["viewer"] is False
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": split, "path": f"{split}.h5"} for split in manifest["splits"]]}]
    assert all((tiny_dataset / f["path"]).is_file() for f in meta["configs"][0]["data_files"])
    assert body.startswith(f"{MARKER} {__version__}") and body.splitlines()[0].endswith("-->")
    for title in ("Statistics", "Generator and settings", "How it was made", "How to load", "License", "Citation"):
        assert f"\n## {title}\n" in body, title
    settings = section(body, "Generator and settings")
    assert f"| generator | clevr-remv {manifest['generator_version']} |" in settings
    assert f"| master seed | {manifest['master_seed']} |" in settings
    assert "| image size | 64 × 48 pixels |" in settings and "3 × 3 = 9 views" in settings
    assert f"| visibility threshold | {manifest['min_visible_pixels']} pixels" in settings
    assert manifest["blender_versions"][0] in settings and "2 samples per pixel" in settings
    assert "clevr-remv render --scenes 3 --seed 11 --width 64 --height 48 --rig 3" in settings
    assert "RefDataset" in section(body, "How to load") and "CC BY 4.0" in section(body, "License")
    assert "author  = {{clevr-remv contributors}}" in section(body, "Citation")
    assert "Jianan Chen, *Deep Learning Based Multimodal Retrieval*, PhD thesis, INSA de Rennes (IETR)" in body
    assert "@phdthesis{chen2023multimodal," in section(body, "Citation") and "tel-04578003" in body
    assert str(tiny_dataset) not in text  # the card travels with the folder


def test_hugging_face_hub_reads_the_card(tiny_dataset: Path) -> None:
    huggingface_hub = need("huggingface_hub", "the hf extra, which the test extra includes")
    data = huggingface_hub.DatasetCard.load(tiny_dataset / CARD).data
    assert data.license == "cc-by-4.0" and data.pretty_name == "CLEVR-Remv" and data.viewer is False


def test_every_number_of_the_statistics_is_that_of_stats(tiny_dataset: Path, tmp_path: Path) -> None:
    stats = stats_json(tiny_dataset, tmp_path / "figs")
    _, body = header_and_body((tiny_dataset / CARD).read_text(encoding="utf-8"))
    table = section(body, "Statistics")
    assert stats["table"].strip() in table
    tables = table[table.index("### "):]
    assert numbers(tables) == numbers(stats["table"])
    for split, s in stats["splits"].items():
        rows = dict(re.findall(r"\| ([^|]+) \| ([^|]+) \| [^|]+ \|", tables.split(f"### {split}\n", 1)[1].split("###")[0]))
        assert numbers(rows["scenes"]) == [s["scenes"]] and numbers(rows["image-text pairs"]) == [s["pairs"]]
        if s["pairs"]:
            assert numbers(rows["words per sentence"]) == [round(s["words_per_sentence_mean"], 2),
                                                           round(s["words_per_sentence_sem"], 2)]
    totals = [sum(s[key] for s in stats["splits"].values()) for key in ("scenes", "pairs")]
    assert f"holds {totals[0]:,} scenes and {totals[1]:,} image-text pairs" in body


def test_finalize_writes_the_same_card(tiny_dataset: Path, tmp_path: Path) -> None:
    out = copy(tiny_dataset, tmp_path / "out")
    for name in ("dataset.json", "train.h5", "val.h5", "test.h5", CARD):
        (out / name).unlink()
    result = run_cli("finalize", str(out))
    assert result.exit_code == 0, result.output
    assert (out / CARD).read_bytes() == (tiny_dataset / CARD).read_bytes()
    assert run_cli("verify", str(out), "--no-progress").exit_code == 0


@pytest.fixture(scope="module")
def other_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The templates with longer zero-hop sentences: other words per sentence."""
    return templates_with_zero_hop(tmp_path_factory, "Please find the one and only <Z> <C> <M> <S> in this picture.")


def test_expressions_rewrites_the_card_with_the_new_numbers(tiny_dataset: Path, other_templates: Path,
                                                            tmp_path: Path) -> None:
    out = copy(tiny_dataset, tmp_path / "out")
    result = run_cli("expressions", str(out), "--templates", str(other_templates))
    assert result.exit_code == 0, result.output
    old, new = (tiny_dataset / CARD).read_text(encoding="utf-8"), (out / CARD).read_text(encoding="utf-8")
    assert new != old
    assert stats_json(out, tmp_path / "figs")["table"].strip() in new
    assert header_and_body(new)[0] == header_and_body(old)[0]  # same files, same pair count
    assert not list(out.glob(".*.tmp-*")) and run_cli("verify", str(out), "--no-progress").exit_code == 0


@pytest.mark.parametrize("command", ["finalize", "expressions"])
def test_a_hand_written_readme_is_kept(tiny_dataset: Path, other_templates: Path, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture, command: str) -> None:
    out = copy(tiny_dataset, tmp_path / "out")
    mine = "# Our CLEVR-Remv\n\nNotes we wrote (<!-- not generated -->).\n"
    (out / CARD).write_text(mine, encoding="utf-8")
    args = [str(out)] + (["--templates", str(other_templates)] if command == "expressions" else [])
    with caplog.at_level(logging.WARNING, logger="clevr_remv.produce.card"):
        result = run_cli(command, *args)
    assert result.exit_code == 0, result.output
    assert (out / CARD).read_text(encoding="utf-8") == mine
    assert any(str(out / CARD) in r.getMessage() and "not written by clevr-remv" in r.getMessage()
               for r in caplog.records), caplog.text
    assert not list(out.glob(".*.tmp-*"))


def test_an_edited_card_without_its_marker_line_is_kept(tiny_dataset: Path, tmp_path: Path) -> None:
    out = copy(tiny_dataset, tmp_path / "out")
    text = (out / CARD).read_text(encoding="utf-8")
    edited = "\n".join(line for line in text.splitlines() if not line.startswith(MARKER)) + "\nOur note.\n"
    (out / CARD).write_text(edited, encoding="utf-8")
    assert run_cli("finalize", str(out)).exit_code == 0
    assert (out / CARD).read_text(encoding="utf-8") == edited


# ---------------------------------------------------------------------------- the Parquet card


def parquet_card(dataset: Path, rows: dict[str, int], **extra) -> str:
    manifest, shards = dataset_shards(dataset)
    parquet = {"views": [4], "rows": rows, "files": {s: 2 if n else 0 for s, n in rows.items()},
               "features": {"sentence": "the referring expression", "view": "view index | of the rig"}, **extra}
    return dataset_card(manifest, dataset_report(manifest, shards), parquet=parquet)


def test_the_parquet_card_names_its_files_splits_and_features(tiny_dataset: Path, tmp_path: Path) -> None:
    text = parquet_card(tiny_dataset, {"train": 16, "val": 8, "test": 0}, num_bytes={"train": 900, "val": 400},
                        feature_types=[{"name": "sentence", "dtype": "string"}, {"name": "view", "dtype": "int32"}])
    meta, body = header_and_body(text)
    assert meta["license"] == "cc-by-4.0" and meta["size_categories"] == ["n<1K"] and "viewer" not in meta
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*.parquet"}, {"split": "val", "path": "data/val-*.parquet"}]}]
    assert meta["dataset_info"] == {
        "config_name": "default",
        "features": [{"name": "sentence", "dtype": "string"}, {"name": "view", "dtype": "int32"}],
        "splits": [{"name": "train", "num_bytes": 900, "num_examples": 16},
                   {"name": "val", "num_bytes": 400, "num_examples": 8}]}
    assert body.startswith(MARKER) and "export hf" in body.splitlines()[0]
    assert "| `sentence` | the referring expression |" in body and "| `view` | view index \\| of the rig |" in body
    assert "| train | 16 | 2 | `data/train-*.parquet` |" in body and "| test |" not in body
    assert 'load_dataset("path/to/this/folder", split="train", streaming=True)' in body
    assert stats_json(tiny_dataset, tmp_path / "figs")["table"].strip() in body
    with pytest.raises(ValueError, match="missing files, features"):
        dataset_card({}, {}, parquet={"views": [4], "rows": {}})


def test_datasets_loads_a_parquet_folder_by_its_card(tiny_dataset: Path, tmp_path: Path) -> None:
    """`load_dataset` follows the configs, and checks each split's num_examples against the files."""
    datasets = need("datasets", "the hf extra, which the test extra includes")
    features = datasets.Features({"sentence": datasets.Value("string"), "view": datasets.Value("int32")})
    out = tmp_path / "export"
    (out / "data").mkdir(parents=True)
    rows = {"train": 5, "val": 3, "test": 0}
    for split, n in rows.items():
        for k in range(2 if n else 0):
            part = range(k, n, 2)
            datasets.Dataset.from_dict({"sentence": [f"{split} {i}" for i in part], "view": [4] * len(part)},
                                       features=features).to_parquet(str(out / "data" / f"{split}-{k:05d}-of-00002.parquet"))
    (out / CARD).write_text(parquet_card(tiny_dataset, rows, feature_types=features._to_yaml_list()), encoding="utf-8")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: loaded[s].num_rows for s in loaded} == {"train": 5, "val": 3}
    stream = datasets.load_dataset(str(out), split="val", streaming=True)
    assert sorted(r["sentence"] for r in stream) == ["val 0", "val 1", "val 2"]
    (out / CARD).write_text(parquet_card(tiny_dataset, {**rows, "train": 6}), encoding="utf-8")
    from datasets.exceptions import NonMatchingSplitsSizesError

    with pytest.raises(NonMatchingSplitsSizesError, match=r"name='train'.*num_examples=6.*num_examples=5"):
        datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache2"))


# ---------------------------------------------------------------------------- pieces


@pytest.mark.parametrize("n, bucket", [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (80_000, "10K<n<100K"),
                                       (100_000, "100K<n<1M"), (6_480_000, "1M<n<10M"), (10**12, "n>1T")])
def test_size_categories_are_the_hubs(n: int, bucket: str) -> None:
    assert size_category(n) == bucket


@pytest.mark.parametrize("text", ["n<1K", "1K<n<10K", "no", "On", "null", "12", "1.5", "2024-01-01", "0x1F",
                                  "a: b", "# x", "- x", " x", "", 'say "hi"', "é", "data/train-*.parquet"])
def test_yaml_strings_read_back_as_written(text: str) -> None:
    assert yaml.safe_load("\n".join(_yaml_lines({"k": text})))["k"] == text


def test_the_cards_loading_examples_run(tiny_dataset: Path, capsys: pytest.CaptureFixture) -> None:
    """The card's "How to load" code runs as written on the dataset it describes (DIR = its folder)."""
    _, body = header_and_body((tiny_dataset / CARD).read_text(encoding="utf-8"))
    blocks = re.findall(r"```python\n(.*?)```", section(body, "How to load"), flags=re.S)
    assert len(blocks) == 2, blocks
    for block in blocks:
        exec(block.replace("DIR", str(tiny_dataset)), {})
    printed = capsys.readouterr().out
    # The first block prints nothing; the second the first scene's sentences and referents, read here from its shard.
    with h5py.File(tiny_dataset / "train" / "shard-00000.h5", "r") as shard:
        first = shard["refs/scene"][:] == 0
        sentences, objects = shard["refs/expression"].asstr()[first], shard["refs/object"][first]
    assert len(sentences) > 1 and printed == f"{sentences} {objects}\n", printed


def test_the_cards_render_command_makes_the_same_data(tiny_dataset: Path, tmp_path: Path) -> None:
    """"The same data again": the command the card gives re-renders identical masks, depth and sentences."""
    import shlex

    import h5py

    _, body = header_and_body((tiny_dataset / CARD).read_text(encoding="utf-8"))
    command = re.search(r"```bash\n(clevr-remv render .*?)\n```", section(body, "Generator and settings")).group(1)
    args = [a if a != "DIR" else str(tmp_path / "again") for a in shlex.split(command)[1:]]
    assert run_cli(*args, "--no-progress").exit_code == 0
    for split in ("train", "val", "test"):
        with h5py.File(tiny_dataset / f"{split}.h5") as a, h5py.File(tmp_path / "again" / f"{split}.h5") as b:
            for name in ("masks", "depth", "refs/expression", "refs/object"):
                assert (a[name][()] == b[name][()]).all(), (split, name)


def test_the_card_states_the_harder_language(harder_dataset: Path, tiny_dataset: Path) -> None:
    """`expressions --max-hops 3 --targets any` rewrote the card: it says what the sentences name, how many
    relations they chain, and gives the render command with those options."""
    card = (harder_dataset / "README.md").read_text(encoding="utf-8")
    assert "naming one object, several or none (generalised referring expressions), with up to 3 chained " \
           "relations" in card
    assert "| language | up to 3 chained relations per sentence; a sentence names one object, several" in card
    assert "--max-hops 3 --targets any --out DIR" in card
    assert "| sentences naming one / several / no object |" in card
    assert 'print(f["refs/targets"][pairs])  # object 0: several targets or none' in card
    published = (tiny_dataset / "README.md").read_text(encoding="utf-8")
    assert "each naming exactly one object. A RES model" in published and "--max-hops" not in published
    assert "the published CLEVR-Remv's language" in published and "refs/targets" not in published
