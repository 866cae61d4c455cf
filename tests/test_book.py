"""`make book`: widgets made static, and the book built from the end-to-end run's executed notebooks,
loaded page by page in headless Chromium with the network blocked."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from browser import Browsing, browser_page

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.book import (
    INTERACTIVE_NOTE,
    WIDGET_STATE,
    WIDGET_VIEW,
    build_book,
    rebased,
    static_notebook,
)
from mtrec_helpers.course.runner import notebook_number_of, numbered_notebooks


def _model(name: str, **state: object) -> dict:
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}


def _notebook_with_widgets() -> nbformat.NotebookNode:
    """A cell showing an explorer (a dropdown over an Output widget) and a progress bar."""
    html = "<table><tr><td>Toy Story</td></tr></table>"
    table = {"output_type": "display_data", "data": {"text/html": html}, "metadata": {}}
    models = {
        "box": _model("VBoxModel", children=["IPY_MODEL_pick", "IPY_MODEL_out"], layout="IPY_MODEL_lay"),
        "pick": _model("DropdownModel", description="user_id", _options_labels=["1", "2", "3"], index=2),
        "out": _model("OutputModel", outputs=[table]),
        "lay": _model("LayoutModel"),
        "bar": _model("HBoxModel", children=["IPY_MODEL_desc", "IPY_MODEL_prog"]),
        "desc": _model("HTMLModel", value="training: 100%"),
        "prog": _model("FloatProgressModel", value=3.0),
    }
    cell = nbformat.v4.new_code_cell("display(user_explorer(data))")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={WIDGET_VIEW: {"model_id": "box"}, "text/plain": "VBox(...)"}
        ),
        nbformat.v4.new_output("stream", name="stdout", text="after\n"),
        nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "bar"}, "text/plain": "0%"}),
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["widgets"] = {WIDGET_STATE: {"state": models, "version_major": 2, "version_minor": 0}}
    return notebook


def test_widgets_become_what_they_showed_with_a_note_where_a_reader_could_interact() -> None:
    notebook = _notebook_with_widgets()
    static = static_notebook(notebook)
    outputs = static.cells[0].outputs
    assert [o.output_type for o in outputs] == [
        "display_data",
        "stream",
        "display_data",
        "stream",
        "display_data",
    ]
    assert outputs[0].data["text/html"] == INTERACTIVE_NOTE  # the dropdown: interactive in JupyterLab
    assert outputs[1].text == "user_id: 3\n"  # the chosen option's label
    assert "Toy Story" in outputs[2].data["text/html"]  # what the Output widget showed
    assert outputs[3].text == "after\n"
    assert outputs[4].data == {"text/html": "training: 100%"}  # a progress bar: its text, no note
    assert not any(WIDGET_VIEW in o.get("data", {}) for o in outputs)
    assert "widgets" not in static.metadata  # no widget state: the page loads no widget library
    assert WIDGET_VIEW in notebook.cells[0].outputs[0].data  # the executed copy itself is untouched


def test_the_book_needs_executed_notebooks(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Run `make run` \(same RUNS_DIR\) first"):
        build_book(tmp_path, tmp_path / "artifacts")


def test_the_home_page_links_resolve_from_the_books_root() -> None:
    """docs/index.md is the book's root page: its links are rewritten for the repository's root."""
    text = "[a](findings.md) [b](../RESULTS.md) [c](../notebooks/01.ipynb) [d](https://x.org/a) [e](#top)"
    assert rebased(text, "docs") == (
        "[a](docs/findings.md) [b](RESULTS.md) [c](notebooks/01.ipynb) [d](https://x.org/a) [e](#top)"
    )
    home = (project_root() / "docs" / "index.md").read_text(encoding="utf-8")
    for number in [notebook_number_of(nb) for nb in numbered_notebooks()]:
        assert f"../solutions/{number}_solutions.ipynb" in home, number


def _figures(notebook: Path) -> int:
    """Images among a notebook's outputs once its widgets are static."""
    static = static_notebook(nbformat.read(notebook, as_version=4))
    return sum("image/png" in o.get("data", {}) for cell in static.cells for o in cell.get("outputs", []))


BROKEN_LINKS = """() => Array.from(document.querySelectorAll("article a[href]"))
    .map(a => a.getAttribute("href"))
    .filter(h => h.startsWith("#") && h.length > 1
                 && !document.getElementById(decodeURIComponent(h.slice(1))))"""
"""Links of the page's article to an anchor the page does not have (an unresolved cross-reference)."""
LOCAL_TARGETS = """() => Array.from(document.querySelectorAll("article a[href]")).map(a => a.href)
    .filter(h => h.startsWith("file://")).map(h => h.split("#")[0])"""
"""The local files the page's article links to."""
DOLLARS = """() => { const copy = document.querySelector("article").cloneNode(true);
    copy.querySelectorAll("pre, code, mjx-container, script").forEach(e => e.remove());
    return (copy.textContent.match(/.{0,40}[$].{0,40}/g) || []); }"""
