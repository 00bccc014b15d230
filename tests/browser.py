"""Headless Chromium for the tests that drive a real browser (Debian's chromium and chromedriver, via Selenium)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MISSING = (f"needs Debian's chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}): "
           "apt-get install chromium chromium-driver (.ci/run does)")


def have_chromium() -> bool:
    """What `headless_chromium` needs, where it looks (.ci/run asks this function before installing them)."""
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


def require_chromium() -> None:
    """Skip the test without them here; fail it under CI=true (conftest.missing)."""
    from conftest import missing

    if not have_chromium():
        missing(MISSING)


@contextmanager
def headless_chromium(*arguments: str, capabilities: dict | None = None) -> Iterator:
    """A Selenium driver of a headless Chromium with its own temporary profile; `arguments` join the defaults."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1000", *arguments):
        options.add_argument(arg)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    profile = tempfile.mkdtemp(prefix="clevr-remv-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: selenium-manager would try to download one.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
