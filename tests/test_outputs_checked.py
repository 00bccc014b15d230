"""Output paths are checked before the work (issue #15, item 2): a path that cannot be written, or
whose suffix is not the format, is one line naming the path as given, and nothing is read or
computed first; an error in the final atomic write names the final path, never its temporary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import run_cli

import clevr_remv.evaluation.scoring
import clevr_remv.export
import clevr_remv.show.gather
import clevr_remv.stats.collect
from clevr_remv.outputs import check_output_dir, check_output_file, naming_final_paths
from clevr_remv.store.atomic import temp_path_for

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self").is_dir(),
                                reason="uses /proc, a folder where no file can be created")


@pytest.fixture
def nothing_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's first read of the dataset fails the test: the checks must come before it."""
    def computed(*args, **kwargs):
        raise AssertionError("the command read or computed before checking its output paths")

    monkeypatch.setattr(clevr_remv.evaluation.scoring, "evaluate", computed)
    monkeypatch.setattr(clevr_remv.show.gather, "load_scene", computed)
    monkeypatch.setattr(clevr_remv.export, "export_coco", computed)
    monkeypatch.setattr(clevr_remv.export, "export_refcoco", computed)
    monkeypatch.setattr(clevr_remv.stats.collect, "dataset_shards", computed)


def assert_one_line_naming(result, given: str, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith(f"Error: cannot write {given}: "), \
        result.output
    assert ".tmp-" not in result.output
    for word in words:
        assert word in result.output, result.output


def _file_cases(tmp_path: Path) -> list[tuple[list[str], str, str]]:
    """(command line, the bad path as given, a word of the reason) for every file option."""
    (tmp_path / "a-folder.png").mkdir()
    (tmp_path / "a-file").write_text("")
    evaluate = ["evaluate", "DATA", "--split", "train", "--baseline", "oracle", "--no-progress"]
    show = ["show", "DATA", "--split", "train", "--scene", "0"]
    cases = []
    for option, base, good, wrong in (("--plot", evaluate, "iou.png", "iou.jpg"),
                                      ("--json", evaluate, "scores.json", "scores.txt"),
                                      ("--out", show, "scene.svg", "scene.jpg"),
                                      ("--html", show, "viewer.html", "viewer.png")):
        for bad, reason in ((f"{tmp_path}/newdir/{good}", "does not exist"),
                            (f"{tmp_path}/{wrong}", f"{option} takes a"),
                            (f"{tmp_path}/a-folder.png" if option in ("--out", "--plot") else str(tmp_path),
                             "is a directory"),
                            (f"{tmp_path}/a-file/{good}", "is not a directory"),
                            (f"{tmp_path}/{Path(good).stem}", "it has none")):
            cases.append(([*base, option, bad], bad, reason))
    return cases


def test_every_bad_output_file_is_one_line_before_any_work(tiny_dataset: Path, tmp_path: Path,
                                                           nothing_computed: None) -> None:
    for argv, given, reason in _file_cases(tmp_path):
        result = run_cli(*[str(tiny_dataset) if a == "DATA" else a for a in argv])
        assert_one_line_naming(result, given, reason)
    assert not (tmp_path / "newdir").exists()


@linux_only
@pytest.mark.parametrize("argv, given", [
    (["evaluate", "DATA", "--split", "train", "--baseline", "oracle", "--plot", "/proc/iou.png"], "/proc/iou.png"),
    (["evaluate", "DATA", "--split", "train", "--baseline", "oracle", "--json", "/proc/s.json"], "/proc/s.json"),
    (["show", "DATA", "--out", "/proc/x.png"], "/proc/x.png"),
    (["show", "DATA", "--html", "/proc/x.html"], "/proc/x.html"),
    (["export", "coco", "DATA", "--out", "/proc/coco"], "/proc/coco"),
    (["export", "refcoco", "DATA", "--out", "/proc/refcoco/deeper"], "/proc/refcoco/deeper"),
    (["stats", "DATA", "--out", "/proc/figs"], "/proc/figs"),
])
def test_an_unwritable_place_is_one_line_before_any_work(tiny_dataset: Path, argv: list[str], given: str,
                                                         nothing_computed: None) -> None:
    result = run_cli(*[str(tiny_dataset) if a == "DATA" else a for a in argv])
    assert_one_line_naming(result, given, "cannot create files in /proc")


@pytest.mark.parametrize("command", [["export", "coco"], ["export", "refcoco"], ["stats"]])
def test_an_output_folder_that_is_a_file_is_one_line_before_any_work(command: list[str], tiny_dataset: Path,
                                                                     tmp_path: Path, nothing_computed: None) -> None:
    (tmp_path / "a-file").write_text("mine")
    for given, reason in ((tmp_path / "a-file", "is a file"), (tmp_path / "a-file" / "sub", "is not a directory")):
        result = run_cli(*command, str(tiny_dataset), "--out", str(given))
        assert_one_line_naming(result, str(given), reason)
    assert (tmp_path / "a-file").read_text() == "mine"


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PDF", b"%PDF")])
def test_the_plot_format_follows_its_suffix(tiny_dataset: Path, tmp_path: Path, suffix: str, magic: bytes) -> None:
    plot = tmp_path / f"iou{suffix}"
    result = run_cli("evaluate", str(tiny_dataset), "--split", "train", "--baseline", "oracle", "--no-progress",
                     "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().startswith(magic)


def test_a_failing_final_write_names_the_users_path(tiny_dataset: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder vanishes between the check and the write (another process, a full disk): the
    error names the file asked for, not the hidden temporary that was being written."""
    folder = tmp_path / "plots"
    folder.mkdir()
    real = clevr_remv.evaluation.scoring.evaluate

    def evaluate_then_lose_the_folder(*args, **kwargs):
        result = real(*args, **kwargs)
        folder.rmdir()
        return result

    monkeypatch.setattr(clevr_remv.evaluation.scoring, "evaluate", evaluate_then_lose_the_folder)
    for option, name in (("--json", "scores.json"), ("--plot", "iou.png")):
        folder.mkdir(exist_ok=True)
        result = run_cli("evaluate", str(tiny_dataset), "--split", "train", "--baseline", "oracle",
                         "--no-progress", option, str(folder / name))
        assert result.exit_code == 1
        assert result.output.splitlines()[-1] == f"Error: cannot write {folder / name}: No such file or directory"
        assert ".tmp-" not in result.output


def test_the_show_viewer_write_names_the_users_path(tiny_dataset: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    real = clevr_remv.show.gather.load_scene

    def load_then_lose_the_folder(*args, **kwargs):
        data = real(*args, **kwargs)
        folder.rmdir()
        return data

    monkeypatch.setattr(clevr_remv.show.gather, "load_scene", load_then_lose_the_folder)
    result = run_cli("show", str(tiny_dataset), "--html", str(folder / "v.html"))
    assert result.exit_code == 1
    assert result.output == f"Error: cannot write {folder / 'v.html'}: No such file or directory\n"


def test_naming_final_paths_rewrites_only_temporaries(tmp_path: Path) -> None:
    final = tmp_path / "gone" / "x.h5"
    with pytest.raises(OSError) as info, naming_final_paths():
        open(temp_path_for(final), "w")
    assert str(info.value) == f"cannot write {final}: No such file or directory"
    with pytest.raises(OSError) as info, naming_final_paths():  # a message that only quotes the name
        raise OSError(f"Unable to create file (unable to open file: name = '{temp_path_for(final)}', errno = 2)")
    assert str(info.value) == f"Unable to create file (unable to open file: name = '{final}', errno = 2)"
    with pytest.raises(FileNotFoundError) as info, naming_final_paths():  # anything else passes unchanged
        open(tmp_path / "gone" / "plain", "r")
    assert "plain" in str(info.value)


def test_the_checks_leave_nothing_behind_and_folders_are_created_with_their_parents(
        tiny_dataset: Path, tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "x.png", (".png",), "--out") == tmp_path / "x.png"
    assert check_output_dir(tmp_path / "a" / "b" / "figs", "--out") == tmp_path / "a" / "b" / "figs"
    assert check_output_dir(tmp_path / "c" / "coco", "--out", beside=True) == tmp_path / "c" / "coco"
    assert list(tmp_path.iterdir()) == []
    result = run_cli("stats", str(tiny_dataset), "--out", str(tmp_path / "a" / "b" / "figs"), "--no-figures",
                     "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "b" / "figs" / "stats.json").is_file()
    result = run_cli("export", "coco", str(tiny_dataset), "--out", str(tmp_path / "c" / "coco"), "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "coco" / "export.json").is_file()
