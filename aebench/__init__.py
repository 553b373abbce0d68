"""aebench: benchmark and evaluation suite for few-shot, audio-driven NeRF talking heads."""

from pathlib import Path

__version__ = "0.1.0"

#: Repository root (the folder holding ``protocols/`` and ``results/``) for editable installs.
REPO_ROOT = Path(__file__).resolve().parent.parent
