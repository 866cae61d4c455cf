"""Showing tables and text in an ipywidgets Output: the one way every chapter's explorer draws."""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd


def fill(output: widgets.Output, *parts: str | pd.DataFrame) -> None:
    """Replace the Output widget's content with ``parts`` (lines of text or tables). The outputs are
    set directly rather than captured by entering the widget as a context: capturing re-routes the
    kernel's current parent message, and under ipykernel 7 that can leave a non-interactive client
    (papermill) waiting for a reply that went out under another parent."""
    output.outputs = ()
    for part in parts:
        if isinstance(part, str):
            output.append_stdout(part + "\n")
        else:
            output.append_display_data(part)
