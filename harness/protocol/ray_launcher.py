"""``launcher=ray``: the cells as Ray tasks, on a shared disk or, where a node has none, shipped.

Before any work the driver checks that every alive node sees what the cells read and write: it
writes a marker (a random token) into the run store, and one task pinned to each node reads it,
writes beside it, and hashes the prepared data the cells read (each identity's ``meta.json``,
each driving-audio file) to compare with the driver's. ``ray.ship``
(``configs/sections/ray.yaml``) then picks how the tasks reach the data:

* **in place** (every node passed with ``auto``; ``never``, which refuses, naming the nodes that
  failed, when one did): the tasks read the data and write the run store at the driver's paths.
* **shipped** (a node failed, with ``auto``; always with ``always``): the driver packs each
  identity and driving-audio file once into the object store, and the store folders a task builds
  on (its base model, a fine-tuned model or an unfinished cell folder of an earlier run). The task
  unpacks them into a temporary folder, runs with ``data.root`` and the run store there, and
  returns the store folders it wrote, packed, their records (JSON, YAML, logs) naming the
  driver's paths again; the driver installs each whole (unpacked beside it, then renamed; one
  already done is kept). Base models run first, then the first cell of each fine-tuned model,
  then the cells that share it: each is trained once, as in place.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import os
import secrets
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from aebench.harness.protocol.cells import Cell
from aebench.harness.protocol.launchers import _bases_needed, _pool_base, _quiet, _remote_base, _remote_cell
from aebench.harness.protocol.run_store import base_folder, cell_lock, finetune_folder, is_done, rebase
from aebench.harness.protocol.runner import CellOutcome

#: ``ray.ship`` values (configs/sections/ray.yaml)
SHIP_MODES = ("auto", "always", "never")
#: how long the driver waits for every node's answer to the store check
PROBE_TIMEOUT_S = 300.0


def run_ray(cells: list[Cell], runs_root: Path, progress: bool = True) -> list[CellOutcome]:
    """The cells as Ray tasks (``RAY_ADDRESS`` picks a running cluster, otherwise a local
    instance starts): in place where every node sees the run store and the data, else shipped."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("launcher=ray needs Ray: pip install 'aebench[ray]'") from exc
    from aebench.registry import REGISTERED

    mode = ship_mode(cells)
    if not cells:
        return []
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=progress,
            runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}},
        )
    blind = {} if mode == "always" else blind_nodes(ray, cells, Path(runs_root))
    if blind and mode == "never":
        raise RuntimeError(
            f"launcher=ray with ray.ship=never, but {_blind_text(blind)}: mount them at the same paths "
            "on every node, or let the driver send each task its data and bring back its results "
            "(ray.ship=auto)"
        )
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    registry = dict(REGISTERED)
    if not blind and mode != "always":
        return _run_in_place(ray, cells, Path(runs_root), progress, gpus, registry)
    if progress:
        tqdm.write(
            f"launcher=ray: {_blind_text(blind) if blind else 'ray.ship=always'}; each task gets its data "
            f"from the driver and sends its results back to {runs_root}"
        )
    return _run_shipped(ray, cells, Path(runs_root), progress, gpus, registry)


def ship_mode(cells: list[Cell]) -> str:
    """The run's ``ray.ship``: one value for all its cells (it says how the run reaches its
    nodes, so cells asking for different ways are a mistake in the protocol's settings)."""
    modes = sorted({str(OmegaConf.select(c.cfg, "ray.ship", default="auto")) for c in cells})
    if len(modes) > 1:
        raise ValueError(
            f"launcher=ray: the cells set ray.ship to {' and '.join(modes)}; give the run one value (ray.ship={'|'.join(SHIP_MODES)})"
        )
    mode = modes[0] if modes else "auto"
    if mode not in SHIP_MODES:  # the config refuses it too; a cell built without it may not
        raise ValueError(f"ray.ship must be one of {', '.join(SHIP_MODES)}, got {mode}")
    return mode


