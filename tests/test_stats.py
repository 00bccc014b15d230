"""`clevr-remv stats`: its numbers equal counts taken straight from the shards, it never reads pixels,
its figures exist at their size, and a folder that is not a dataset gets one line and exit 1."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.expressions import load_templates
from clevr_remv.stats.collect import MentionCounter, tokens
from clevr_remv.stats.figures import DPI, FIGURE_INCHES
from clevr_remv.stats.report import histogram, mean_and_sem

PIXELS = ("images", "masks", "depth")
REQUIRED = ("scenes", "pairs", "objects_per_scene_mean", "objects_per_pair_mean", "words_per_sentence_mean",
            "objects_per_pair_histogram", "words_per_sentence_histogram", "objects_per_scene_histogram",
            "families", "relations", "compared_attributes", "attribute_mentions", "visible_share",
            "dropped_referent_hidden", "dropped_related_hidden")


def invoke(*args: str):
    return CliRunner().invoke(main, ["stats", *args])


@pytest.fixture(scope="module")
def stats_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    figdir = tmp_path_factory.mktemp("stats") / "figs"
    result = invoke(str(tiny_dataset), "--out", str(figdir), "--no-progress")
    assert result.exit_code == 0, result.output
    return result, figdir, json.loads((figdir / "stats.json").read_text())


def shard_paths(root: Path, split: str) -> list[Path]:
    manifest = json.loads((root / "dataset.json").read_text())
    return [root / name for name in manifest["splits"][split]["shards"]]


def direct_counts(root: Path, split: str) -> dict:
    """What stats must report, counted here with plain h5py, json and str.split."""
    objects, per_pair, lengths, families, compared = Counter(), Counter(), Counter(), Counter(), Counter()
    scenes = pairs = dropped_referent = dropped_related = 0
    visible = None
    for path in shard_paths(root, split):
        with h5py.File(path, "r") as f:
            counts = [len(json.loads(s)["objects"]) for s in f["scenes"].asstr()[()]]
            scenes += len(counts)
            objects.update(counts)
            per_pair.update(counts[row] for row in f["refs/scene"][()])
            lengths.update(len(s.split()) for s in f["refs/expression"].asstr()[()])
            families.update(f["refs/family"].asstr()[()])
            for program in f["refs/program"].asstr()[()]:
                compared.update(n["function"][5:] for n in json.loads(program) if n["function"].startswith("same_"))
            v = f["refs/visible"][()].sum(axis=0)
            visible = v if visible is None else visible + v
            pairs += len(f["refs/scene"])
            dropped_referent += int(f.attrs["dropped_referent_hidden"])
            dropped_related += int(f.attrs["dropped_related_hidden"])
    mean = lambda c: sum(k * n for k, n in c.items()) / sum(c.values())  # noqa: E731
    grid = int(round(np.sqrt(len(visible))))
    return {"scenes": scenes, "pairs": pairs, "objects_per_scene": objects, "objects_per_pair": per_pair,
            "words": lengths, "families": dict(families), "compared_attributes": dict(compared),
            "objects_per_scene_mean": mean(objects), "objects_per_pair_mean": mean(per_pair),
            "words_per_sentence_mean": mean(lengths), "visible_share": (visible / pairs).reshape(grid, grid),
            "dropped_referent_hidden": dropped_referent, "dropped_related_hidden": dropped_related}


def as_counter(hist: dict[str, int]) -> Counter:
    return Counter({int(k): v for k, v in hist.items() if v})


def test_stats_equal_counts_from_the_shards(tiny_dataset: Path, stats_run) -> None:
    _, _, stats = stats_run
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    assert set(stats["splits"]) == set(manifest["splits"])
    checked = 0
    for split, ours in stats["splits"].items():
        assert ours["scenes"] == manifest["splits"][split]["scenes"]
        assert ours["pairs"] == manifest["splits"][split]["pairs"]
        if not ours["pairs"]:
            assert ours["objects_per_pair_mean"] is None and ours["words_per_sentence_mean"] is None
            continue
        d = direct_counts(tiny_dataset, split)
        for key in ("scenes", "pairs", "families", "compared_attributes", "dropped_referent_hidden",
                    "dropped_related_hidden"):
            assert ours[key] == d[key], key
        for key in ("objects_per_scene_mean", "objects_per_pair_mean", "words_per_sentence_mean"):
            assert ours[key] == pytest.approx(d[key]), key
        assert as_counter(ours["objects_per_scene_histogram"]) == d["objects_per_scene"]
        assert as_counter(ours["objects_per_pair_histogram"]) == d["objects_per_pair"]
        assert as_counter(ours["words_per_sentence_histogram"]) == d["words"]
        assert list(ours["objects_per_scene_histogram"])[:1] == ["3"]  # the full 3-10 range, zeros included
        assert list(ours["objects_per_scene_histogram"])[-1] == "10"
        np.testing.assert_allclose(ours["visible_share"], d["visible_share"], atol=1e-6)
        assert sum(ours["relations"].values()) == ours["pairs"]
        checked += 1
    assert checked >= 2  # the tiny dataset has pairs in train and val


def test_attribute_words_in_sentences_match_the_programs(tiny_dataset: Path, stats_run) -> None:
    """Values found in the sentences through the lexicon (synonyms mapped) are the programs' filters."""
    _, _, stats = stats_run
    for split, ours in stats["splits"].items():
        expected: dict[str, Counter] = {}
        for path in shard_paths(tiny_dataset, split):
            with h5py.File(path, "r") as f:
                for program in f["refs/program"].asstr()[()]:
                    for n in json.loads(program):
                        if n["function"].startswith("filter_"):
                            expected.setdefault(n["function"][7:], Counter())[n["value_inputs"][0]] += 1
        said = {kind: Counter(values) for kind, values in ours["attribute_mentions"].items() if values}
        assert said == {kind: c for kind, c in expected.items() if c}


