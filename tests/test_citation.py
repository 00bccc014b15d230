"""CITATION.cff, the licence and the package metadata tell the same story, so a release that bumps
`clevr_remv.__version__` (what every dataset records) cannot leave the citation behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

import clevr_remv
from clevr_remv.produce.card import THESIS_BIBTEX

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


def test_cffconvert_validates_the_citation_with_the_thesis() -> None:
    cffconvert = Path(sys.executable).parent / "cffconvert"  # the venv's (the test extra installs it)
    result = subprocess.run([str(cffconvert), "--validate", "-i", str(ROOT / "CITATION.cff")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    thesis = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))["references"][0]
    assert thesis["type"] == "thesis" and thesis["title"] == "Deep Learning Based Multimodal Retrieval"
    assert thesis["authors"] == [{"family-names": "Chen", "given-names": "Jianan"}]
    assert thesis["institution"]["name"] == "INSA de Rennes" and "IETR" in thesis["department"]
    assert thesis["url"] == "https://theses.hal.science/tel-04578003" and thesis["year"] == 2023
    assert "NNT 2023ISAR0019" in [i["value"] for i in thesis["identifiers"]]
    assert "17 October 2023" in thesis["notes"]
    assert "to be completed" not in (ROOT / "CITATION.cff").read_text(encoding="utf-8")


def test_the_readme_cites_the_thesis_as_the_card_does() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    citation = readme[readme.index("## Citation"):]
    assert THESIS_BIBTEX in citation
    assert re.search(r"Jianan\s+Chen, \*Deep Learning Based Multimodal Retrieval\*", citation)
