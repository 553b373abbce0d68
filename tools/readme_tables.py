"""Regenerate or check the generated blocks of the READMEs and the documentation pages.

A block is ``<!-- generated: COMMAND -->``, COMMAND's output, ``<!-- end generated -->``.
COMMAND is ``aebench ARGS`` (run in-process, its stdout) or ``python tools/NAME.py ARGS``
(run with this Python). Every command reads committed files only, so the numbers in a block
can always be traced to a file and reproduced.

    python tools/readme_tables.py            # check: exit 1 naming every stale block
    python tools/readme_tables.py --write    # rewrite every block with its command's output
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the documents that may hold generated blocks, relative to the repository root: the READMEs and
#: every page of the documentation site (docs/, mkdocs.yml)
DOCS = ("README.md", "baselines/README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")))
BLOCK = re.compile(r"<!-- generated: (?P<cmd>.+?) -->\n(?P<text>.*?)\n?<!-- end generated -->", re.S)


def blocks(doc: str) -> list[tuple[str, str]]:
    """(command, text) of every generated block of ``doc``."""
    return [(m["cmd"], m["text"]) for m in BLOCK.finditer(doc)]


def run(command: str, cwd: Path = ROOT) -> str:
    """What ``command`` prints (stripped of trailing blanks), run in ``cwd``."""
    words = shlex.split(command)
    if words[0] == "aebench":
        from click.testing import CliRunner

        from aebench.harness.cli import main

        import os

        here = os.getcwd()
        os.chdir(cwd)
        try:
            res = CliRunner().invoke(main, words[1:], catch_exceptions=False)
        finally:
            os.chdir(here)
        if res.exit_code != 0:
            raise RuntimeError(f"`{command}` failed: {res.output}")
        out = res.stdout
    elif words[0] == "python" and words[1].startswith("tools/"):
        out = subprocess.run([sys.executable, *words[1:]], cwd=cwd, capture_output=True, text=True, check=True).stdout
    else:
        raise ValueError(f"a generated block runs `aebench ...` or `python tools/...`, not `{command}`")
    return "\n".join(line.rstrip() for line in out.strip().splitlines())


def check(doc: str, cwd: Path = ROOT) -> list[str]:
    """The commands whose block in ``doc`` differs from their output."""
    return [cmd for cmd, text in blocks(doc) if run(cmd, cwd) != text]


def write(doc: str, cwd: Path = ROOT) -> str:
    """``doc`` with every block replaced by its command's output."""
    return BLOCK.sub(lambda m: f"<!-- generated: {m['cmd']} -->\n{run(m['cmd'], cwd)}\n<!-- end generated -->", doc)


def main() -> int:
    stale = []
    for name in DOCS:
        path = ROOT / name
        doc = path.read_text()
        if "--write" in sys.argv[1:]:
            new = write(doc)
            if new != doc:
                path.write_text(new)
                print(f"rewrote {name}")
        else:
            stale += [f"{name}: {cmd}" for cmd in check(doc)]
    for s in stale:
        print(f"stale: {s}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
