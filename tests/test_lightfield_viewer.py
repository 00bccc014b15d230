"""The viewer's focus slider (issue #17 item 7) in headless Chromium: it shows the centre view's
focal stack slice by slice, and moving through the views leaves it."""

from __future__ import annotations

import numpy as np

from test_viewer_browser import browser, open_page, page, shown  # noqa: F401  (fixtures)


def focus_state(browser) -> dict:  # noqa: F811  (the fixture, by name)
    return browser.execute_script("""
        const f = document.getElementById("focus");
        return {value: Number(f.value), min: Number(f.min), max: Number(f.max),
                focus: Number(document.getElementById("stage").dataset.focus),
                label: document.getElementById("focus-label").textContent};
    """)


def test_the_focus_slider_changes_the_picture(browser, page) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    embedded = page[1]
    stack = embedded["focus"]
    assert len(stack["images"]) == len(stack["disparities"]) == 12
    assert np.all(np.diff(stack["disparities"]) > 0)  # far to near
    assert len(set(stack["images"])) == 12
    open_page(browser, page)
    assert focus_state(browser) == {"value": -1, "min": -1, "max": 11, "focus": -1, "label": "off"}
    assert shown(browser)["src"] == embedded["images"][4]

    slider = browser.find_element(By.ID, "focus")
    slider.send_keys(Keys.ARROW_RIGHT)  # off -> the farthest slice
    state, now = focus_state(browser), shown(browser)
    assert state["value"] == state["focus"] == 0 and state["label"].startswith(f"d = {stack['disparities'][0]:.2f}")
    assert now["src"] == stack["images"][0] != embedded["images"][4]
    assert now["view"] == 4 and now["position"] == "centre view, refocused"
    slider.send_keys(Keys.END)  # the nearest slice
    assert focus_state(browser)["focus"] == 11 and shown(browser)["src"] == stack["images"][11] != stack["images"][0]

    browser.find_element(By.ID, "mask-toggle").click()  # overlays follow the centre view's geometry
    assert shown(browser)["masks"] == len(embedded["shapes"][4])
    browser.find_element(By.ID, "mask-toggle").click()

    browser.find_element(By.ID, "stage").click()  # a click on the picture keeps the focus
    assert focus_state(browser)["focus"] == 11
    browser.find_element(By.ID, "stage").send_keys(Keys.ARROW_LEFT)  # moving through the views leaves it
    assert focus_state(browser)["focus"] == -1 and shown(browser)["src"] == embedded["images"][3]
