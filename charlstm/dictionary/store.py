"""Dictionaries on disk, in the run folder: RUN/dictionaries/<name>/ (docs/formats.md, "Dictionaries").

    dictionary.safetensors   the tensors (W_enc, b_enc, W_dec, b_dec, center, scale), checksummed
    dictionary.json          settings, how it was trained, the weights it was trained on, fidelity
    last.safetensors         the training state (charlstm.dictionary.train), for --resume

A dictionary belongs to the weights it was trained on: dictionary.json keeps `model_sha256`, the
checksum of the model's tensors, and a dictionary is refused for any other weights (a run trained
further since, or --checkpoint last) with an error saying so.

Owns: the folder layout, reading and writing both files, the names (`dict` = the run's only
dictionary, `dict/NAME`), resolving a spec (DictUnit, DictClamp of charlstm.units) into what acts on
a model, and the activations of a dictionary over a text (`text_activations`, for the atlas and any
ranking). Does not know: training or measuring.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from charlstm.checkpoint import load_tensors, save_tensors, tensors_sha256
from charlstm.dictionary.model import Dictionary
from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_json, check_name
from charlstm.units import DictClamp, DictUnit

FORMAT = "charlstm-dictionary"
VERSION = 1
FOLDER = "dictionaries"
WEIGHTS = "dictionary.safetensors"
INFO = "dictionary.json"
LAST = "last.safetensors"


def folder(run: str | os.PathLike, name: str) -> Path:
    """RUN/dictionaries/<name> (the name checked like a run name)."""
    return Path(run) / FOLDER / check_name(name, "dictionary")


def names(run: str | os.PathLike) -> list[str]:
    """The dictionaries of a run that have weights, sorted."""
    root = Path(run) / FOLDER
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / WEIGHTS).exists())


def pick(run: str | os.PathLike, name: str | None) -> str:
    """The name meant: `name` if that dictionary exists, else (None) the run's only dictionary."""
    have = names(run)
    if name is not None:
        if name not in have:
            raise CharlstmError(f"run {Path(run).name} has no dictionary '{name}'"
                                + (f"; it has {', '.join(have)}" if have else "; train one with `charlstm dictionary train`"))
        return name
    if not have:
        raise CharlstmError(f"run {Path(run).name} has no dictionary; train one with `charlstm dictionary train "
                            f"{Path(run).name}`")
    if len(have) > 1:
        raise CharlstmError(f"run {Path(run).name} has {len(have)} dictionaries ({', '.join(have)}); name one, "
                            f"e.g. dict/{have[0]}:12 or --name {have[0]}")
    return have[0]


def model_sha256(model: torch.nn.Module) -> str:
    """The checksum of a model's weights: the `sha256` its model.safetensors carries."""
    return tensors_sha256(dict(model.state_dict()))


def save(where: Path, d: Dictionary, info: dict[str, Any]) -> None:
    """Write dictionary.safetensors and dictionary.json (atomically each)."""
    info = {"format": FORMAT, "version": VERSION, "name": d.name, **d.settings(), **info}
    save_tensors(where / WEIGHTS, d.tensors(), {"format": FORMAT, "version": VERSION, "settings": d.settings(),
                                                 "model_sha256": info.get("model_sha256")})
    atomic_write_json(where / INFO, info)