def _run_in_place(ray, cells: list[Cell], runs_root: Path, progress: bool, gpus: int, registry: dict) -> list[CellOutcome]:
    """Every node sees the store: base models first, then every cell, each a task writing there."""
    base_task = ray.remote(num_gpus=gpus, num_cpus=1)(_remote_base)
    cell_task = ray.remote(num_gpus=gpus, num_cpus=1)(_remote_cell)
    ray.get([base_task.remote(c, str(runs_root), registry) for c in _bases_needed(cells, runs_root)])
    pending = {cell_task.remote(c, str(runs_root), registry): c for c in cells}
    outcomes = []
    with tqdm(total=len(cells), desc="cells (ray)", unit="cell", disable=not progress) as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            pending.pop(done[0])
            outcomes.append(ray.get(done[0]))
            bar.update(1)
    return _in_order(outcomes, cells)


def _in_order(outcomes: list[CellOutcome], cells: list[Cell]) -> list[CellOutcome]:
    order = {c.cell_id: i for i, c in enumerate(cells)}
    return sorted(outcomes, key=lambda o: order[o.cell.cell_id])


# --- the check: what each node sees ---------------------------------------------------------------


def blind_nodes(ray, cells: list[Cell], runs_root: Path) -> dict[str, list[str]]:
    """Alive nodes that cannot see what the cells need -> what they miss ({} when all see all):
    one task pinned to each node reads a marker the driver wrote into the run store (a random
    token, so a node's own disk at the same path fails), writes beside it, and hashes the data."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = {n["NodeID"]: f"{n.get('NodeManagerAddress', '?')} ({n['NodeID'][:8]})" for n in ray.nodes() if n.get("Alive")}
    token = secrets.token_hex(16)
    probe_dir = runs_root / f".ray-probe-{token}"
    try:
        probe_dir.mkdir(parents=True)
        (probe_dir / "marker").write_text(token)
    except OSError as exc:
        raise RuntimeError(f"launcher=ray: cannot write the run store {runs_root}: {exc.strerror or exc}") from exc
    try:
        probe = ray.remote(num_cpus=0)(_probe)
        refs = {
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                str(probe_dir / "marker"), token, _needs(cells)
            ): node
            for node in nodes
        }
        answered, late = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        if late:
            raise RuntimeError(
                f"launcher=ray: node(s) {', '.join(nodes[refs[r]] for r in late)} did not answer the "
                f"run-store check in {PROBE_TIMEOUT_S:g} s; check them with `ray status`"
            )
        missed = {nodes[refs[r]]: ray.get(r) for r in answered}
        return {node: what for node, what in missed.items() if what}
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def _blind_text(blind: dict[str, list[str]]) -> str:
    """``node A cannot see X and Y; node B cannot see X``: the nodes and what each misses."""
    return "; ".join(f"node {node} cannot see {' and '.join(what)}" for node, what in sorted(blind.items()))


def _needs(cells: list[Cell]) -> list[tuple[str, str, str]]:
    """What the cells read besides the run store, as (kind, where, sha256): the ``meta.json`` of
    every identity they name (``identity``), every driving-audio file (``audio``, as the cell
    names it: a node resolves ``shared:...`` with its own ``AEBENCH_SHARED``, as the cell will)."""
    from aebench.paths import shared_path

    needs: dict[str, tuple[str, str, str]] = {}
    for cell in cells:
        root = Path(str(cell.cfg.data.root))
        for name in _identities_of(cell, with_base=True):
            meta = root / name / "meta.json"
            if str(meta) not in needs:
                needs[str(meta)] = ("identity", str(meta), _sha256(meta) or "")
        spec = _audio_file(cell)
        if spec and spec not in needs:
            needs[spec] = ("audio", spec, _sha256(shared_path(spec)) or "")
    return list(needs.values())


def _probe(marker: str, token: str, needs: list[tuple[str, str, str]]) -> list[str]:
    """On one node: what it cannot see ([] when it sees all): the run store (the driver's marker
    unread, or no file can be written beside it), the prepared data, a driving-audio file."""
    from aebench.paths import shared_path

    marker_path, missed = Path(marker), []
    store = marker_path.parent.parent
    try:
        seen = marker_path.read_text()
    except OSError:
        seen = None
    if seen != token:
        missed.append(f"the run store {store}")
    else:
        try:
            (marker_path.parent / f"written-{secrets.token_hex(8)}").write_text(token)
        except OSError:
            missed.append(f"the run store {store} (read-only there)")
    for kind, where, digest in needs:
        if kind == "identity" and _sha256(Path(where)) != digest:
            missed.append(f"the prepared data {Path(where).parent.parent}")
        elif kind == "audio" and _sha256(shared_path(where)) != digest:
            missed.append(f"the driving audio {where}")
    return list(dict.fromkeys(missed))


def _sha256(path: Path) -> str | None:
    """The file's sha256, None when it cannot be read (absent on this node)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _identities_of(cell: Cell, with_base: bool) -> list[str]:
    """The identities a cell reads: its target, the identity whose voice drives it, and (to train
    its base model) the base identities."""
    names = [cell.identity]
    spec = str(cell.cfg.run.audio)
    if spec != "self" and (Path(str(cell.cfg.data.root)) / spec / "meta.json").exists():  # as runner.driving_audio
        names.append(spec)
    if with_base:
        names += [str(n) for n in cell.cfg.run.base_identities]
    return list(dict.fromkeys(names))


