"""Everything a run needs to continue exactly, as tensors + JSON (never pickle): last.safetensors.

`last.safetensors` holds the weights (`model.*`), the AdamW state flattened to tensors
(`optim.<param index>.<name>`, e.g. `optim.3.exp_avg`), the carried hidden state of all B training
streams (`state.0` = h, `state.1` = c, each [L, B, H] float32), and the torch RNG states of every
rank (`rng.torch` [W, n] uint8, `rng.cuda` [W, m] on CUDA). Its metadata holds, as JSON, the
trainer state (step, epoch, chunk = data position, lr scale, best val bpc, elapsed time, Python and
numpy RNG states) under "trainer" and the optimizer's param groups and non-tensor values under
"optim". `Snapshot` is the same content kept in memory, for rolling back after a NaN.

Owns: that file's layout (`write_last`, `read_last`), the optimizer and RNG state as tensors, the
compatibility check of a resume, and the in-memory snapshot. Does not know: the training loop's
schedule or data (it stores the position the loop hands it).
"""
from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from charlstm.checkpoint import load_tensors, save_tensors
from charlstm.errors import CharlstmError

LAST_FORMAT = "charlstm-last"
_OPTION = {"num_layers": "layers", "hidden_size": "hidden", "embed_dim": "embed"}


def check_compatible(saved: dict[str, Any], model_cfg: Any, train_cfg: Any, dataset_meta: dict[str, Any]) -> None:
    """Refuse to resume a run (config.json content `saved`) with a different model, batch size,
    seq len or training split: the saved weights, stream layout and data position would not fit."""
    sm = saved.get("model", {})
    for k, v in dataclasses.asdict(model_cfg).items():
        if sm.get(k) != v:
            raise CharlstmError(f"cannot resume: the run was trained with {_OPTION.get(k, k).replace('_', '-')} "
                                f"{sm.get(k)!r}, not {v!r}; resume with the run's own model settings or start a new run")
    st = saved.get("train", {})
    for k in ("batch_size", "seq_len"):
        if st.get(k) != getattr(train_cfg, k):
            raise CharlstmError(f"cannot resume: the run was trained with {k.replace('_', '-')} {st.get(k)}, not "
                                f"{getattr(train_cfg, k)} (the data position depends on it)")
    want = ((saved.get("dataset") or {}).get("meta", {}).get("splits", {}).get("train") or {}).get("sha256")
    if want and want != dataset_meta["splits"]["train"]["sha256"]:
        raise CharlstmError(f"cannot resume: dataset '{dataset_meta.get('name')}' is not the one this run was "
                            "trained on (its training split changed)")


# ----------------------------------------------------------------------------- optimizer
def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """opt.state_dict() -> ({"optim.<i>.<name>": tensor}, {"param_groups": [...], "scalars": {...}})."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Inverse of optimizer_to_tensors (tensors may hold other keys; only `optim.*` are read)."""
    state: dict[int, dict[str, Any]] = defaultdict(dict)
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state[int(idx)][name] = v
    for k, v in meta.get("scalars", {}).items():
        idx, name = k.split(".", 1)
        state[int(idx)][name] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    # Implementation switches belong to this device, not to the one that saved the state (a fused
    # CUDA AdamW resumed on a CPU, say).
    for g, cur in zip(groups, opt.param_groups):
        for k in ("fused", "foreach", "capturable", "differentiable"):
            if k in cur:
                g[k] = cur[k]
    opt.load_state_dict({"state": dict(state), "param_groups": groups})


