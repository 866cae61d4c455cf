"""Notebook 01 in real JupyterLab, driven by headless Chromium: run every cell, change the user
widget, and see the output follow."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from browser import browser_page
from playwright.sync_api import Page

from mtrec_helpers.core.paths import notebooks_dir
from mtrec_helpers.data import load_processed
from mtrec_helpers.data.widgets import user_timeline

TOKEN = "mtrec-browser-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on a free local port serving a copy of notebook 01 whose ARTIFACTS_DIR is
    a temporary folder; yields the notebook's URL and that folder."""
    root, artifacts = tmp_path / "lab", tmp_path / "artifacts"
    root.mkdir()
    notebook = nbformat.read(notebooks_dir() / "01_data_prep.ipynb", as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assert 'ARTIFACTS_DIR = ""' in parameters.source
    parameters.source = parameters.source.replace('ARTIFACTS_DIR = ""', f"ARTIFACTS_DIR = {str(artifacts)!r}")
    nbformat.write(notebook, root / "01_data_prep.ipynb")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("JupyterLab did not start within 60 s") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/01_data_prep.ipynb?token={TOKEN}", artifacts
    finally:
        server.terminate()
        server.wait(timeout=30)


EXPLORER = ".jp-OutputArea .widget-output"
"""The Output widget of 01's user explorer in JupyterLab's page."""


def _explorer_text(page: Page) -> str:
    return page.locator(EXPLORER).first.inner_text()


@pytest.mark.browser
def test_notebook_01_runs_in_jupyterlab_and_its_user_widget_updates(
    real_ml100k: Path, jupyterlab: tuple[str, Path]
) -> None:
    url, artifacts = jupyterlab
    with browser_page(allow_localhost=True) as browsing:
        page = browsing.page
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.get_by_text("Python (mtrec) | Idle").wait_for(timeout=60_000)  # the kernel is up
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        picker = page.locator(".jp-OutputArea .widget-dropdown select").first
        picker.wait_for(timeout=180_000)
        data = load_processed(artifacts / "processed")  # written by the cells that ran before the widget
        texts: dict[int, str] = {}
        for user_id in (1, 2):
            if texts:
                picker.select_option(label=str(user_id))
            # the output is redrawn in steps (profile line, then the timeline): wait for a new text that
            # holds the timeline's last title, so a half-drawn output is never read
            last = user_timeline(data, user_id).tail(20)["title"].iloc[-1]
            drawn = (f"([title, before]) => {{ const text = document.querySelector('{EXPLORER}').innerText; "
                     "return text !== before && text.includes(title); }")  # fmt: skip
            page.wait_for_function(drawn, arg=[last, texts.get(1, "")], timeout=60_000)
            texts[user_id] = _explorer_text(page)
    for user_id, text in texts.items():
        last = user_timeline(data, user_id).tail(20)
        assert last["title"].iloc[-1] in text and last["title"].iloc[0] in text, (user_id, text[:300])
    assert texts[1] != texts[2]
