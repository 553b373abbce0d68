"""The verified weights store (DESIGN.md): ``aebench.paths.weights_dir()``.

``aebench/weights_manifest.json`` names every official file with its sha256, size, source URL and
licence. A file is verified (sha256) before use; when the manifest knows only a hash
prefix (face-alignment's torch-hub names) or nothing (the wav2vec 2.0 folder), that is
said plainly and only the prefix / loadability is checked.

Loading is always ``torch.load(path, map_location="cpu", weights_only=True)``: a file that
needs a code-running pickle (a whole pickled ``nn.Module``, a custom class) is refused.
The original ``syncnet_v2.model`` is a legacy-format pickle of a *state dict* (the
reference ``SyncNetInstance.loadParameters`` iterates ``loaded_state.items()``), which
``weights_only=True`` reads. If a copy is instead a whole pickled module, it is refused;
convert it once, in an environment you trust, with
``python -c "import torch; torch.save(torch.load('IN', weights_only=False).state_dict(), 'OUT')"``
and pass OUT explicitly (it is then recorded as unofficial, with its sha256).

Explicit user files (``weights={"syncnet": PATH}``) are used as given: their sha256 is
recorded and they are marked ``official`` only when it equals the manifest's.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from aebench.paths import weights_dir

MANIFEST_PATH = Path(__file__).with_name("weights_manifest.json")


class WeightsError(RuntimeError):
    """A weights file that exists but must not be used (wrong hash, unsafe pickle, unreadable)."""


class WeightsMissing(WeightsError):
    """A weights file that is not in the store; ``fix`` is the command that installs it."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.fix = fix_command(name)


@dataclass(frozen=True)
class WeightRecord:
    """Which file a metric used, for the output's ``info``."""

    name: str
    path: str
    sha256: str
    official: bool
    verification: str  # "sha256" | "sha256-prefix" | "none (hash unknown)" | "explicit file"

    def to_json(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def manifest() -> dict[str, dict]:
    return json.loads(MANIFEST_PATH.read_text())


def entry(name: str) -> dict:
    m = manifest()
    if name not in m:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(m))}")
    return m[name]


def store_path(name: str) -> Path:
    return weights_dir() / entry(name)["file"]


def fix_command(name: str) -> str:
    e = entry(name)
    return (
        f"aebench weights add {name} /path/to/{e['file']}  "
        f"(get it from {e['url']}; or `aebench weights fetch {name}` where the internet is reachable)"
    )


def sha256_file(path: Path) -> str:
    """sha256 of a file, or of a folder (sorted relative names and contents)."""
    h = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_FITS: set[tuple[str, str]] = set()  # (name, sha256) of explicit files found to fit their network


def _cached_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(path)
    return _HASH_CACHE[key]


def verify(name: str, path: Path) -> tuple[str, str]:
    """(sha256, how it was verified) for ``path`` as the official ``name``; raises on mismatch."""
    e = entry(name)
    digest = _cached_sha256(Path(path))
    if e.get("sha256"):
        if digest != e["sha256"]:
            raise WeightsError(
                f"{path}: sha256 {digest} does not match the official {name} ({e['sha256']}); "
                f"refusing it. If it is your own file, pass it explicitly (--weights {name}=PATH) "
                f"and it is recorded as unofficial."
            )
        return digest, "sha256"
    prefix = e.get("sha256_prefix")
    if prefix:
        if not digest.startswith(prefix):
            raise WeightsError(f"{path}: sha256 {digest} does not start with the official prefix {prefix} of {name}")
        warnings.warn(f"{name}: only the sha256 prefix {prefix} is known; the full hash is not verified", stacklevel=2)
        return digest, "sha256-prefix"
    warnings.warn(f"{name}: no official sha256 is known; only loadability is checked", stacklevel=2)
    return digest, "none (hash unknown)"


def resolve(name: str, explicit: str | Path | None = None) -> WeightRecord:
    """The file to use for ``name``: an explicit user file, else the verified store copy."""
    e = entry(name)
    if explicit is not None:
        p = Path(explicit)
        if not p.exists():
            raise WeightsError(f"--weights {name}={p}: no such file")
        digest = _cached_sha256(p)
        if (name, digest) not in _FITS:  # before any metric builds its network from it
            try:
                _check_loadable(name, p)
            except WeightsError as exc:
                raise WeightsError(f"--weights {name}: {exc}") from exc
            _FITS.add((name, digest))
        return WeightRecord(name, str(p), digest, official=verified_by_hash(name) and digest == e["sha256"], verification="explicit file")
    p = store_path(name)
    if not p.exists():
        raise WeightsMissing(name, f"{name} weights not found at {p}")
    digest, how = verify(name, p)
    return WeightRecord(name, str(p), digest, official=how == "sha256", verification=how)


