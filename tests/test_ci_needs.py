"""tests/conftest.py's `need` and `missing`: a missing requirement skips here and fails under CI=true."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import CI_LACKS, missing, need

SKIP, FAIL = pytest.skip.Exception, pytest.fail.Exception


def stopped_by(call: Callable[[], object]) -> BaseException | None:
    """What `call` raised, caught here: under pytest.raises a skip raised instead of a failure would
    escape and turn this very test into a skip, the silence these helpers exist to end."""
    try:
        call()
    except BaseException as raised:  # noqa: BLE001 - skips and failures are BaseExceptions
        return raised
    return None


def test_a_present_module_is_returned() -> None:
    import json

    assert need("json") is json


@pytest.mark.parametrize("ci, lacks, outcome", [(None, "", SKIP), ("false", "", SKIP), ("true", "", FAIL),
                                                ("true", "torch no_such_module", SKIP)])
def test_a_missing_module_skips_here_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str | None, lacks: str,
                                                        outcome: type[BaseException]) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv(CI_LACKS, lacks)
    raised = stopped_by(lambda: need("no_such_module", "pip install -e '.[x]'"))
    assert type(raised) is outcome, raised
    assert str(raised).startswith("needs no_such_module (pip install -e '.[x]'): No module named 'no_such_module'")
    assert ("CI=true: .ci/run installs it" in str(raised)) == (outcome is FAIL)
    assert (f"{CI_LACKS} says this CI run lacks it on purpose" in str(raised)) == bool(lacks)


def test_missing_anything_else_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    raised = stopped_by(lambda: missing("no chromium here"))
    assert type(raised) is FAIL and str(raised).startswith("no chromium here (CI=true"), raised
    monkeypatch.delenv("CI")
    raised = stopped_by(lambda: missing("no chromium here"))
    assert type(raised) is SKIP and str(raised) == "no chromium here", raised
