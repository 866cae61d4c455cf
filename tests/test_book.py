"""`make book`: widgets made static, and the book built from the end-to-end run's executed notebooks,
loaded page by page in headless Chromium with the network blocked."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from browser import browser_page

from mtrec_helpers.course.book import INTERACTIVE_NOTE, WIDGET_STATE, WIDGET_VIEW, build_book, static_notebook
from mtrec_helpers.course.runner import numbered_notebooks


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
        build_book(tmp_path)


def _figures(notebook: Path) -> int:
    """Images among a notebook's outputs once its widgets are static."""
    static = static_notebook(nbformat.read(notebook, as_version=4))
    return sum("image/png" in o.get("data", {}) for cell in static.cells for o in cell.get("outputs", []))


@pytest.mark.browser
def test_book_renders_every_chapter_offline_in_chromium(pipeline: Path, tmp_path: Path) -> None:
    """Built from the end-to-end run's executed notebooks: every page loads with no console error and
    no request off the machine, every figure is there and drawn, no output is blank, formulas are
    typeset, and 06's final table is on its page."""
    runs = tmp_path / "runs"
    shutil.copytree(pipeline / "runs", runs)
    index = build_book(runs)
    assert index == runs / "book" / "index.html"
    chapters = {nb.stem: _figures(runs / nb.name) for nb in numbered_notebooks()}
    with browser_page() as browsing:
        page = browsing.page
        page.goto(index.as_uri(), wait_until="load")
        assert not browsing.errors, browsing.errors
        links = page.locator("nav a.reference.internal").evaluate_all("links => links.map(a => a.href)")
        assert all(any(link.endswith(f"{stem}.html") for link in links) for stem in chapters), links
        for stem, figures in chapters.items():
            page.goto((runs / "book" / f"{stem}.html").as_uri(), wait_until="load")
            page.wait_for_function("() => !window.MathJax || !MathJax.startup || MathJax.startup.promise")
            drawn = page.locator("article img").evaluate_all(
                "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
            )
            assert len(drawn) == figures > 0, stem
            assert all(drawn), f"{stem}: a figure did not load"
            blank = page.locator(".cell_output").evaluate_all(
                "outs => outs.filter(o => !o.innerText.trim() && !o.querySelector('img')).length"
            )
            assert blank == 0, f"{stem}: {blank} empty output(s)"
            assert not browsing.errors, (stem, browsing.errors)
            if stem == "02b_text_item_features":  # display math typeset by the book's own MathJax
                page.wait_for_selector("mjx-container", timeout=10_000)
        notes = page.locator(".mtrec-widget-note")  # 06's explorer, static with its note
        assert notes.count() == 1
        final = page.locator("xpath=//h2[contains(., 'The final table')]/ancestor::section[1]//table")
        text = final.first.inner_text()
        for model in ("ensemble_softmax", "causal", "pop", "text_aware"):
            assert model in text, f"06's final table lacks {model}"
    assert not browsing.external, f"the book reached for the network: {browsing.external[:5]}"
