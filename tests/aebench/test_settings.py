"""Every setting is declared once (a dataclass field), and what is generated from it."""

import ast
import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from aebench.config import CONFIG_DIR, ConfigError, _parts, _read_part, explain, load_config, section_classes
from aebench.settings import SCALES, RootSettings, Settings, SettingsError, field_docs

FOUNDATION = Path(__file__).parents[2] / "aebench"


def _classes() -> dict[str, type[Settings]]:
    classes = {"(root)": RootSettings, **{k: v for k, v in section_classes().items() if v is not None}}
    nested = {}
    for name, cls in classes.items():
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if isinstance(default, Settings):
                nested[f"{name}.{f.name}"] = type(default)
    return {**classes, **nested}


def _leaf_keys(overlay: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in overlay.items():
        if isinstance(v, dict) and v:
            keys += _leaf_keys(v, f"{prefix}{k}.")
        else:
            keys.append(f"{prefix}{k}")
    return keys


def test_the_yaml_parts_hold_overlays_only_and_every_overlay_key_is_declared():
    """No YAML file declares a default (the loader refuses a ``defaults:`` block), and every key an
    overlay sets is a declared field: the YAML holds no key the dataclasses lack."""
    for name, path in _parts():
        for scale, overlay in _read_part(path).items():
            assert scale in SCALES
            for key in _leaf_keys(overlay or {}):
                full = key if name is None else f"{name}.{key}"
                assert explain(full)["declared"].count(".") >= 2, (path, full)


def test_a_defaults_block_in_yaml_is_refused(tmp_path, monkeypatch):
    import aebench.config as config

    (tmp_path / "sections").mkdir()
    (tmp_path / "base.yaml").write_text("scales: {}\n")
    (tmp_path / "sections" / "train.yaml").write_text("defaults:\n  iters: 3\n")
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError, match="defaults are declared in the settings classes"):
        load_config()


def test_every_declared_setting_has_a_docstring_and_the_tree_holds_exactly_the_declared_keys():
    cfg = load_config()
    for name, cls in _classes().items():
        docs = field_docs(cls)
        undocumented = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not undocumented, f"{cls.__name__}: {undocumented} have no docstring"
        if "." not in name and name != "(root)":
            assert sorted(cfg[name].keys()) == sorted(cls.keys()), name
    assert sorted(k for k in cfg.keys() if k not in section_classes()) == sorted(RootSettings.keys())


def test_ranges_and_choices_come_from_the_declarations():
    for override, message in [
        ("field.encoding=nope", "'field.encoding' must be one of frequency, hashgrid, triplane, got nope"),
        ("dfrf.slot_init=x", "'dfrf.slot_init' must be one of learned, sampled"),
        ("aenerf.heads=0", "'aenerf.heads' must be at least 1, got 0"),
        ("aenerf.rrs_eps=2", "'aenerf.rrs_eps' must be at most 1.0"),
        ("prepare.jpeg_quality=101", "'prepare.jpeg_quality' must be at most 100"),
        ("device=gpu", "'device' must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            load_config([override])


def test_explain_says_what_a_setting_is_and_where_its_value_was_set():
    info = explain("train.iters")
    assert info["declared"] == "aebench.settings.TrainSettings.iters" and info["default"] == 200
    assert info["value"] == 150 and "scale 'smoke' overlay" in info["set_by"] and "Fine-tuning iterations" in info["doc"]
    assert explain("train.iters", ["train.iters=7"])["set_by"] == "command line"
    assert "train.preset=official" in explain("train.batch_rays", ["method=adnerf", "train.preset=official"])["set_by"]
    assert explain("seed")["set_by"] == "default" and explain("data.size")["accepts"] == "a whole number from 0 to 4096"
    assert explain("field.mlp")["declared"].endswith("FieldSettings.mlp")
    with pytest.raises(ConfigError, match="unknown config key 'train.nope'; valid keys: train.preset"):
        explain("train.nope")
    from aebench.harness.cli import main

    out = CliRunner().invoke(main, ["config", "show", "--explain", "train.sampler", "train.sampler=proposal"])
    assert out.exit_code == 0 and "one of hierarchical, occupancy, proposal" in out.output
    assert "'proposal'  (set by command line)" in out.output and "proposal sampler" in " ".join(out.output.split())


def test_a_checkpoint_written_before_the_field_part_reads_back():
    """Checkpoints of earlier versions kept the field settings flat in the method's (``fast_mlp``,
    ``grid_lr_mult``): they rebuild the same settings."""
    from aebench.baselines.dfrf import DFRFSettings

    now = DFRFSettings.from_tree(load_config(["field.encoding=hashgrid"]), "dfrf")
    old = {k: v for k, v in now.to_dict().items() if k != "field"}
    old.update(
        encoding="hashgrid",
        hashgrid=now.field.hashgrid,
        triplane=now.field.triplane,
        fast_mlp=now.field.mlp,
        grid_lr_mult=now.field.lr_mult,
    )
    assert DFRFSettings.from_dict(old) == now
    with pytest.raises(SettingsError, match="checkpoint x: 'width' takes a number"):
        DFRFSettings.from_dict({**now.to_dict(), "width": "wide"}, context="checkpoint x")


METHOD_NAMES = {"aenerf", "dfrf", "adnerf", "external"}


def _code_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants and names used as code (docstrings and comments left out)."""
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append((node.lineno, node.value))
        elif isinstance(node, (ast.Name, ast.Attribute)):
            found.append((node.lineno, node.id if isinstance(node, ast.Name) else node.attr))
    return found


def test_the_foundation_names_no_method():
    """The foundation's code (its modules and the data layer) holds no method's name: methods and their
    sections reach it through the registry's entry points. One value is exempt: the root's default
    ``method`` (what ``aebench bench train`` runs when none is named), declared once."""
    import re

    assert RootSettings().method == "aenerf"
    exempt = {("aebench/settings.py", "aenerf")}
    offenders = []
    for path in sorted(FOUNDATION.glob("*.py")) + sorted((FOUNDATION / "data").rglob("*.py")):
        for line, text in _code_strings(ast.parse(path.read_text())):
            rel = str(path.relative_to(FOUNDATION.parent))
            if METHOD_NAMES & set(re.findall(r"[a-z_]+", text.lower())) and (rel, text) not in exempt:
                offenders.append(f"{path.relative_to(FOUNDATION.parent)}:{line}: {text[:60]!r}")
    assert not offenders, offenders
    assert not (CONFIG_DIR / "sections" / "run.yaml").exists()  # a section without overlays has no YAML file
