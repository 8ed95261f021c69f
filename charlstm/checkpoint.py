"""Tensors on disk without pickle: checksummed safetensors files, and loading a run's model.

Owns: writing a set of tensors (atomically, through charlstm.fileio) as a safetensors file whose
metadata carries JSON values and a sha256 over all tensor bytes, reading one back with the checksum
verified, and `load_model` (a run's config, vocabulary and weights -> a CharRNN in eval mode on any
device). Does not know: what a run folder is laid out like (charlstm.runs) or how training fills
last.safetensors (charlstm.train.state). See docs/formats.md ("Runs").
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from charlstm.config import ModelConfig
from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_bytes
from charlstm.model import CharRNN
from charlstm.runs import BEST, LAST, TOKENIZER, open_run
from charlstm.vocab import Vocab


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


def load_model(run: str | os.PathLike, checkpoint: str = "best", device: str | torch.device = "cpu"):
    """Load a run's model for inference -> (CharRNN in eval mode on device, Vocab, config dict).

    checkpoint: "best" (model.safetensors), "last" (weights inside last.safetensors) or a file path.
    Weights saved on any device load on any other (tensors are stored on the CPU).
    """
    path, cfg = open_run(run)
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
    vocab = Vocab.load(path / TOKENIZER, owner="run")
    cfg["checkpoint_meta"] = meta
    cfg["checkpoint_file"] = str(f)
    return model, vocab, cfg


def save_model(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any] | None = None) -> None:
    """Save a model's weights (state_dict) as a checksummed safetensors file, atomically."""
    save_tensors(path, dict(model.state_dict()), meta)