def test_mention_counter_maps_synonyms() -> None:
    mentions = MentionCounter(load_templates().lexicon)
    found = mentions.find("Find the big shiny ball left of the tiny matte block, a thing.")
    assert [said for _, said in found] == [("size", "large"), ("material", "metal"), ("shape", "sphere"),
                                           ("size", "small"), ("material", "rubber"), ("shape", "cube"), None]
    assert tokens("The red cube's side.") == ["the", "red", "cube's", "side"]


def test_histogram_and_mean() -> None:
    assert histogram(Counter({4: 2, 6: 1}), 3, 7) == {"3": 0, "4": 2, "5": 0, "6": 1, "7": 0}
    assert histogram(Counter()) == {}
    mean, sem = mean_and_sem(Counter({3: 1, 5: 1}))
    assert mean == 4 and sem == pytest.approx(1.0)
    assert mean_and_sem(Counter()) == (None, None)


def test_stats_json_and_table(tiny_dataset: Path, stats_run) -> None:
    result, figdir, stats = stats_run
    for split, ours in stats["splits"].items():
        assert set(REQUIRED) <= set(ours), split
    # Each split's row: our counts read here with h5py beside the reference figures of the design's table
    # (scenes and pairs per split, shared/DESIGN.md), pairs per scene divided out here.
    design = {"train": (7_000, 55_966), "val": (1_500, 11_992), "test": (1_500, 11_989)}
    tables = dict(re.findall(r"### (\w+)\n\n(.*?)(?=\n### |\n\n|$)", stats["table"], flags=re.S))
    for split, (scenes, pairs) in design.items():
        ours_scenes = ours_pairs = 0
        for path in shard_paths(tiny_dataset, split):
            with h5py.File(path, "r") as f:
                ours_scenes, ours_pairs = ours_scenes + len(f["scenes"]), ours_pairs + len(f["refs/scene"])
        per_scene = f"{ours_pairs / ours_scenes:.2f}" if ours_scenes else "–"
        for row in (f"| scenes | {ours_scenes} | {scenes:,} |", f"| image-text pairs | {ours_pairs} | {pairs:,} |",
                    f"| pairs per scene | {per_scene} | {pairs / scenes:.2f} |"):
            assert row in tables[split].splitlines(), (split, row, tables[split])
    assert stats["word_rule"].startswith("whitespace-separated tokens")
    assert (figdir / "table.md").read_text() == stats["table"]
    assert stats["table"] in result.output
    train = stats["splits"]["train"]
    assert f"| scenes | {train['scenes']} | 7,000 |" in stats["table"]
    assert f"| words per sentence | {train['words_per_sentence_mean']:.2f} ± " in stats["table"]
    assert "| objects per image-text pair |" in stats["table"]
    assert not list(figdir.glob(".*tmp*"))  # atomic writes leave no temporary files