def _audio_file(cell: Cell) -> str | None:
    """The cell's driving-audio file as it names it; None when it is driven by an identity's voice."""
    spec = str(cell.cfg.run.audio)
    if spec == "self" or spec in _identities_of(cell, with_base=False):
        return None
    return spec


# --- shipping: the driver's side -----------------------------------------------------------------


def _run_shipped(ray, cells: list[Cell], runs_root: Path, progress: bool, gpus: int, registry: dict) -> list[CellOutcome]:
    """No shared disk: base models first, then the first cell of each fine-tuned model, then the
    cells that share it; each task gets what it needs from the driver and returns what it wrote."""
    say = tqdm.write if progress else _quiet
    task = ray.remote(num_gpus=gpus, num_cpus=1)(shipped_task)
    parcels = Parcels(ray, runs_root)

    def submit(job: str, cell: Cell) -> tuple:
        return task.remote(job, cell, parcels.shipment(cell, job), registry), (job, cell)

    bases = [c for c in _bases_needed(cells, runs_root) if not is_done(runs_root / _base_folder(c))]
    pending = dict(submit("base", c) for c in bases)
    with tqdm(total=len(bases), desc="base models (ray, shipped)", unit="model", disable=not progress or not bases) as bar:
        while pending:
            cell, error = _collect(ray, pending, runs_root)
            say(f"base model of {cell.label}: " + ("ready" if error is None else f"FAILED: {error}"))
            bar.update(1)
    outcomes = [CellOutcome(c, "skipped") for c in cells if is_done(runs_root / cell_folder(c))]
    firsts, later = _waves([c for c in cells if not is_done(runs_root / cell_folder(c))], runs_root)
    pending = dict(submit("cell", c) for c in firsts)
    with tqdm(total=len(cells), initial=len(outcomes), desc="cells (ray, shipped)", unit="cell", disable=not progress) as bar:
        while pending:
            cell, outcome = _collect(ray, pending, runs_root)
            say(f"{cell.label}  ({cell.cell_id}) -> {outcome.status}" + (f": {outcome.error}" if outcome.error else ""))
            outcomes.append(outcome)
            pending.update(submit("cell", c) for c in later.pop(_finetune_folder(cell), []))  # its model is here now
            bar.update(1)
    return _in_order(outcomes, cells)


