"""The `show --html` viewer in a real headless Chromium (Debian's chromium + chromedriver, via Selenium).

The page comes from the tiny rendered dataset, with two changes that exercise what a tiny
scene does not have: one sentence's referent marked hidden in one view, and one extra
sentence that tries to inject markup and script.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from browser import headless_chromium, require_chromium

from clevr_remv.show.gather import Sentence, load_scene
from clevr_remv.show.viewer import save_viewer

INJECTION = ('The cube </script><script>window.__pwned = 1;</script>'
             '<img src=x onerror="window.__pwned = 2"><!--<script>')
HIDDEN_VIEW = 1  # row 0, col 1: where the first sentence's referent is marked hidden


@pytest.fixture(scope="module")
def page(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data = load_scene(tiny_dataset, "train", 1)
    first = data.sentences[0]
    visible = first.visible.copy()
    visible[HIDDEN_VIEW] = False
    evil = Sentence(id=99_999, object=1, text=INJECTION, family="zero_hop", visible=first.visible)
    data = dataclasses.replace(data, sentences=(dataclasses.replace(first, visible=visible),) + data.sentences[1:]
                               + (evil,))
    path = tmp_path_factory.mktemp("viewer") / "scene.html"
    save_viewer(data, path)
    text = path.read_text(encoding="utf-8")
    embedded = json.loads(re.search(r'id="scene-data">(.*?)</script>', text, re.S)[1])
    return path, embedded


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    with headless_chromium() as driver:
        yield driver


def open_page(browser, page: tuple[Path, dict]):
    from selenium.webdriver.common.by import By

    browser.get(page[0].as_uri())
    return browser.find_element(By.ID, "stage")


def shown(browser) -> dict:
    """What the page shows now: row, col, view, image src, outline state."""
    return browser.execute_script("""
        const stage = document.getElementById("stage");
        const outline = document.getElementById("ref-outline");
        const line = outline.querySelector("path.line");
        return {row: Number(stage.dataset.row), col: Number(stage.dataset.col), view: Number(stage.dataset.view),
                position: document.getElementById("position").textContent,
                src: document.getElementById("view").src,
                greyed: document.getElementById("view").classList.contains("greyed"),
                outline: outline.getAttribute("class"), d: line ? line.getAttribute("d") : null,
                masks: document.querySelectorAll("#masks path").length,
                hiddenHere: Array.from(document.querySelectorAll("#sentences li"))
                                 .map(li => li.classList.contains("hidden-here"))};
    """)


def path_of(embedded: dict, view: int, object_id: int) -> str | None:
    return next((s["d"] for s in embedded["shapes"][view] if s["id"] == object_id), None)


def press(browser, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(browser)
    for key in keys:
        chain.send_keys(key)
    chain.perform()


def test_keys_and_drag_move_through_the_views(browser, page) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    embedded = page[1]
    stage = open_page(browser, page)
    start = shown(browser)
    assert (start["row"], start["col"], start["view"]) == (1, 1, 4)
    assert start["position"].startswith("row 1, col 1 (view 4, centre)")
    assert start["src"] == embedded["images"][4]

    press(browser, Keys.ARROW_RIGHT)
    now = shown(browser)
    assert (now["row"], now["col"]) == (1, 2) and now["position"].startswith("row 1, col 2")
    assert now["src"] == embedded["images"][5] != start["src"]
    press(browser, Keys.ARROW_UP, Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)  # clamped at col 0
    now = shown(browser)
    assert (now["row"], now["col"], now["src"]) == (0, 0, embedded["images"][0])

    # Drag right and down by more than half the image: to the bottom-right corner.
    width = stage.size["width"]
    ActionChains(browser).move_to_element(stage).click_and_hold().move_by_offset(width // 2, width // 3) \
        .release().perform()
    now = shown(browser)
    assert (now["row"], now["col"]) == (2, 2) and now["src"] == embedded["images"][8]
    # A small drag left moves one view.
    step = width / (2 * embedded["grid"])
    ActionChains(browser).move_to_element(stage).click_and_hold().move_by_offset(-int(step * 1.2), 0) \
        .release().perform()
    assert (shown(browser)["row"], shown(browser)["col"]) == (2, 1)


def test_a_sentence_outlines_its_referent_in_the_view_shown(browser, page) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    embedded = page[1]
    open_page(browser, page)
    assert shown(browser)["d"] is None
    buttons = browser.find_elements(By.CSS_SELECTOR, "#sentences .sentence")
    assert len(buttons) == len(embedded["refs"])
    # A sentence and a key whose neighbouring view moves its referent's outline (parallax).
    moves = {Keys.ARROW_UP: 1, Keys.ARROW_DOWN: 7, Keys.ARROW_LEFT: 3, Keys.ARROW_RIGHT: 5}
    choice = next(((i, key, view) for i, ref in enumerate(embedded["refs"][:-1]) for key, view in moves.items()
                   if view != HIDDEN_VIEW and path_of(embedded, view, ref["object"]) != path_of(embedded, 4, ref["object"])),
                  None)
    assert choice is not None, "no referent moves between the centre and a neighbouring view"
    i, key, view = choice
    obj = embedded["refs"][i]["object"]

    buttons[i].click()
    before = shown(browser)
    assert before["outline"] == "visible" and before["d"] == path_of(embedded, 4, obj)
    assert "selected" in buttons[i].get_attribute("class")
    press(browser, key)
    after = shown(browser)
    assert after["view"] == view and after["outline"] == "visible"
    assert after["d"] == path_of(embedded, view, obj) != before["d"]
    press(browser, Keys.ESCAPE)
    assert shown(browser)["d"] is None


def test_a_hidden_referent_is_greyed(browser, page) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, page)
    browser.find_elements(By.CSS_SELECTOR, "#sentences .sentence")[0].click()
    centre = shown(browser)
    assert centre["outline"] == "visible" and not centre["greyed"] and not centre["hiddenHere"][0]
    press(browser, Keys.ARROW_UP)  # view 1, where the referent is marked hidden
    hidden = shown(browser)
    assert hidden["view"] == HIDDEN_VIEW
    assert hidden["outline"] == "hidden" and hidden["greyed"] and hidden["hiddenHere"][0]
    assert not any(hidden["hiddenHere"][1:])
    assert "hidden in this view" in browser.find_element(By.ID, "ref-status").text


def test_mask_and_depth_toggles(browser, page) -> None:
    from selenium.webdriver.common.by import By

    embedded = page[1]
    open_page(browser, page)
    assert shown(browser)["masks"] == 0
    button = browser.find_element(By.ID, "mask-toggle")
    button.click()
    assert shown(browser)["masks"] == len(embedded["shapes"][4]) > 0
    assert button.get_attribute("aria-pressed") == "true"
    press(browser, "m")
    assert shown(browser)["masks"] == 0 and button.get_attribute("aria-pressed") == "false"

    press(browser, "d")
    assert shown(browser)["src"] == embedded["depth"][4] != embedded["images"][4]
    assert browser.find_element(By.ID, "depth-legend").is_displayed()
    browser.find_element(By.ID, "depth-toggle").click()
    assert shown(browser)["src"] == embedded["images"][4]


def test_a_scene_without_sentences_still_navigates(browser, tiny_dataset: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    path = tmp_path / "empty.html"
    save_viewer(dataclasses.replace(load_scene(tiny_dataset, "val", 0), sentences=()), path)
    browser.get(path.as_uri())
    assert shown(browser)["position"].startswith("row 1, col 1")
    press(browser, Keys.ARROW_DOWN)
    assert (shown(browser)["row"], shown(browser)["col"]) == (2, 1)


def test_an_injected_sentence_is_text_not_script(browser, page) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, page)
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.querySelectorAll('script').length") == 2
    assert browser.execute_script("return document.querySelectorAll('img').length") == 1
    last = browser.find_elements(By.CSS_SELECTOR, "#sentences .sentence")[-1]
    assert INJECTION in last.text  # shown literally
    last.click()
    assert browser.execute_script("return typeof window.__pwned") == "undefined"


@pytest.fixture(scope="module")
def harder_page(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The same scene with two sentences of the harder language (--targets any): one naming two objects,
    one naming none."""
    data = load_scene(tiny_dataset, "train", 1)
    first = data.sentences[0]
    partly = first.visible.copy()
    partly[HIDDEN_VIEW] = False  # one of the two below the threshold there: refs/visible is false
    both = Sentence(id=90_001, object=0, text="The cube and the sphere.", family="conjunction",
                    visible=partly, targets=(1, 2))
    none = Sentence(id=90_002, object=0, text="The green cylinder.", family="no_target",
                    visible=first.visible, targets=())
    path = tmp_path_factory.mktemp("viewer-harder") / "scene.html"
    save_viewer(dataclasses.replace(data, sentences=(both, none)), path)
    text = path.read_text(encoding="utf-8")
    return path, json.loads(re.search(r'id="scene-data">(.*?)</script>', text, re.S)[1])


