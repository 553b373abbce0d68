"""The README and the documentation pages (docs/, built by mkdocs from mkdocs.yml) agree with
the repository: the README's links resolve, the set-up commands of Getting started are the
README's, the protocol fields of the Protocols page are spec.py's docstring, and every page the
site's navigation names exists. `mkdocs build --strict` (.ci/run) checks the pages' own links
and the API reference."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _fenced(text: str, lang: str) -> list[str]:
    """The bodies of the ``lang`` fenced code blocks of a Markdown text."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def test_the_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    targets = [t for t in LINK.findall(readme) if "://" not in t]
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_getting_started_has_the_readme_set_up_commands():
    readme = _fenced((ROOT / "README.md").read_text(), "bash")[0]
    assert "pip install -e" in readme and "pytest" in readme
    assert readme in _fenced((ROOT / "docs" / "getting-started.md").read_text(), "bash")


def test_the_protocols_page_lists_spec_fields():
    doc = (ROOT / "harness" / "protocol" / "spec.py").read_text().split('"""')[1]
    fields = textwrap.dedent(doc.split("::\n\n", 1)[1]).rstrip("\n") + "\n"
    assert fields in _fenced((ROOT / "docs" / "protocols.md").read_text(), "yaml"), (
        "docs/protocols.md: the protocol fields differ from harness/protocol/spec.py's docstring"
    )


def test_every_page_of_the_nav_exists():
    def pages(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from (pages(value) if isinstance(value, list) else [value])

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.SafeLoader)
    listed = list(pages(config["nav"]))
    assert "index.md" in listed
    assert not [p for p in listed if not (ROOT / "docs" / p).is_file()]
