"""`runs/export` of a notebook task: the executed notebook as one standalone HTML page.

nbconvert's `lab` template renders every cell, its outputs and error tracebacks, with its CSS embedded.
Floe's template (extending it) drops the scripts the lab page loads from a CDN (require.js, MathJax,
Mermaid), so the page needs no network when it is rendered nor when it is viewed (LaTeX and mermaid
diagrams in markdown then show as source), and, when a cell failed, puts a banner at the top naming the
error with a link to that cell.

Outputs are sanitised by default (`sanitize=True`), because the page is shown to other users of the
workspace: HTML outputs, markdown and SVG keep the tags of documents (headings, paragraphs, lists, tables,
images, links, inline styles through bleach's CSS sanitizer) and lose scripts, event handlers, forms and
frames, which are shown escaped as text. nbconvert's own allowlist is too narrow for that (it escapes
headings and paragraphs of markdown cells), so its `clean_html` filter is replaced.

nbconvert is imported on the first call only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_view", "notebook_html"]

_TEMPLATE_NAME = "floe-notebook.html.j2"
_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
.floe-error-banner { margin: 16px; padding: 12px 16px; border: 1px solid #d32f2f; border-radius: 4px;
  background: #fdecea; color: #611a15; font-family: var(--jp-ui-font-family, sans-serif); }
.floe-error-banner pre { margin: 4px 0 0; white-space: pre-wrap; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{%- if resources.floe_error %}
<div class="floe-error-banner" role="alert">
  <strong>Failed in cell {{ resources.floe_error.number }}</strong>
  {%- if resources.floe_error.anchor %}
  (<a href="#{{ resources.floe_error.anchor | escape_html }}">go to the cell</a>)
  {%- endif %}
  <pre>{{ resources.floe_error.error | escape_html }}</pre>
</div>
{%- endif %}
{%- endblock body_header -%}
"""
_EXIT_ERROR = "NotebookExit"

_SAFE_TAGS = frozenset(
    {
        *("a", "abbr", "acronym", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del"),
        *("details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span"),
        *("strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"),
    }
)
_SAFE_ATTRIBUTES = {
    "*": ["class", "id", "style", "title", "align"],
    "a": ["href", "title", "class", "id"],
    "img": ["src", "alt", "title", "width", "height", "class", "id", "style"],
    "td": ["colspan", "rowspan", "class", "id", "style", "align"],
    "th": ["colspan", "rowspan", "scope", "class", "id", "style", "align"],
    "table": ["border", "class", "id", "style"],
    "ol": ["start", "type", "class", "id"],
}
_SAFE_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})


def _clean_html(element: object) -> str:
    """nbconvert's `clean_html` filter with the allowlist above (bleach escapes anything else)."""
    import bleach
    from bleach.css_sanitizer import CSSSanitizer

    text = element.decode() if isinstance(element, bytes) else str(element)
    return bleach.clean(
        text,
        tags=_SAFE_TAGS,
        attributes=_SAFE_ATTRIBUTES,
        protocols=_SAFE_PROTOCOLS,
        css_sanitizer=CSSSanitizer(),
    )


def _failure(nb: Any) -> dict[str, Any] | None:
    """The first cell with an error output: its 1-based number among all cells, anchor and error line."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") != _EXIT_ERROR:
                ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
                cell_id = cell.get("id") or ""
                return {
                    "number": index + 1,
                    "anchor": f"cell-id={cell_id}" if cell_id else "",
                    "error": f"{ename}: {evalue}" if evalue else ename,
                }
    return None


def notebook_html(executed_ipynb_bytes: bytes, *, sanitize: bool = True) -> str:
    """The executed notebook (the bytes of `executed.ipynb`) as a standalone HTML page.

    Raises ValueError when the bytes are not a notebook.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.reads(executed_ipynb_bytes.decode("utf-8"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as exc:  # nbformat raises many kinds (JSON, version, shape)
        raise ValueError(f"not a Jupyter notebook: {exc}") from exc
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
        sanitize_html=sanitize,
        embed_images=True,
        filters={"clean_html": _clean_html},
    )
    title = nb.metadata.get("floe", {}).get("source") or "notebook"
    resources = {"metadata": {"name": title}, "floe_error": _failure(nb)}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def export_view(name: str, executed_ipynb_bytes: bytes) -> dict[str, str]:
    """One element of `runs/export`'s `views`: `{"content": <html>, "name": name, "type": "NOTEBOOK"}`."""
    return {"content": notebook_html(executed_ipynb_bytes), "name": name, "type": "NOTEBOOK"}