def test_a_sentence_outlines_every_object_it_names_or_none(browser, harder_page) -> None:
    from selenium.webdriver.common.by import By

    embedded = harder_page[1]
    assert [r["targets"] for r in embedded["refs"]] == [[1, 2], []]
    open_page(browser, harder_page)
    browser.find_elements(By.CSS_SELECTOR, "#sentences .sentence")[0].click()
    lines = browser.execute_script(
        "return Array.from(document.querySelectorAll('#ref-outline path.line')).map(p => p.getAttribute('d'));")
    assert lines == [path_of(embedded, 4, 1), path_of(embedded, 4, 2)] and None not in lines
    status = browser.find_element(By.ID, "ref-status").text
    assert status.startswith("Sentence 1: objects 1 (") and " are all visible in this view" in status
    from selenium.webdriver.common.keys import Keys

    press(browser, Keys.ARROW_UP)  # view 1
    assert " are not all visible in this view" in browser.find_element(By.ID, "ref-status").text
    press(browser, Keys.ARROW_DOWN)
    browser.find_elements(By.CSS_SELECTOR, "#sentences .sentence")[1].click()
    assert shown(browser)["d"] is None
    assert browser.find_element(By.ID, "ref-status").text == "Sentence 2 names no object of this scene."
    metas = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#sentences .meta")]
    assert metas[0].endswith("conjunction · objects 1, 2") and metas[1].endswith("no_target · no target")
