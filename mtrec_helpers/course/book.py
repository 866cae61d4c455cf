"""`make book`: the executed notebooks as a static site that works offline.

The book is built with the Jupyter Book stack — Sphinx, MyST-NB and the Sphinx Book Theme — from the
copies `make run` executed (``<RUNS_DIR>/*.ipynb``), never by running them again, into
``<RUNS_DIR>/book/`` (``index.html``). Its pages mirror the repository: the home page written for
students (``docs/index.md``), each chapter followed by its worked solutions — run here on the same
run's artifacts (``<RUNS_DIR>/solutions/``) — then RESULTS.md, the benchmark summaries and the
documentation, so every link between them resolves. Nothing in it loads from the network: the
theme ships its assets, MathJax comes from ``sphinx-mathjax-offline``, and widgets — which need a
kernel — are replaced by what they showed when the notebook ran (the default selection's tables and
text), under a note that they are interactive in JupyterLab. Wide formulas and tables scroll inside
the column (``BOOK_CSS``).
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.runner import NotebookFailed, notebook_number_of, numbered_notebooks, run_notebook

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
INTERACTIVE_NOTE = (
    '<p class="mtrec-widget-note"><em>Interactive in JupyterLab: below, what it showed for the default '
    "selection when the notebook ran.</em></p>"
)
LAYOUT_MODELS = ("LayoutModel", "StyleModel", "ProgressModel")  # suffixes of models that show nothing
TEXT_MODELS = ("LabelModel", "TextModel", "TextareaModel")


def _control_line(state: Mapping[str, Any]) -> str:
    """``description: value`` of an input control, with the label of a selection's chosen option."""
    labels, index = state.get("_options_labels"), state.get("index")
    value = labels[index] if labels is not None and isinstance(index, int) else state.get("value")
    description = state.get("description") or "value"
    return f"{description}: {value}"