# ----------------------------------------------------------------------------- RNG
def torch_rng(device: torch.device) -> tuple[Tensor, Tensor | None]:
    """(CPU generator state [n] uint8, CUDA generator state of `device` or None)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def set_torch_rng(cpu: Tensor, cuda: Tensor | None, device: torch.device) -> None:
    # clone: a row of the saved [W, n] tensor is a view with an offset, which set_rng_state
    # mishandles (it segfaulted in torch 2.13 for row 1)
    torch.set_rng_state(cpu.cpu().to(torch.uint8).clone())
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda.cpu().to(torch.uint8).clone(), device)


def host_rng() -> dict[str, Any]:
    """Python's and numpy's global RNG states as JSON-able lists."""
    v, st, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [v, list(st), gauss], "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def set_host_rng(d: dict[str, Any]) -> None:
    if "python" in d:
        v, st, gauss = d["python"]
        random.setstate((v, tuple(st), gauss))
    if "numpy" in d:
        name, keys, pos, has_gauss, cached = d["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# ----------------------------------------------------------------------------- in-memory snapshot
class Snapshot:
    """A copy of the mutable training state at a known-good step, for rolling back after a NaN.

    Holds clones (on the training device) of the weights, optimizer state and carried state, the
    torch RNG, and the loop's position dict. Taken every log interval, so a rollback loses at most
    log_every steps.
    """

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer, state: tuple[Tensor, ...],
                 position: dict[str, Any], device: torch.device):
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        sd = opt.state_dict()
        self.optim = {"state": {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in st.items()}
                                for i, st in sd["state"].items()},
                      "param_groups": [dict(g) for g in sd["param_groups"]]}
        self.state = tuple(s.detach().clone() for s in state)
        self.position = dict(position)
        self.rng = torch_rng(device)
        self.device = device

    def restore(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[tuple[Tensor, ...], dict[str, Any]]:
        """Put weights, optimizer state and RNG back -> (carried state, position dict)."""
        model.load_state_dict(self.weights)
        opt.load_state_dict({"state": {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in st.items()}
                                       for i, st in self.optim["state"].items()},
                             "param_groups": [dict(g) for g in self.optim["param_groups"]]})
        set_torch_rng(self.rng[0], self.rng[1], self.device)
        return tuple(s.clone() for s in self.state), dict(self.position)


# ----------------------------------------------------------------------------- last.safetensors
@dataclasses.dataclass
class Last:
    """What `read_last` returns: tensors (model.*, optim.*, state.*, rng.*) on the CPU, the trainer
    dict (position, bookkeeping) and the optimizer's non-tensor state."""

    tensors: dict[str, Tensor]
    trainer: dict[str, Any]
    optim: dict[str, Any]

    def model_state(self) -> dict[str, Tensor]:
        return {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")}

    def optim_tensors(self, device: torch.device) -> dict[str, Tensor]:
        return {k: v.to(device) for k, v in self.tensors.items() if k.startswith("optim.")}

    def carried(self, n: int) -> list[Tensor]:
        """The carried state tensors state.0 .. state.{n-1}, each [L, B, H] (all rows, all ranks)."""
        return [self.tensors[f"state.{i}"] for i in range(n)]


def write_last(path, model: torch.nn.Module, opt: torch.optim.Optimizer, carried: list[Tensor], rng_torch: Tensor,
               rng_cuda: Tensor | None, trainer: dict[str, Any], step: int, val_bpc: float | None) -> None:
    """Write last.safetensors: weights, optimizer, the carried state of every row [L, B, H], the
    RNG states of every rank [W, n], and the trainer dict (JSON metadata)."""
    otensors, ometa = optimizer_to_tensors(opt)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(otensors)
    tensors.update({f"state.{i}": s for i, s in enumerate(carried)})
    tensors["rng.torch"] = rng_torch
    if rng_cuda is not None:
        tensors["rng.cuda"] = rng_cuda
    save_tensors(path, tensors, {"format": LAST_FORMAT, "step": step, "val_bpc": val_bpc,
                                 "trainer": {**trainer, "host_rng": host_rng()}, "optim": ometa})


def read_last(path) -> Last:
    """Read last.safetensors (checksum verified); a file without trainer state is refused."""
    tensors, meta = load_tensors(path, device="cpu")
    tr = meta.get("trainer") or {}
    if meta.get("format") != LAST_FORMAT or not tr:
        raise CharlstmError(f"{path} has no trainer state; it cannot be resumed")
    return Last(tensors, tr, meta.get("optim") or {})
