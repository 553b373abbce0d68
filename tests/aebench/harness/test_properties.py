"""Property-based trial (hypothesis): random values, types and files fed to the protocol loader,
`validate` and `regress` end in a clean error or a correct result, never a traceback.

"Clean" means the command's own error class (ProtocolError, ResultsError, BadReference, all
ValueErrors with a message the CLI prints as one line); "correct" means what was accepted
satisfies the invariant the command promises (a protocol's grid has whole iterations and seeds,
a valid results file holds only finite values in their metrics' ranges, a passing regression
compared at least one value and every compared value is within tolerance)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aebench.eval.registry import METRICS
from aebench.harness.protocol.spec import (
    CLIPS_FIELDS,
    FIELDS,
    GRID_FIELDS,
    ROW_FIELDS,
    SYNTH_FIELDS,
    TABLE_FIELDS,
    ProtocolError,
    parse_protocol,
)
from aebench.harness.report.regress import BadReference, compare, compared_cells
from aebench.harness.report.results import ResultsError, validate

EXPORT = Path(__file__).parents[3] / "results" / "exports" / "real_quick.json"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["all", "leave_one_out", "self", "psnr", "aenerf", "synth_02", "paper", "inf"]),
)
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12
)


# ----- the protocol loader -----------------------------------------------------------------

ROW = {"label": "A", "method": "aenerf"}
fields = st.sampled_from(sorted(FIELDS - {"scales"}))


def _loaded(doc_or_text, scale=None):
    """The protocol, or None when it was refused with a ProtocolError that says something (any
    other exception fails the test)."""
    text = doc_or_text if isinstance(doc_or_text, str) else yaml.safe_dump(doc_or_text, allow_unicode=True)
    try:
        return parse_protocol(text, Path("random.yaml"), scale=scale)
    except ProtocolError as exc:
        assert str(exc).strip()
        return None


@SETTINGS
@given(st.dictionaries(fields, values, max_size=5), st.booleans())
def test_any_protocol_document_loads_or_is_refused_by_name(doc, with_rows):
    if with_rows:
        doc.setdefault("rows", [ROW])
    p = _loaded(doc)
    if p is None:
        return
    for v in p.grid["iters"]:
        assert v is None or (float(v).is_integer() and v >= 1)
    for v in p.grid["seed"]:
        assert float(v).is_integer() and 0 <= v < 2**32
    assert p.targets == "all" or (isinstance(p.targets, list) and all(isinstance(t, str) for t in p.targets))
    assert len({r.label for r in p.rows}) == len(p.rows)
    assert all(m in METRICS for m in p.metrics)


def _mapping_of(names: set[str]):
    return st.dictionaries(st.sampled_from(sorted(names)), values, max_size=4)


structured = st.fixed_dictionaries(
    {},
    optional={
        "rows": st.one_of(st.lists(_mapping_of(ROW_FIELDS), max_size=3), values),
        "grid": _mapping_of(GRID_FIELDS),
        "synth": _mapping_of(SYNTH_FIELDS),
        "clips": _mapping_of(CLIPS_FIELDS),
        "table": _mapping_of(TABLE_FIELDS),
        "settings": st.dictionaries(st.sampled_from(["train.iters", "data.size", "seed", "aenerf.aaa", "nope.key"]), values, max_size=3),
        "scales": st.dictionaries(st.sampled_from(["smoke", "small", "paper"]), _mapping_of(FIELDS - {"scales"}), max_size=2),
        "expected_missing": st.dictionaries(metric_names_all := st.sampled_from(["psnr", "sync_conf", "x"]), values, max_size=2),
        "metrics": st.one_of(st.lists(metric_names_all, max_size=3), values),
    },
)


@SETTINGS
@given(structured, st.sampled_from([None, "smoke", "small", "paper"]))
def test_structured_but_wrong_protocols_load_or_are_refused_by_name(doc, scale):
    p = _loaded(doc, scale)
    if p is None:
        return
    assert p.rows and all(isinstance(r.method, str) for r in p.rows)


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_as_a_protocol_file_loads_or_is_refused_by_name(text):
    _loaded(text)


# ----- validate ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def export_doc() -> dict:
    doc = json.loads(EXPORT.read_text())
    doc["cells"] = doc["cells"][:2]
    for c in doc["cells"]:
        c["frames"] = c["frames"][:3]
    return doc


def _paths(doc, prefix=()):
    """Every path into a JSON document (keys and list indices)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _assert_believable(doc: dict) -> None:
    for cell in doc["cells"]:
        for name, v in cell["summary"].items():
            assert name in METRICS
            if v is None:
                assert cell["missing"].get(name)
            else:
                assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                lo, hi = METRICS[name].value_range
                assert lo <= v <= hi


@SETTINGS
@given(st.data(), values)
def test_a_results_file_with_any_field_replaced_is_valid_or_refused_by_name(export_doc, data, value):
    doc = copy.deepcopy(export_doc)
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths))
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    try:
        validate(doc)
    except ResultsError as exc:
        assert str(exc).strip()
        return
    _assert_believable(doc)


@SETTINGS
@given(values)
def test_any_json_value_as_a_results_file_is_refused_by_name(doc):
    with pytest.raises(ResultsError):
        validate(doc)


# ----- regress -------------------------------------------------------------------------------

metric_names = st.sampled_from(["psnr", "ssim", "lpips", "nosuch"])
metric_values = st.one_of(scalars, st.floats(0, 40))
cells = st.dictionaries(
    st.sampled_from(["A|x", "B|x", "C|x"]), st.one_of(st.dictionaries(metric_names, metric_values, max_size=3), values), max_size=3
)


@SETTINGS
@given(
    st.one_of(
        st.fixed_dictionaries(
            {"cells": cells}, optional={"tolerances": st.one_of(st.dictionaries(metric_names, metric_values, max_size=2), values)}
        ),
        values,
    ),
    st.dictionaries(st.sampled_from(["A|x", "B|x", "C|x"]), st.dictionaries(metric_names, metric_values, max_size=3), max_size=3),
)
def test_regress_on_any_reference_fails_refuses_or_really_compared(reference, current):
    try:
        findings = compare(reference, current)
    except BadReference as exc:
        assert str(exc).strip()
        return
    if any(f.fails for f in findings):
        return
    # a pass: every reference cell was present, and each compared value is a finite number within tolerance
    assert all(key in current for key in reference["cells"])
    for f in findings:
        if f.deviation is not None:
            assert math.isfinite(f.deviation) and abs(f.deviation) <= f.tolerance
            lo, hi = METRICS[f.metric].value_range
            assert lo <= f.reference <= hi  # a reference value no metric can have is refused
        else:
            assert f.kind in ("not-comparable", "new")
    assert compared_cells(findings) == len({f.cell for f in findings if f.deviation is not None})
