"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks``).

The docstrings are reStructuredText-ish: they cross-reference in Sphinx's roles
(``:func:`evaluate```), which Markdown renders as the role's name beside the code, and introduce
a literal block with ``::``. The API reference shows the code alone and a plain colon.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:mod|class|func|meth|data|attr|obj|exc):(?=<code>)")
LITERAL = re.compile(r"::(?=</p>\s*<div class=\"highlight\"><pre>|</p>\s*<pre>)")


def on_page_content(html: str, **kwargs) -> str:
    return LITERAL.sub(":", ROLE.sub("", html))
