"""Show the few lines that implement a method, in the notebook, from the package itself.

The chapters call ``show_source(cluster_balanced_loss)`` right under the formula, so the reader sees
the code that ran — never a copy that could drift from it.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from IPython.display import Code


def source_text(*objects: Any) -> str:
    """The source of each function, method or class, dedented, one blank line apart."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects) + "\n"


def show_source(*objects: Any) -> Code:
    """The source of ``objects`` as a highlighted code block (put it last in a cell to display it)."""
    return Code(source_text(*objects), language="python")
