"""Which Chromium the console tests drive, and how to get one when there is none.

In order: `CHROMIUM=/path/to/chromium` when set; Debian's binary (`apt-get install chromium`, which
`make test` runs when it may: as root with apt); Playwright's own download (`.venv/bin/playwright
install chromium`, where the network reaches its host). `python -m tests.console.browser` prints the
one found, or says how to get one and exits 1 (the Makefile's check before the tests).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import sync_playwright

# Debian's binary, not the /usr/bin/chromium wrapper, whose own flags (GPU rasterization,
# extensions) this machine's closed network does not want.
DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")
HOW_TO_GET_ONE = (
    "No Chromium for the console tests. Any of these gives one:\n"
    "  - as root on Debian/Ubuntu: apt-get install chromium (make test does it when run as root)\n"
    "  - where the network reaches Playwright's host: .venv/bin/playwright install chromium\n"
    "  - any Chromium or Chrome binary already here: make test CHROMIUM=/path/to/chromium"
)


class NoChromium(RuntimeError):
    pass


def chromium_executable() -> Path:
    chosen = os.environ.get("CHROMIUM", "").strip()
    if chosen:
        path = Path(chosen)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise NoChromium(f"CHROMIUM={chosen} is not an executable file.\n{HOW_TO_GET_ONE}")
        return path
    if DEBIAN_CHROMIUM.is_file():
        return DEBIAN_CHROMIUM
    # In a thread of its own: Playwright's sync API refuses to start in a thread whose asyncio loop
    # runs, and a console test's open browser session holds one in this (the worker's) thread.
    with ThreadPoolExecutor(max_workers=1) as thread:
        downloaded = thread.submit(_playwright_download).result()
    if downloaded.is_file():
        return downloaded
    raise NoChromium(HOW_TO_GET_ONE)


def _playwright_download() -> Path:
    """Where Playwright's own Chromium is (or would be, once installed)."""
    with sync_playwright() as playwright:
        return Path(playwright.chromium.executable_path)


if __name__ == "__main__":
    try:
        print(f"Chromium for the console tests: {chromium_executable()}")
    except NoChromium as missing:
        sys.exit(str(missing))
