"""HTMLView: an HTML string that also displays itself in a notebook (gr.HTML takes it as a plain str)."""

from __future__ import annotations


class HTMLView(str):
    """A str of HTML; Jupyter shows it rendered through `_repr_html_`."""

    def _repr_html_(self) -> str:
        return str(self)
