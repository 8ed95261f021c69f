"""Saving and loading runs atomically, without pickle.

Every file is written to a temporary file in the same folder, fsynced, then renamed over the
target, so a process killed at any instant leaves the previous complete file. Tensors go in
safetensors files whose metadata carries a sha256 over all tensor bytes, checked on load; anything
else is JSON. See docs/formats.md ("Runs").
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from charlstm.config import ModelConfig
from charlstm.errors import CharlstmError
from charlstm.paths import resolve_run
from charlstm.vocab import Vocab

RUN_FORMAT = "charlstm-run"
BEST = "model.safetensors"
LAST = "last.safetensors"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path atomically (temp file in the same folder, fsync, rename, fsync folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes it private; run files are ordinary files
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def tensors_sha256(tensors: dict[str, Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and raw bytes of all tensors, in sorted key order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        # view as bytes (bf16 has no numpy dtype); reshape first because a 0-d tensor cannot be viewed
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: dict[str, Tensor], meta: dict[str, Any] | None = None) -> None:
    """Atomically write a safetensors file; metadata values are JSON-encoded, plus a 'sha256'."""
    from safetensors.torch import save

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    md = {k: json.dumps(v) for k, v in (meta or {}).items()}
    md["sha256"] = tensors_sha256(cpu)
    atomic_write_bytes(path, save(cpu, metadata=md))


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a safetensors file written by save_tensors, verifying its checksum.

    Returns (tensors on `device`, metadata with JSON values decoded). Raises CharlstmError for a
    missing, truncated or tampered file.
    """
    from safetensors import safe_open
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
        tensors = load(data)
        with safe_open(str(path), framework="pt") as f:
            raw_md = f.metadata() or {}
    except FileNotFoundError:
        raise CharlstmError(f"checkpoint file {path} is missing") from None
    except Exception as e:  # safetensors raises its own error types for malformed files
        raise CharlstmError(f"checkpoint file {path} is truncated or corrupted ({e}); retrain or use another checkpoint") from None
    want = raw_md.get("sha256")
    if want is None or tensors_sha256(tensors) != want:
        raise CharlstmError(f"checkpoint file {path} does not match its checksum (tampered or corrupted); retrain or use another checkpoint")
    md = {}
    for k, v in raw_md.items():
        if k == "sha256":
            continue
        try:
            md[k] = json.loads(v)
        except ValueError:
            md[k] = v
    return {k: v.to(device) for k, v in tensors.items()}, md


def read_run_config(run: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """Resolve a run name/path and read its config.json -> (run folder, config dict)."""
    path = resolve_run(run)
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CharlstmError(f"cannot read {path / 'config.json'} ({e})") from None
    if cfg.get("format") != RUN_FORMAT:
        raise CharlstmError(f"{path} is not a charlstm run (config.json format is not '{RUN_FORMAT}')")
    return path, cfg


def load_model(run: str | os.PathLike, checkpoint: str = "best", device: str | torch.device = "cpu"):
    """Load a run's model for inference -> (CharRNN in eval mode on device, Vocab, config dict).

    checkpoint: "best" (model.safetensors), "last" (weights inside last.safetensors) or a file path.
    Weights saved on any device load on any other (tensors are stored on the CPU).
    """
    from charlstm.model import CharRNN

    path, cfg = read_run_config(run)
    if checkpoint == "best":
        f = path / BEST
        if not f.exists() and (path / LAST).exists():
            f = path / LAST  # no evaluation has happened yet
    elif checkpoint == "last":
        f = path / LAST
    else:
        f = Path(checkpoint)
    tensors, meta = load_tensors(f, device=device)
    if any(k.startswith("model.") for k in tensors):
        tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    mcfg = ModelConfig(**cfg["model"])
    model = CharRNN(mcfg)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise CharlstmError(f"weights in {f} do not fit the model in {path / 'config.json'}: {str(e).splitlines()[0]}") from None
    model.to(device).eval()
    tok = path / "tokenizer.json"
    vocab = Vocab.load(tok)
    cfg["checkpoint_meta"] = meta
    cfg["checkpoint_file"] = str(f)
    return model, vocab, cfg


def write_run_config(path: str | os.PathLike, model_cfg: ModelConfig, train_cfg: Any,
                     dataset: dict[str, Any], vocab: Vocab) -> None:
    """Write config.json and tokenizer.json of a run folder (atomically each).

    dataset: {"name": ..., "path": ..., "meta": dataset meta.json content}.
    """
    import dataclasses

    path = Path(path)
    cfg = {"format": RUN_FORMAT, "version": 1, "model": dataclasses.asdict(model_cfg),
           "train": dataclasses.asdict(train_cfg) if dataclasses.is_dataclass(train_cfg) else dict(train_cfg or {}),
           "dataset": dataset}
    atomic_write_json(path / "config.json", cfg)
    atomic_write_bytes(path / "tokenizer.json", vocab.to_json().encode("utf-8"))


def save_model(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any] | None = None) -> None:
    """Save a model's weights (state_dict) as a checksummed safetensors file, atomically."""
    save_tensors(path, dict(model.state_dict()), meta)
