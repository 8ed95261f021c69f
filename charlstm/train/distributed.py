"""Multi-process training support: torchrun environment, process group, and the few collectives
the training loop needs. Everything here is a no-op in a single process.

`torchrun --nproc_per_node N -m charlstm train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; `setup`
then joins the process group (NCCL when training on CUDA, gloo on CPU) and picks cuda:LOCAL_RANK.
Rank 0 is the only one that writes files or prints. The global batch of B streams is split evenly,
B / W rows per rank (charlstm.train.batches), and DDP averages gradients, so W processes compute the same
update as one process with batch B: the learning rate needs no rescaling.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from charlstm.errors import CharlstmError


@dataclass
class DistInfo:
    """This process's place in the job: rank in [0, world_size), and its local (per-node) rank."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """Read torchrun's environment (a single process when WORLD_SIZE is unset or 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise CharlstmError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (they are set by torchrun)") from None
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def check_device(device: torch.device, info: DistInfo) -> torch.device:
    """The device charlstm.runtime.resolve_device chose, refused when several processes cannot use it."""
    if info.enabled and device.type == "mps":
        raise CharlstmError("multi-process training on MPS is not supported; use --device cpu")
    return device


def setup(info: DistInfo, device: torch.device) -> DistInfo:
    """Join the process group when running under torchrun (NCCL on CUDA, gloo otherwise)."""
    if not info.enabled or dist.is_initialized():
        return info
    if not dist.is_available():
        raise CharlstmError("this torch build has no torch.distributed; run a single process")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    info.owns_group = True
    return info


def teardown(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
        info.owns_group = False


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks in place (identity in one process)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def gather_cat(t: torch.Tensor, info: DistInfo, dim: int = 0) -> torch.Tensor:
    """Concatenate every rank's equally shaped `t` along `dim`, in rank order (all ranks get it)."""
    if not info.enabled:
        return t
    parts = [torch.empty_like(t) for _ in range(info.world_size)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()