def read_info(where: Path) -> dict[str, Any]:
    """dictionary.json of a dictionary folder, checked to be one."""
    try:
        info = json.loads((where / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CharlstmError(f"cannot read {where / INFO} ({e})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CharlstmError(f"{where / INFO} is not a charlstm dictionary (format is not '{FORMAT}')")
    return info


def update_info(where: Path, **changes: Any) -> dict[str, Any]:
    """Rewrite dictionary.json with some keys changed (e.g. fidelity measured afresh)."""
    info = {**read_info(where), **changes}
    atomic_write_json(where / INFO, info)
    return info


def load(run: str | os.PathLike, name: str | None = None, model: torch.nn.Module | None = None,
         device: str | torch.device = "cpu") -> tuple[Dictionary, dict[str, Any]]:
    """A run's dictionary (its only one when name is None) -> (Dictionary in eval mode, dictionary.json).
    With `model`, the dictionary must have been trained on exactly these weights."""
    name = pick(run, name)
    where = folder(run, name)
    info = read_info(where)
    tensors, meta = load_tensors(where / WEIGHTS, device=device)
    d = Dictionary.from_tensors(tensors, meta.get("settings") or info, name=name).to(device)
    if model is not None:
        check_model(d, info, model)
    return d, info


def check_model(d: Dictionary, info: dict[str, Any], model: torch.nn.Module) -> None:
    """Raise CharlstmError unless the dictionary fits the model: the layer exists, the widths agree,
    and it was trained on these very weights."""
    cfg = model.cfg
    if d.layer >= cfg.num_layers or d.hidden != cfg.hidden_size:
        raise CharlstmError(f"{d.key} reads layer{d.layer}.{d.kind} of {d.hidden} units; the model has "
                            f"{cfg.num_layers} layer(s) of {cfg.hidden_size}")
    want = info.get("model_sha256")
    if want and want != model_sha256(model):
        raise CharlstmError(f"{d.key} was trained on other weights than these (the run was trained further, or "
                            f"another --checkpoint was loaded); retrain it: charlstm dictionary train RUN --name {d.name} "
                            f"--force")


# ----------------------------------------------------------------------------- resolving specs
@dataclass
class FeatureColumn:
    """One dictionary feature as a column of a trace: `column(states [n, H]) -> activations [n]` of
    layer `layer`'s `kind` (what `charlstm trace --show dict:12` prints). name: "dict/NAME:12"."""

    dictionary: Dictionary
    feature: int

    @property
    def layer(self) -> int:
        return self.dictionary.layer

    @property
    def kind(self) -> str:
        return self.dictionary.kind

    @property
    def size(self) -> int:
        return self.dictionary.hidden

    @property
    def name(self) -> str:
        return f"{self.dictionary.key}:{self.feature}"

    def column(self, states: np.ndarray) -> np.ndarray:
        vals, idx = self.dictionary.codes(states)
        return (vals * (idx == self.feature)).sum(1).astype(np.float32)

    def __str__(self) -> str:
        return self.name


def _check_feature(d: Dictionary, f: int, spec: Any) -> None:
    if not 0 <= f < d.size:
        raise CharlstmError(f"'{spec}': {d.key} has features 0..{d.size - 1}")


def resolve(run: str | os.PathLike, spec: DictUnit | DictClamp, model: torch.nn.Module):
    """A dictionary spec -> FeatureColumn (DictUnit) or charlstm.dictionary.steer.FeatureClamp
    (DictClamp), with the dictionary checked against the model's weights."""
    from charlstm.dictionary.steer import FeatureClamp

    d, _ = load(run, spec.dictionary, model=model, device=model.head.weight.device)
    _check_feature(d, spec.feature, spec)
    if isinstance(spec, DictClamp):
        return FeatureClamp(d, spec.feature, spec.value)
    return FeatureColumn(d, spec.feature)


def load_all(run: str | os.PathLike, model: torch.nn.Module, which: str | None = "all") -> list[Dictionary]:
    """The run's dictionaries that fit the model: which = "all", "none", or a comma-separated list of
    names. With "all", dictionaries trained on other weights are left out silently."""
    if which in (None, "none"):
        return []
    out = []
    wanted = names(run) if which == "all" else [w.strip() for w in which.split(",") if w.strip()]
    for n in wanted:
        try:
            d, _ = load(run, n, model=model, device=model.head.weight.device)
        except CharlstmError:
            if which == "all":
                continue
            raise
        out.append(d)
    return out


def text_activations(model: torch.nn.Module, vocab, d: Dictionary, ids: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Every feature's activation over a text: ids [T] -> float32 [T, F], row t after reading
    character t (the trace's rule: charlstm.trace). What the atlas ranks like units."""
    from charlstm.trace import trace_ids

    tr = trace_ids(model, vocab, ids, layers=[d.layer], kinds=[d.kind], chunk=chunk)
    return d.activations(tr.arrays[f"layer{d.layer}.{d.kind}"])