def expected_figures(stats: dict) -> list[str]:
    with_pairs = [s for s, v in stats["splits"].items() if v["pairs"]]
    return ([f"objects_and_words_{s}" for s in with_pairs] + [f"visibility_{s}" for s in with_pairs]
            + ["objects_per_scene", "families", "relations", "compared_attributes", "attribute_mentions", "language"]
            + ["visible_fraction"] * any(v.get("visible_fraction") for v in stats["splits"].values()))


def test_figures_are_png_and_svg_of_their_size(stats_run) -> None:
    _, figdir, stats = stats_run
    names = expected_figures(stats)
    assert "objects_and_words_test" not in names  # the tiny dataset's test split is empty: no figure for it
    assert sorted(stats["figures"]) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "svg"))
    for name in names:
        kind = name.removesuffix("_train").removesuffix("_val").removesuffix("_test")
        w, h = FIGURE_INCHES[kind]
        with Image.open(figdir / f"{name}.png") as png:
            assert png.format == "PNG"
            assert png.size == (round(w * DPI), round(h * DPI)), name
            assert len(np.unique(np.asarray(png.convert("L")))) > 10  # something was drawn
        svg = ET.parse(figdir / f"{name}.svg").getroot()
        assert svg.get("width") == f"{w * 72:g}pt" and svg.get("height") == f"{h * 72:g}pt", name
        assert len(svg.findall(".//{http://www.w3.org/2000/svg}path")) > 20, name  # axes, bars, glyphs


def test_splits_option(tiny_dataset: Path, tmp_path: Path) -> None:
    result = invoke(str(tiny_dataset), "--out", str(tmp_path), "--splits", "val", "--no-progress", "--no-figures")
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert list(stats["splits"]) == ["val"]
    assert stats["figures"] == [] and not list(tmp_path.glob("*.png"))
    assert "### train" not in result.output and "### val" in result.output


