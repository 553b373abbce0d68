"""From the command line's words to a protocol's cells: the protocol at the chosen scale, its
data prepared (cached), its features checked before any work, the grid expanded; and the rows
an ablation run keeps (``aebench ablate --drop``, named by the ablation protocol's rows)."""

from __future__ import annotations

from pathlib import Path

from aebench.config import parse_overrides
from aebench.harness.protocol.spec import Protocol, ProtocolError, load_protocol


def _scale(overrides: list[str]) -> str:
    return str(parse_overrides([o for o in overrides if o.startswith("scale=")]).get("scale", "smoke"))


def expand(protocol_name: str, overrides: list[str], data: str | None = None, methods=None, rows: list[str] | None = None):
    """Load, prepare data for, and expand a protocol into cells."""
    from aebench.harness.protocol.cells import expand_cells
    from aebench.harness.protocol.launchers import data_root_for

    protocol = load_at_scale(protocol_name, overrides)
    if rows is not None:
        protocol.rows = [r for r in protocol.rows if r.label in rows]
    check_features(protocol, [o for o in overrides if not o.startswith("scale=")])
    check_audio(protocol)
    root = data_root_for(protocol, data)
    cells = expand_cells(protocol, root, [o for o in overrides if not o.startswith("scale=")], methods)
    check_renders(protocol, cells)
    return protocol, cells


def load_at_scale(protocol_name: str, overrides: list[str]) -> Protocol:
    """The protocol at the scale the overrides name; refuses a ``method=`` override."""
    protocol = load_protocol(protocol_name, _scale(overrides))
    if "method" in parse_overrides(overrides):  # each row names its method; an override would run every row as one
        raise ProtocolError(
            f"method is chosen by each row of a protocol ({', '.join(r.method for r in protocol.rows)}); "
            "pick rows by method with methods=[a,b] instead of method="
        )
    return protocol


class DataNotReady(ProtocolError):
    """The cells of a protocol cannot be listed from its data as it is: not prepared (yet), being
    prepared, or without what the protocol names."""


def expand_prepared(protocol: Protocol, overrides: list[str], data: str | None = None, methods=None):
    """The cells of ``protocol`` (:func:`load_at_scale`) over its data as it is, preparing
    nothing: `aebench status` reads a store while a run may still be preparing the data.
    Raises :class:`DataNotReady` where the data is missing or incomplete."""
    from aebench.data import list_identities
    from aebench.harness.protocol.cells import expand_cells
    from aebench.harness.protocol.launchers import data_root_path

    root = data_root_path(protocol, data)
    if not list_identities(root):
        raise DataNotReady(f"the data of protocol {protocol.name} is not prepared yet (no identities in {root}; `aebench run` prepares it)")
    try:
        return expand_cells(protocol, root, [o for o in overrides if not o.startswith("scale=")], methods)
    except ProtocolError as exc:
        raise DataNotReady(str(exc)) from exc


def check_features(protocol, overrides: list[str]) -> None:
    """Fail before any work when the audio features of the run cannot be computed here (e.g.
    ``scale=paper`` uses wav2vec2, whose weights must be in the local store)."""
    from aebench.config import load_config
    from aebench.data.features import FeatureError, settings

    cfg = load_config(overrides, extra=protocol.settings, scale=protocol.scale)
    try:
        settings(str(cfg.features))
    except FeatureError as exc:
        raise ProtocolError(f"protocol {protocol.name} at scale {protocol.scale} uses features={cfg.features}: {exc}") from exc


def face_px(identity) -> float:
    """How large a face the renders of ``identity`` (an :class:`~aebench.data.Identity` at the
    working size) show: the median over its test frames of the larger side of the S3FD-like box
    around its landmarks (:func:`aebench.eval.metrics.sync.boxes_from_landmarks`), in pixels."""
    import numpy as np

    from aebench.eval.metrics.sync import boxes_from_landmarks

    boxes = boxes_from_landmarks(identity.split("test").landmarks)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    sides = sides[np.isfinite(sides)]
    return float(np.median(sides)) if sides.size else 0.0