def load_state_dict(path: str | Path) -> dict:
    """A tensor state dict through ``torch.load(weights_only=True)``; unsafe pickles are refused."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: refused, it needs a code-running pickle (torch.load weights_only=True failed: "
            f"{str(exc).splitlines()[0]}). If it is a whole pickled model, convert it once where you trust "
            "the file: python -c \"import torch; torch.save(torch.load('IN', weights_only=False)"
            ".state_dict(), 'OUT')\" and pass OUT."
        ) from exc
    except Exception as exc:  # truncated or not a torch file
        raise WeightsError(f"{path}: cannot be read as torch weights ({_first_line(exc)})") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: is not a state dict of tensors (got {type(obj).__name__})")
    return dict(obj)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _check_loadable(name: str, path: Path) -> None:
    """Refuse ``path`` unless it loads as what ``name`` is for (where the manifest names its
    network: that network exactly); nothing else stands in for a hash where none is known."""
    kind = entry(name).get("kind")
    path = Path(path)
    if kind == "torch":
        _check_architecture(name, path, load_state_dict(path))
    elif kind == "hf_folder":
        _check_hf_config(name, path)
        load_hf_model(name, path)
    elif kind == "torchscript":
        import torch

        try:
            torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise WeightsError(f"{path}: not a loadable TorchScript archive ({exc})") from exc


def _check_architecture(name: str, path: Path, state: dict) -> None:
    """Where the manifest names the network a file is for (``arch``: ``module:Class``, with
    ``arch_kwargs``), the state dict must fit it exactly: same keys, same shapes (where the code
    uses only part of the network, ``arch_needs`` is the prefix of the keys that must be there;
    the others may be absent). This is what stands in for a hash where none is known
    (``syncnet_s3fd``), and what keeps a user's file of another network from reaching a metric."""
    import importlib

    e = entry(name)
    if not e.get("arch"):
        return
    module, _, cls = e["arch"].partition(":")
    model = getattr(importlib.import_module(module), cls)(**(e.get("arch_kwargs") or {}))
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    needs = e.get("arch_needs") or ""
    missing = [k for k in want if k.startswith(needs) and k not in state]
    extra = [k for k in state if k not in want]
    shaped = [k for k in want if k in state and tuple(state[k].shape) != want[k]]
    why = "; ".join(
        f"{len(keys)} {what} (e.g. {keys[0]})"
        for keys, what in ((missing, "keys missing"), (extra, "unexpected keys"), (shaped, "of another shape"))
        if keys
    )
    try:
        if not why:
            model.load_state_dict(state, strict=not needs)
    except RuntimeError as exc:
        why = _first_line(exc)
    if why:
        raise WeightsError(f"{path}: is not a state dict of {e['arch']} (the network {name} is for): {why}")


#: the weights file of a Hugging Face model folder, in the order transformers prefers them
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def read_hf_config(folder: Path) -> dict:
    """``config.json`` of a Hugging Face model folder; a WeightsError when there is none."""
    folder = Path(folder)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise WeightsError(f"{folder}: not a Hugging Face model folder (config.json missing)")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{folder / 'config.json'}: not a readable model config ({_first_line(exc)})") from exc
    if not isinstance(config, dict):
        raise WeightsError(f"{folder / 'config.json'}: not a model config (a JSON object)")
    return config


def _check_hf_config(name: str, folder: Path) -> None:
    """The manifest's ``hf_config`` (what the code relies on: model type, sizes, strides) must
    hold in the folder's config, read as transformers reads it (defaults filled in): another
    model's folder is refused before its weights are loaded."""
    want = dict(entry(name).get("hf_config") or {})
    raw = read_hf_config(folder)
    kind = want.pop("model_type", None)
    if kind and raw.get("model_type") != kind:
        raise WeightsError(
            f"{folder}: not a {kind} model (config.json model_type={raw.get('model_type')!r}), so not {name} ({entry(name)['file']})"
        )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise WeightsError(f"{folder / 'config.json'}: not a valid {kind or name} config ({_first_line(exc)})") from exc
    got = {k: getattr(config, k, None) for k in want}
    got = {k: list(v) if isinstance(v, tuple) else v for k, v in got.items()}
    wrong = [f"{k}={got[k]!r} (expected {v!r})" for k, v in want.items() if got[k] != v]
    if wrong:
        raise WeightsError(f"{folder}: not the {name} model {entry(name)['file']}: its config has {', '.join(wrong)}")