def _waves(cells: list[Cell], runs_root: Path) -> tuple[list[Cell], dict[str, list[Cell]]]:
    """The cells to start now (one per fine-tuned model not yet trained, and every cell whose
    fine-tuned model is) and, per fine-tuned model, the cells that wait for it: on separate
    nodes two cells would each train it."""
    firsts: list[Cell] = []
    later: dict[str, list[Cell]] = {}
    for cell in cells:
        folder = _finetune_folder(cell)
        if is_done(runs_root / folder):
            firsts.append(cell)
        elif folder in later:
            later[folder].append(cell)
        else:
            later[folder] = []
            firsts.append(cell)
    return firsts, later


def _collect(ray, pending: dict, runs_root: Path) -> tuple[Cell, Any]:
    """The next task to finish (``pending``: task -> (job, cell)), its folders installed into the
    store: its cell and its result (a cell's outcome; a base model's error text, or None). A task
    that failed itself (its node lost, a shipment that would not unpack) is a failed result."""
    done, _ = ray.wait(list(pending), num_returns=1)
    job, cell = pending.pop(done[0])
    try:
        _, result, folders = ray.get(done[0])
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
        return cell, (CellOutcome(cell, "failed", error) if job == "cell" else error)
    for rel, blob in folders:
        install(blob, runs_root / rel)
    return cell, result


class Parcels:
    """The driver's shipments: identity folders, driving-audio files and finished store folders
    put into the object store once each (a cell's many tasks share one copy); an unfinished store
    folder is packed anew each time (it may have moved on since)."""

    def __init__(self, ray, runs_root: Path) -> None:
        self.ray, self.runs_root, self._refs = ray, Path(runs_root), {}

    def _put(self, path: Path, cache: bool = True):
        key = str(path)
        if not cache:
            return self.ray.put(pack(path))
        if key not in self._refs:
            self._refs[key] = self.ray.put(pack(path))
        return self._refs[key]

    def shipment(self, cell: Cell, job: str) -> dict:
        """What a ``job`` ("base" or "cell") of ``cell`` needs: identities by name, the audio
        file (name, packed), the store folders it builds on (path in the store -> packed) and
        the driver's run store and data root (the paths its records name)."""
        from aebench.paths import shared_path

        root = Path(str(cell.cfg.data.root))
        base = _base_folder(cell)
        needs_base = base is not None and not is_done(self.runs_root / base)
        names = [str(n) for n in cell.cfg.run.base_identities] if job == "base" else _identities_of(cell, needs_base)
        folders = [base] if job == "base" else [base, _finetune_folder(cell), cell_folder(cell)]
        audio = _audio_file(cell) if job == "cell" else None
        return {
            "identities": {n: self._put(root / n) for n in names},
            "audio": (audio, self._put(shared_path(audio))) if audio else None,
            "store": {
                rel: self._put(self.runs_root / rel, cache=is_done(self.runs_root / rel))
                for rel in folders
                if rel and (self.runs_root / rel).is_dir()
            },
            "runs_root": str(self.runs_root),
            "data_root": str(root),
        }


def cell_folder(cell: Cell) -> str:
    """The cell's folder in the run store (run_store's layout)."""
    return f"{cell.protocol}/{cell.cell_id}"


def _base_folder(cell: Cell) -> str | None:
    """The cell's base model folder in the run store (:func:`runner.ensure_base`), None for a
    method without one."""
    from aebench.registry import method_class

    return base_folder(cell.cfg) if method_class(cell.method).has_base_model else None


def _finetune_folder(cell: Cell) -> str:
    """The cell's fine-tuned model folder in the run store (:func:`runner.ensure_finetuned`)."""
    return finetune_folder(cell.cfg)


