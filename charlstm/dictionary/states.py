"""States streamed from a text: what a dictionary is trained and measured on.

`StateStream` reads an id array (a dataset split, usually a memmap) as S parallel streams, each
starting at its own offset and carrying the model's state from step to step, exactly as the model
reads running text (a model of records reads each <eot> from the zero state: charlstm.model,
"Records"). It runs the sampler's hand-fused step (charlstm.sample.stepper.Stepper), so one step of
all S streams is one batched step of the model, and hands back one layer's h or c: [steps, S, H] per
call. Streams wrap around the end of the text. The position and the carried state can be saved and
restored (`state_dict` / `load_state_dict`), so a resumed training run reads the very same states.

Owns: the streams and their bookkeeping. Does not know: dictionaries or files.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from charlstm.errors import CharlstmError
from charlstm.sample.stepper import Stepper
from charlstm.units import check_unit, Unit


class StateStream:
    """S streams over ids [T], giving layer `layer`'s `kind` ("h" or "c") after each step.

    offsets: the S start positions (default: evenly spaced, i * T // S). Edits (StateEdits from
    charlstm.dictionary.steer) act on every step, e.g. a dictionary's reconstruction in place of
    the state (the spliced run of charlstm.dictionary.fidelity).
    """

    def __init__(self, model, ids: np.ndarray, layer: int, kind: str, streams: int = 64,
                 offsets: np.ndarray | None = None, edits=()):
        cfg = model.cfg
        check_unit(Unit(layer, kind, 0), cfg.cell, cfg.num_layers, cfg.hidden_size)
        if kind not in ("h", "c"):
            raise CharlstmError(f"states are h or c, not '{kind}'")
        if len(ids) < 2:
            raise CharlstmError("the text has fewer than 2 characters: no states to read")
        self.ids, self.T, self.S, self.layer, self.kind = ids, len(ids), int(streams), layer, kind
        if self.S < 1:
            raise CharlstmError(f"streams must be at least 1, got {streams}")
        self.pos = (np.arange(self.S, dtype=np.int64) * self.T // self.S) if offsets is None \
            else np.asarray(offsets, dtype=np.int64).copy()
        self.st = Stepper(model, self.S, clamp=tuple(edits))
        self.dev = model.head.weight.device

    @property
    def state(self) -> Tensor:
        """The watched state now: a view [S, H] of the stepper's buffer."""
        return self.st.h[self.layer] if self.kind == "h" else self.st.C[self.layer]

    def read_ids(self, steps: int) -> np.ndarray:
        """The next `steps` ids of every stream, [S, steps] int64 (wrapping around), without moving."""
        cols = (self.pos[:, None] + np.arange(steps)[None, :]) % self.T
        return np.asarray(self.ids[cols.reshape(-1)], dtype=np.int64).reshape(self.S, steps)

    @torch.no_grad()
    def run(self, steps: int, logits: bool = False) -> tuple[Tensor, np.ndarray, Tensor | None]:
        """Advance every stream `steps` steps -> (states [steps, S, H] float32, the ids read
        [S, steps], and with logits=True the next-character log-probabilities [steps, S, V])."""
        ids = self.read_ids(steps)
        cols = torch.from_numpy(ids).to(self.dev)
        out = torch.empty(steps, self.S, self.st.H, dtype=torch.float32, device=self.dev)
        lp = torch.empty(steps, self.S, self.st.V, dtype=torch.float32, device=self.dev) if logits else None
        for t in range(steps):
            lg = self.st.step(cols[:, t].contiguous())
            out[t].copy_(self.state)
            if lp is not None:
                torch.log_softmax(lg.float(), dim=-1, out=lp[t])
        self.pos = (self.pos + steps) % self.T
        return out, ids, lp

    def state_dict(self) -> dict[str, Tensor]:
        """Positions [S] int64 and the model's carried state (h, and c for LSTM-like cells; [L, S, H])."""
        out = {"pos": torch.from_numpy(self.pos.copy())}
        for i, s in enumerate(self.st.get_state()):
            out[f"state{i}"] = s.detach().cpu()
        return out

    def load_state_dict(self, d: dict[str, Tensor]) -> None:
        pos = d["pos"].cpu().numpy().astype(np.int64)
        if pos.shape != (self.S,):
            raise CharlstmError(f"saved streams: {pos.shape[0]} streams, this run reads {self.S}")
        self.pos = pos.copy()
        n = len(self.st.get_state())
        self.st.set_state(tuple(d[f"state{i}"].to(self.dev) for i in range(n)))
