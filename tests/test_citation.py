"""CITATION.cff, the licence and the package metadata tell the same story, so a release that bumps
`clevr_remv.__version__` (what every dataset records) cannot leave the citation behind."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

import clevr_remv

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest's own TOML reader there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_the_citation_names_this_version_and_the_code_licence() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert str(cff["version"]) == clevr_remv.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert cff["license"] == project["license"] == "Apache-2.0"
    assert [r["type"] for r in cff["references"]] == ["thesis"]


def test_the_licence_file_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "LICENSE" in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license-files"]