def check_renders(protocol: Protocol, cells) -> None:
    """Refuse, before any training, a protocol whose renders cannot yield a metric it lists: a
    metric declares what its recipe needs of a render (``min_frames``, ``min_face_px``), and every
    cell's render (frames from ``train.render_frames`` and the driving audio, face size from the
    identity's landmarks at ``data.size``) must meet it, unless the protocol declares the metric
    under ``expected_missing`` with its reason. The error names the metric, the need, the cell
    and the settings that would meet it."""
    import math

    from aebench.eval.registry import METRICS
    from aebench.harness.protocol.runner import _identity, driving_audio
    from aebench.method_api import render_span

    needy = [
        METRICS[m] for m in protocol.metrics if m not in protocol.expected_missing and (METRICS[m].min_frames or METRICS[m].min_face_px)
    ]
    if not needy:
        return
    seen: dict[tuple, tuple[int, float]] = {}
    for cell in cells:
        cfg = cell.cfg
        size = int(cfg.data.size)
        key = (str(cfg.data.root), cell.identity, str(cell.audio), size, int(cfg.train.render_frames))
        if key not in seen:
            identity = _identity(cfg, cell.identity)
            audio, _ = driving_audio(cfg, identity)
            seen[key] = (render_span(identity, audio, int(cfg.train.render_frames))[0], face_px(identity))
        frames, face = seen[key]
        for m in needy:
            if m.needs_gt and str(cell.audio) != "self":
                continue
            fixes = []
            if frames < m.min_frames:
                cap = int(cfg.train.render_frames)
                fixes.append(
                    f"train.render_frames >= {m.min_frames}"
                    if 0 < cap < m.min_frames
                    else f"a driving audio of at least {m.min_frames} frames"
                )
            if face < m.min_face_px:
                fixes.append(f"data.size >= {math.ceil(size * m.min_face_px / max(face, 1e-6))} (clips prepared at least that large)")
            if fixes:
                raise ProtocolError(
                    f"protocol {protocol.name} lists {m.name} ({m.label}), whose recipe needs renders of at least "
                    f"{m.min_frames} frames with faces of at least {m.min_face_px} px ({m.needs_source}); cell "
                    f"{cell.label} renders {frames} frames at {size} px with faces about {face:.0f} px. Set "
                    f"{' and '.join(fixes)}, or declare it in the protocol: expected_missing: {{{m.name}: REASON}}"
                )


def check_audio(protocol: Protocol) -> None:
    """Fail before any work when a driving audio given as a file does not exist (identity names
    are checked against the data when the cells are expanded)."""
    from aebench.paths import SHARED_PREFIX, shared_path

    for spec in protocol.grid["audio"]:
        spec = str(spec)
        if spec == "self" or not (spec.startswith(SHARED_PREFIX) or "/" in spec or Path(spec).suffix):
            continue
        if not shared_path(spec).is_file():
            hint = " (set AEBENCH_SHARED to the shared folder)" if spec.startswith(SHARED_PREFIX) else ""
            raise ProtocolError(f"protocol {protocol.name}: driving audio {spec} not found at {shared_path(spec)}{hint}")


def ablation_rows(protocol: str, drops: tuple[str, ...] | list[str]) -> list[str]:
    """Labels of the rows of ``protocol`` that ``--drop`` keeps: every row that is no ablation
    (no ``drop:``, the full model) and those whose ``drop:`` is named (case-insensitive)."""
    spec = load_protocol(protocol, scale=None)
    named = {r.drop.upper(): r.label for r in spec.rows if r.drop}
    unknown = [d for d in drops if d.upper() not in named]
    if unknown:
        valid = ", ".join(r.drop for r in spec.rows if r.drop)
        raise ProtocolError(f"unknown ablation(s) {unknown}; protocol {spec.name} names: {valid}")
    wanted = {named[d.upper()] for d in drops}
    return [r.label for r in spec.rows if not r.drop or r.label in wanted]