def load_hf_model(name: str, folder: Path):
    """The manifest's ``arch`` (a transformers class) from the Hugging Face folder ``folder``,
    on the CPU in eval mode, refused (WeightsError) unless it is that model type and every weight
    comes from the folder: transformers would otherwise fill missing weights with random values
    and only log it (the manifest's ``hf_may_miss`` lists those its checkpoints lack by design)."""
    import importlib

    e = entry(name)
    folder = Path(folder)
    config = read_hf_config(folder)
    kind = (e.get("hf_config") or {}).get("model_type")
    if kind and config.get("model_type") != kind:
        raise WeightsError(f"{folder}: not a {kind} model (config.json model_type={config.get('model_type')!r})")
    if not any((folder / f).is_file() for f in HF_WEIGHT_FILES):
        raise WeightsError(f"{folder}: no weights file ({' or '.join(HF_WEIGHT_FILES)})")
    module, _, cls = e["arch"].partition(":")
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its list of missing weights is judged below, not printed
    try:
        model, info = getattr(importlib.import_module(module), cls).from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True
        )
    except Exception as exc:  # a truncated or foreign weights file, a config transformers rejects
        raise WeightsError(f"{folder}: cannot be loaded as {e['arch']} ({_first_line(exc)})") from exc
    finally:
        hf_logging.set_verbosity(level)
    missing = sorted(set(info.get("missing_keys") or ()) - set(e.get("hf_may_miss") or ()))
    shaped = [str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys") or ()]
    why = "; ".join(
        f"{len(keys)} {what} (e.g. {keys[0]})"
        for keys, what in ((missing, "weights missing"), (shaped, "weights of another shape"))
        if keys
    )
    if why:
        raise WeightsError(f"{folder}: the weights do not fit {e['arch']}: {why}")
    return model.eval()


def verified_by_hash(name: str) -> bool:
    """True when the manifest knows ``name``'s full sha256 (a prefix or nothing is not enough)."""
    return bool(entry(name).get("sha256"))


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to https: weights never travel over plain HTTP."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not str(newurl).lower().startswith("https://"):
            raise WeightsError(f"refusing the redirect of {req.full_url} to {newurl}: weights are fetched over https only")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def add(name: str, src: str | Path) -> Path:
    """Verify ``src`` as the official ``name`` and copy it into the store (atomically)."""
    src = Path(src)
    if not src.exists():
        raise WeightsError(f"{src}: no such file or folder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verify(name, src)
    _check_loadable(name, src)
    dst = store_path(name)
    tmp = dst.with_name(dst.name + ".partial")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, tmp)
        if dst.is_dir():
            shutil.rmtree(dst)
        tmp.replace(dst)
    except OSError as exc:  # a read-only store, a full disk, AEBENCH_WEIGHTS naming a file
        try:
            _remove(tmp)
        except OSError:
            pass
        at = f", at {exc.filename}" if exc.filename else ""
        raise WeightsError(
            f"{weights_dir()}: the weights store cannot be written ({exc.strerror or exc}{at}); {name} was not stored"
        ) from exc
    return dst


def _remove(path: Path) -> None:
    """Delete a file or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def fetch(name: str, timeout: float = 20.0, allow_unverified: bool = False) -> Path:
    """Download ``name`` from its source URL (https only, no downgrade on redirects), verify,
    store. A file whose full sha256 is unknown is refused unless ``allow_unverified`` (it is then
    stored and reported unverified). Fails clearly without internet."""
    import urllib.error
    import urllib.request

    e = entry(name)
    if not str(e["url"]).lower().startswith("https://"):
        raise WeightsError(f"{name}: the manifest's URL {e['url']} is not https; refusing to download weights over plain HTTP")
    if not verified_by_hash(name) and not allow_unverified and e.get("kind") != "hf_folder":
        raise WeightsError(
            f"{name}: no full sha256 is known, so a download cannot be verified; pass --allow-unverified "
            f"to store it anyway (every table then marks its numbers as unverified), or add a file you "
            f"trust: aebench weights add {name} FILE"
        )
    if e.get("kind") == "hf_folder":
        raise WeightsError(
            f"{name} is a Hugging Face folder; download it with `huggingface-cli download "
            f"facebook/{e['file']} --local-dir DIR` where the internet is reachable, then: aebench weights add {name} DIR"
        )
    dst = store_path(name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".download")
    try:
        opener = urllib.request.build_opener(_NoDowngrade)
        with opener.open(e["url"], timeout=timeout) as r, open(tmp, "wb") as fh:
            shutil.copyfileobj(r, fh, 1 << 20)
    except WeightsError:
        tmp.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsError(
            f"cannot download {name} from {e['url']} ({exc}). Manual alternative: download "
            f"{e['file']} on a machine with internet, copy it here, then: aebench weights add {name} FILE"
        ) from exc
    try:
        return add(name, tmp)
    finally:
        tmp.unlink(missing_ok=True)


def status() -> list[dict]:
    """One row per manifest entry: present, verified, path, fix command."""
    rows = []
    for name, e in manifest().items():
        p = store_path(name)
        known = "known" if e.get("sha256") else f"prefix {e['sha256_prefix']} only" if e.get("sha256_prefix") else "UNKNOWN"
        row = {"name": name, "present": p.exists(), "sha256": known, "verified": "-", "path": str(p), "fix": ""}
        if not p.exists():
            row["fix"] = f"aebench weights add {name} FILE | aebench weights fetch {name}"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _, how = verify(name, p)
                row["verified"] = {
                    "sha256": "yes (sha256)",
                    "sha256-prefix": "prefix only (full sha256 unknown)",
                    "none (hash unknown)": "no (sha256 unknown)",
                }[how]
            except WeightsError as exc:
                row["verified"] = "MISMATCH"
                row["fix"] = str(exc)
        rows.append(row)
    return rows
