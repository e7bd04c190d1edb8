"""Screenshots of a digest for the README: reader ada of the example config.toml, from its
local sample feeds, at phone (375 px) and desktop (800 px) widths, in headless Chromium.

    python examples/screenshot.py            # writes docs/digest-phone.png, docs/digest-desktop.png
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    from playwright.sync_api import sync_playwright

    from digest.config import load_config
    from digest.daily import render_digests
    from digest.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.toml"
        text = (ROOT / "config.toml").read_text().replace('"examples/', f'"{ROOT}/examples/')
        config_path.write_text(text)
        poll = [sys.executable, "-m", "digest", "--config", str(config_path), "poll",
                "--feed", "lab-notes", "--feed", "arxiv-sample", "--feed", "hf-sample"]
        subprocess.run(poll, check=True, capture_output=True)  # noqa: S603 - our own CLI
        config = load_config(config_path)
        with Store(config.digest.database) as store:
            (done,) = render_digests(config, store, [config.users["ada"]], None, datetime.now(UTC))
        page_file = Path(tmp) / "digest.html"
        page_file.write_text(done.html)
        out = ROOT / "docs"
        out.mkdir(exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            for name, width in (("phone", 375), ("desktop", 800)):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.goto(page_file.as_uri())
                page.screenshot(path=str(out / f"digest-{name}.png"), full_page=True)
            browser.close()
    print("wrote docs/digest-phone.png and docs/digest-desktop.png")


if __name__ == "__main__":
    main()