def install(blob: bytes, dest: Path) -> bool:
    """A folder a task sent back, into the store whole: unpacked beside ``dest``, then renamed
    onto it (an unfinished one there is replaced; a finished one is kept, and False returned),
    under the folder's lock so a local run of the same cell waits."""
    dest = Path(dest)
    try:
        with cell_lock(dest):
            if is_done(dest):
                return False
            stamp = secrets.token_hex(4)
            incoming, old = dest.parent / f".{dest.name}.incoming-{stamp}", dest.parent / f".{dest.name}.old-{stamp}"
            try:
                unpack(blob, incoming)
                if dest.exists():
                    dest.rename(old)
                incoming.rename(dest)
            finally:
                shutil.rmtree(incoming, ignore_errors=True)
                shutil.rmtree(old, ignore_errors=True)
            return True
    except OSError as exc:
        raise RuntimeError(
            f"launcher=ray: cannot write {dest} into the run store: {exc.strerror or exc}; "
            "finished cells are kept: fix that (space, permissions), then run the same command again"
        ) from exc


def pack(path: Path) -> bytes:
    """A folder's contents (or one file), as an uncompressed tar in memory (links followed)."""
    path = Path(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", dereference=True) as tar:
        for child in sorted(path.iterdir()) if path.is_dir() else [path]:
            tar.add(child, arcname=child.name)
    return buf.getvalue()


def unpack(blob: bytes, dest: Path) -> None:
    """A :func:`pack` into ``dest`` (created); members leaving ``dest`` are refused (tar's data filter)."""
    Path(dest).mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")


# --- shipping: the task's side -------------------------------------------------------------------


def shipped_task(job: str, cell: Cell, shipment: dict, registry: dict) -> tuple[str, Any, list[tuple[str, bytes]]]:
    """On a node: the shipment unpacked into a temporary folder, the cell (``job="cell"``) or its
    base model (``"base"``) run there; returns the job, its result (outcome; base: error text or
    None) and the store folders it wrote (path in the store, packed), naming the driver's paths."""
    import ray

    with tempfile.TemporaryDirectory(prefix="aebench-ship-") as tmp:
        data, store = Path(tmp) / "data", Path(tmp) / "runs"
        here = {shipment["runs_root"]: str(store), shipment["data_root"]: str(data)}
        for name, ref in shipment["identities"].items():
            unpack(ray.get(ref), data / name)
        audio = None
        if shipment["audio"]:
            spec, ref = shipment["audio"]
            unpack(ray.get(ref), Path(tmp) / "audio")
            audio = next((Path(tmp) / "audio").iterdir())
        arrived = set()
        for rel, ref in shipment["store"].items():
            unpack(ray.get(ref), store / rel)
            rebase(store / rel, here)
            if is_done(store / rel):
                arrived.add(rel)
        local = _rewired(cell, data, audio)
        if job == "base":
            result = _pool_base(local, str(store), registry)
        else:
            outcome = _remote_cell(local, str(store), registry, say=_quiet)
            result = CellOutcome(cell, outcome.status, outcome.error)
        back = {str(store): shipment["runs_root"], str(data): shipment["data_root"]}
        if audio is not None:
            back[str(audio)] = shipment["audio"][0]
        folders = []
        for rel in written_folders(store):
            if rel not in arrived:
                rebase(store / rel, back)
                folders.append((rel, pack(store / rel)))
        return job, result, folders


def _rewired(cell: Cell, data: Path, audio: Path | None) -> Cell:
    """The cell reading its data from ``data`` (and its driving audio from ``audio``); its id,
    and the fine-tune and base keys, stay (they name the data by content, not by path)."""
    cfg: DictConfig = copy.deepcopy(cell.cfg)
    cfg.data.root = str(data)
    if audio is not None:
        cfg.run.audio = str(audio)
    return dataclasses.replace(cell, cfg=cfg)


def written_folders(store: Path) -> list[str]:
    """Every folder two levels down the run store (``<protocol>/<cell>``, ``_base/<...>``,
    ``_finetune/<...>``), as paths in the store; hidden ones (locks, staging) left out."""
    return (
        sorted(
            f"{top.name}/{sub.name}"
            for top in sorted(store.iterdir())
            if top.is_dir() and not top.name.startswith(".")
            for sub in top.iterdir()
            if sub.is_dir() and not sub.name.startswith(".")
        )
        if store.is_dir()
        else []
    )