def assert_one_line_error(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and text in errors[0], result.output
    assert "Traceback" not in result.output


def test_not_a_dataset_is_one_line_and_exit_1(tmp_path: Path, tiny_dataset: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke(str(tmp_path / "empty"), "--out", str(tmp_path / "f")), "not a clevr-remv dataset")
    assert_one_line_error(invoke(str(tmp_path / "missing"), "--out", str(tmp_path / "f")), "no such directory")
    assert_one_line_error(invoke(str(tiny_dataset), "--out", str(tmp_path / "f"), "--splits", "nope"),
                          "split 'nope' not in")
    assert not (tmp_path / "f").exists()


def copy_without_pixels(src: Path, dst: Path) -> None:
    """The dataset with every pixel dataset replaced by a tiny one of the wrong shape and dtype."""
    dst.mkdir(parents=True)
    (dst / "dataset.json").write_bytes((src / "dataset.json").read_bytes())
    for path in src.glob("*/shard-*.h5"):
        (dst / path.parent.name).mkdir(exist_ok=True)
        with h5py.File(path, "r") as f, h5py.File(dst / path.relative_to(src), "w") as g:
            for key, value in f.attrs.items():
                g.attrs[key] = value
            for name in f:
                if name in PIXELS:
                    g.create_dataset(name, data=np.zeros(1, dtype=np.int8))
                else:
                    f.copy(name, g)


def test_stats_never_reads_pixels(tiny_dataset: Path, stats_run, tmp_path: Path, monkeypatch) -> None:
    _, _, stats = stats_run
    stripped = tmp_path / "stripped"
    copy_without_pixels(tiny_dataset, stripped)
    read: list[str] = []
    for method in ("__getitem__", "read_direct", "__array__"):
        original = getattr(h5py.Dataset, method)

        def spy(self, *args, _original=original, **kwargs):
            read.append(self.name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(h5py.Dataset, method, spy)
    result = invoke(str(stripped), "--out", str(tmp_path / "figs"), "--no-progress", "--no-figures")
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert read and not {name.lstrip("/") for name in read} & set(PIXELS)
    again = json.loads((tmp_path / "figs" / "stats.json").read_text())
    assert again["splits"] == stats["splits"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_a_stopped_stats_run_leaves_the_old_figures_or_all_new(tiny_dataset: Path, tmp_path: Path,
                                                              monkeypatch, stop) -> None:
    """Stopped after drawing, before the files are in place: FIGDIR keeps what it had, whole."""
    import clevr_remv.stats.figures as figures_module

    figdir = tmp_path / "figures"
    figdir.mkdir()
    (figdir / "stats.json").write_text("old")
    real = figures_module.write_figures

    def draw_then_stop(report, where):
        drawn = real(report, where)
        assert drawn and all(p.parent == where for p in drawn)
        raise stop()

    monkeypatch.setattr(figures_module, "write_figures", draw_then_stop)
    result = CliRunner().invoke(main, ["stats", str(tiny_dataset), "--out", str(figdir), "--no-progress"])
    assert result.exit_code == (130 if stop is KeyboardInterrupt else 1), result.output
    assert sorted(p.name for p in figdir.iterdir()) == ["stats.json"] and (figdir / "stats.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]  # no drafts left beside it


@pytest.mark.parametrize("histogram, mean", [
    ({"3": 40, "4": 55, "5": 70, "6": 80, "7": 95, "8": 120, "9": 118, "10": 60}, 8.04),  # the figure
    ({"3": 120, "4": 90, "5": 60, "6": 20}, 3.9),
])
def test_the_mean_label_overlaps_no_count(histogram: dict, mean: float) -> None:
    """Issue item 7: "mean 8.04" was written over the count on the tallest bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clevr_remv.stats.figures import _histogram_panel

    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    _histogram_panel(ax, histogram, mean, "C0", "objects", "pairs", "(a) train")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend()
    labels = [t for t in ax.texts if t.get_text().startswith("mean")] + ([legend] if legend else [])
    counts = [t for t in ax.texts if not t.get_text().startswith("mean")]
    assert labels and len(counts) == len(histogram)
    assert any("mean 8.04" in t.get_text() or "mean 3.90" in t.get_text()
               for t in ax.texts + (legend.get_texts() if legend else []))
    for label in labels:
        box = label.get_window_extent(renderer)
        assert not any(box.overlaps(c.get_window_extent(renderer)) for c in counts)
        assert not any(box.overlaps(bar.get_window_extent(renderer)) for bar in ax.patches)
    plt.close(fig)


# ---------------------------------------------------------------------------- the harder language (issue #24)


def test_the_harder_language_is_counted_by_hops_targets_and_family(harder_dataset: Path, tmp_path: Path) -> None:
    """Hops, objects named and words by family, against a count of the shards' refs with h5py and json."""
    figdir = tmp_path / "figs"
    result = invoke(str(harder_dataset), "--out", str(figdir), "--no-progress")
    assert result.exit_code == 0, result.output
    stats = json.loads((figdir / "stats.json").read_text())
    for split, s in stats["splits"].items():
        hops, named, words, said = Counter(), Counter(), Counter(), Counter()
        for path in shard_paths(harder_dataset, split):
            with h5py.File(path, "r") as f:
                programs, families = f["refs/program"].asstr()[()], f["refs/family"].asstr()[()]
                sentences = f["refs/expression"].asstr()[()]
                named.update(int(n) for n in f["refs/targets"][()].sum(axis=1))
            for program, family, sentence in zip(programs, families, sentences):
                hops[sum(n["function"] == "relate" or n["function"].startswith("same_")
                         for n in json.loads(program))] += 1
                words[family] += len(sentence.split())
                said[family] += 1
        assert {int(k): n for k, n in s["hops_histogram"].items() if n} == dict(hops)
        assert {int(k): n for k, n in s["targets_histogram"].items() if n} == dict(named)
        assert s["words_by_family"] == pytest.approx({f: words[f] / said[f] for f in said})
    everything = Counter()
    for s in stats["splits"].values():
        everything.update({int(k): n for k, n in s["targets_histogram"].items()})
    assert everything[0] and sum(n for k, n in everything.items() if k > 1)  # the fixture has both
    assert "sentences naming one / several / no object" in result.output
    assert "language.png" in stats["figures"]


def test_the_published_language_adds_no_row_to_the_table(stats_run) -> None:
    result, _, stats = stats_run
    assert "relations per sentence" not in result.output and "naming one / several" not in result.output
    assert all(set(s["targets_histogram"]) <= {"0", "1"} for s in stats["splits"].values() if s["pairs"])