def static_widget(model_id: str, models: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The outputs a widget showed, from the notebook's saved widget state: an Output widget's own
    outputs, HTML as HTML, text and controls as ``description: value`` lines, boxes in order; and
    whether it has a control a reader could change (so the page says it is interactive)."""
    model = models.get(model_id.removeprefix("IPY_MODEL_"))
    if model is None:
        return [], False
    name, state = model["model_name"], model["state"]
    if name == "OutputModel":
        return [copy.deepcopy(output) for output in state.get("outputs", [])], False
    if "children" in state:
        outputs: list[dict[str, Any]] = []
        interactive = False
        for child in state["children"]:
            shown, changeable = static_widget(child, models)
            outputs += shown
            interactive |= changeable
        return outputs, interactive
    if name.endswith(LAYOUT_MODELS):
        return [], False
    if name == "HTMLModel":
        return [nbformat.v4.new_output("display_data", data={"text/html": state.get("value", "")})], False
    line = _control_line(state) + "\n"
    return [nbformat.v4.new_output("stream", name="stdout", text=line)], not name.endswith(TEXT_MODELS)


def static_outputs(outputs: Sequence[dict[str, Any]], models: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A cell's outputs with every widget view replaced by its static rendering."""
    result: list[dict[str, Any]] = []
    for output in outputs:
        view = output.get("data", {}).get(WIDGET_VIEW)
        if view is None:
            result.append(output)
            continue
        shown, interactive = static_widget(view["model_id"], models)
        if interactive:
            result.append(nbformat.v4.new_output("display_data", data={"text/html": INTERACTIVE_NOTE}))
        result += shown
    return result


def static_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook whose widgets are static and whose widget state is gone (so
    the book loads no widget library from a CDN)."""
    static = copy.deepcopy(notebook)
    models = static.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in static.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict(o) for o in static_outputs(cell.outputs, models)]
    return static


BOOK_CONF = """\
# Sphinx configuration of the course book (written by mtrec_helpers.course.book).
project = "mtrec — multi-task, RL-ranked and distilled Transformer recommenders"
author = "the mtrec authors"
root_doc = "index"
extensions = ["myst_nb", "sphinx_copybutton", "sphinx-mathjax-offline"]  # MathJax 3 served by the book
myst_enable_extensions = ["dollarmath", "amsmath"]
nb_execution_mode = "off"  # the notebooks were executed by `make run`
nb_ipywidgets_js = {}  # widgets are static here: no widget library from a CDN
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["mtrec.css"]
html_title = "mtrec"
html_theme_options = {"home_page_in_toc": True}
html_context = {"default_mode": "light"}
html_show_copyright = False
html_show_sphinx = False
suppress_warnings = ["myst.xref_missing", "myst.header", "misc.highlighting_failure"]
exclude_patterns = ["_build"]
"""

BOOK_CSS = """\
/* A display formula or a table wider than the text column scrolls inside it instead of being cut. */
mjx-container[display="true"] { display: block; max-width: 100%; overflow-x: auto; overflow-y: hidden; }
.cell_output .output, .cell_output .text_html { max-width: 100%; overflow-x: auto; }
article table { display: block; max-width: 100%; overflow-x: auto; }
/* An interval stays on one line in a results table (a notebook's output); prose tables wrap. */
.cell_output table td, .cell_output table th { white-space: nowrap; }
"""

PAGES = ("RESULTS.md", "benchmarks/*.md", "docs/*.md")
"""The repository's Markdown pages in the book, at their own paths (docs/index.md is the home page)."""
REFERENCE = (
    "RESULTS",
    "docs/findings",
    "docs/methods",
    "docs/data",
    "docs/design",
    "docs/engine",
    "docs/running",
)
"""The reference pages' order in the book's table of contents, after the chapters."""
LINK = re.compile(r"\]\((?![a-z]+:|#|/)([^)\s]+)\)")
"""A relative Markdown link's target."""


def executed_notebooks(runs_dir: Path) -> list[Path]:
    """The executed copies in ``runs_dir``, in reading order; an error naming what to run if none."""
    found = [runs_dir / path.name for path in numbered_notebooks() if (runs_dir / path.name).is_file()]
    if not found:
        raise FileNotFoundError(
            f"{runs_dir}: no executed notebooks to build the book from. Run `make run` (same RUNS_DIR) first."
        )
    return found


def rebased(markdown: str, folder: str) -> str:
    """``markdown`` written in the repository's ``folder`` with its relative links rewritten for the
    repository's root (docs/index.md becomes the book's root page)."""

    def root_relative(match: re.Match[str]) -> str:
        parts = [folder, *match.group(1).split("/")]
        while ".." in parts:
            at = parts.index("..")
            del parts[at - 1 : at + 1]
        return f"]({'/'.join(parts)})"

    return LINK.sub(root_relative, markdown)


def run_solutions(runs_dir: Path, artifacts_dir: Path) -> list[Path]:
    """Each executed chapter's worked solutions, run on that run's artifacts into
    ``<runs_dir>/solutions/``; an executed copy newer than the chapter's run and the solutions' source
    is kept. A solution that fails stops the build with the cell that failed."""
    executed = []
    for chapter in executed_notebooks(runs_dir):
        solution = project_root() / "solutions" / f"{notebook_number_of(chapter)}_solutions.ipynb"
        target = runs_dir / "solutions" / solution.name
        newest_input = max(chapter.stat().st_mtime, solution.stat().st_mtime)
        if not target.is_file() or target.stat().st_mtime < newest_input:
            run_notebook(solution, target, {"ARTIFACTS_DIR": str(artifacts_dir)})
        executed.append(target)
    return executed


def write_sources(runs_dir: Path, source: Path, root: Path | None = None) -> None:
    """The book's sources in ``source``, laid out as the repository: ``index.md`` (the home page
    with the table of contents), static copies of the executed chapters (``notebooks/``) and of
    their executed solutions (``solutions/``), the Markdown pages of :data:`PAGES`, ``conf.py`` and
    the stylesheet."""
    root = root or project_root()
    for folder in ("notebooks", "solutions", "_static"):
        (source / folder).mkdir(parents=True)
    contents = []
    for path in executed_notebooks(runs_dir):
        solved = runs_dir / "solutions" / f"{notebook_number_of(path)}_solutions.ipynb"
        for executed, folder in ((path, "notebooks"), (solved, "solutions")):
            if executed.is_file():
                static = static_notebook(nbformat.read(executed, as_version=4))
                nbformat.write(static, source / folder / executed.name)
                contents.append(f"{folder}/{executed.stem}")
    pages = sorted({page.relative_to(root) for pattern in PAGES for page in root.glob(pattern)})
    for page in pages:
        (source / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / page, source / page)
    home = rebased((root / "docs" / "index.md").read_text(encoding="utf-8"), "docs")
    documents = [str(page.with_suffix("")) for page in pages]
    reference = [name for name in REFERENCE if name in documents]
    others = [name for name in documents if name not in {*reference, "docs/index"}]
    home += _toctree("Chapters and worked solutions", contents) + _toctree("Reference", reference)
    home += _toctree("", others, hidden=True)
    (source / "docs" / "index.md").unlink()
    (source / "index.md").write_text(home, encoding="utf-8")
    (source / "conf.py").write_text(BOOK_CONF, encoding="utf-8")
    (source / "_static" / "mtrec.css").write_text(BOOK_CSS, encoding="utf-8")


def _toctree(caption: str, documents: Sequence[str], hidden: bool = False) -> str:
    """A MyST toctree directive listing ``documents``."""
    options = (f":caption: {caption}\n" if caption else "") + (":hidden:\n" if hidden else "")
    return "\n\n```{toctree}\n" + options + ":maxdepth: 1\n\n" + "\n".join(documents) + "\n```\n"


def build_book(runs_dir: Path, artifacts_dir: Path) -> Path:
    """Run the worked solutions on ``artifacts_dir`` (the run's), build ``<runs_dir>/book/`` from the
    executed notebooks and return its ``index.html``. The site is built in a temporary folder and
    moved into place only when complete."""
    runs_dir = Path(runs_dir).resolve()
    executed_notebooks(runs_dir)  # nothing to build from: say so before running anything
    run_solutions(runs_dir, Path(artifacts_dir).resolve())
    with tempfile.TemporaryDirectory(prefix=".book-", dir=runs_dir) as tmp:
        source, build = Path(tmp) / "src", Path(tmp) / "build"
        write_sources(runs_dir, source)
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(source), str(build)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not (build / "index.html").is_file():
            raise RuntimeError(f"Sphinx failed to build the book from {runs_dir}:\n{done.stderr[-4000:]}")
        target = runs_dir / "book"
        if target.exists():
            shutil.rmtree(target)
        build.rename(target)
    return target / "index.html"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs-dir", required=True, help="the folder `make run` wrote the executed notebooks to"
    )
    parser.add_argument(
        "--artifacts-dir", required=True, help="the artifacts of that run (the solutions read them)"
    )
    args = parser.parse_args(argv)
    try:
        index = build_book(Path(args.runs_dir), Path(args.artifacts_dir))
    except (FileNotFoundError, RuntimeError, NotebookFailed) as error:
        print(f"make book: {error}", file=sys.stderr)
        return 1
    print(f"the book: {index} (open it in a browser; it works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