"""Text around a literal dollar sign outside code and typeset formulas (a formula MathJax missed)."""
OVERFLOW = """() => { const article = document.querySelector("article");
    const column = {right: article.getBoundingClientRect().right
                           - parseFloat(getComputedStyle(article).paddingRight)};
    const holds = p => ["auto", "scroll"].includes(getComputedStyle(p).overflowX)
                       && p.getBoundingClientRect().right <= column.right + 1;
    const scrolls = e => { for (let p = e; p && p.tagName !== "ARTICLE"; p = p.parentElement) {
        if (holds(p)) return true; } return false; };
    return Array.from(document.querySelectorAll("article *"))
      .filter(e => !e.closest("mjx-assistive-mml"))  // MathJax's hidden copy for screen readers
      .filter(e => e.getBoundingClientRect().right > column.right + 1 && !scrolls(e))
      .map(e => e.tagName + "." + e.className + ": " + (e.textContent || "").slice(0, 60)); }"""
"""Elements wider than the text column that no scroll box inside the column holds (clipped content)."""


COMMENT_AS_TEXT = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('code, pre, script, style').forEach(e => e.remove());
  return body.textContent.includes('<!--');
}"""
"""Whether "<!--" shows in a page's prose (code excepted): a figure's marker escaped instead of hidden."""


def _check_page(browsing: Browsing, path: Path, shots: Path) -> None:
    """Load one page of the book; every check that holds for every page."""
    page = browsing.page
    page.goto(path.as_uri(), wait_until="load")
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")  # typeset
    assert not browsing.errors, (path.name, browsing.errors)
    assert page.evaluate(BROKEN_LINKS) == [], path.name
    missing = [
        t for t in page.evaluate(LOCAL_TARGETS) if not Path(unquote(t.removeprefix("file://"))).is_file()
    ]
    assert missing == [], (path.name, missing)
    assert page.evaluate(DOLLARS) == [], path.name
    assert page.evaluate(OVERFLOW) == [], path.name
    assert not page.evaluate(COMMENT_AS_TEXT), f"{path.name}: a figure marker shows as text"
    shot = shots / f"{path.parent.name}-{path.stem}.png"
    page.screenshot(path=str(shot), full_page=False)
    print("screenshot:", shot)


@pytest.mark.browser
def test_book_renders_every_page_offline_in_chromium(book: Path, tmp_path: Path) -> None:
    """Built from the end-to-end run's executed notebooks and solutions: every page — chapters,
    solutions, RESULTS, the docs — loads with no console error and no request off the machine, every
    internal link resolves, no formula is left as dollars, nothing is wider than the column without
    a scroll box; every figure is there and drawn, no output is blank, formulas are typeset, each
    chapter has its solutions page, and 06's final table is on its page."""
    site = book / "book"
    chapters = {nb.stem: _figures(book / nb.name) for nb in numbered_notebooks()}
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with browser_page() as browsing:
        page = browsing.page
        _check_page(browsing, site / "index.html", shots)
        links = page.locator("nav a.reference.internal").evaluate_all("links => links.map(a => a.href)")
        for stem in chapters:
            number = stem.split("_")[0]
            for target in (f"notebooks/{stem}.html", f"solutions/{number}_solutions.html"):
                assert any(link.endswith(target) for link in links), (target, links)
        for document in ("RESULTS.html", "docs/findings.html", "docs/methods.html", "docs/data.html"):
            assert any(link.endswith(document) for link in links), (document, links)
        pages = sorted(p for p in site.rglob("*.html") if p.parent.name in ("notebooks", "solutions", "docs"))
        pages += [site / "RESULTS.html", *sorted((site / "benchmarks").glob("*.html"))]
        for path in pages:
            _check_page(browsing, path, shots)
        for stem, figures in chapters.items():
            page.goto((site / "notebooks" / f"{stem}.html").as_uri(), wait_until="load")
            drawn = page.locator("article img").evaluate_all(
                "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
            )
            assert len(drawn) == figures > 0, stem
            assert all(drawn), f"{stem}: a figure did not load"
            blank = page.locator(".cell_output").evaluate_all(
                "outs => outs.filter(o => !o.innerText.trim() && !o.querySelector('img')).length"
            )
            assert blank == 0, f"{stem}: {blank} empty output(s)"
            if stem == "02b_text_item_features":  # display math typeset by the book's own MathJax
                page.wait_for_selector("mjx-container", timeout=10_000)
        notes = page.locator(".mtrec-widget-note")  # 06's explorer, static with its note
        assert notes.count() == 1
        final = page.locator("xpath=//h2[contains(., 'The final table')]/ancestor::section[1]//table")
        text = final.first.inner_text()
        for model in ("ensemble_softmax", "causal", "pop", "text_aware"):
            assert model in text, f"06's final table lacks {model}"
    assert not browsing.external, f"the book reached for the network: {browsing.external[:5]}"
