"""`charlstm export RUN --onnx model.onnx`: the model as one step in ONNX, to run wherever ONNX runs.

The graph is one step of the whole model for a batch of N rows:

    lstm, peephole:  (ids [N] int64, h [L, N, H], c [L, N, H]) -> (logits [N, V], h_out, c_out)
    gru, rnn:        (ids [N] int64, h [L, N, H])               -> (logits [N, V], h_out)

with the explicit cells of charlstm.cells on the model's own float32 weights (exported through
PyTorch's TorchScript-based ONNX exporter, opset 17). A model of records zeroes a row's state
inside the step when that row reads <eot> (charlstm.model, "Records"), so the caller's part of the
rule is only the start: feed <eot> first, from the zero state, then the text (docs/formats.md,
"ONNX"). The vocabulary and the rules travel in the file's metadata (`charlstm.*` properties).

Needs the optional packages onnx and onnxruntime (`pip install 'charlstm[export]'`); without them
a CharlstmError says so. Owns: the step module, the export and `check_onnx` (onnxruntime against
the PyTorch model). Does not know: runs on disk or the command line.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_bytes
from charlstm.sample.loop import start_id
from charlstm.vocab import Vocab

OPSET = 17
FORMAT = "charlstm-onnx-step"


def require_onnx() -> tuple:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise CharlstmError("--onnx needs the optional packages onnx and onnxruntime: "
                            "pip install 'charlstm[export]'") from None
    return onnx, onnxruntime


class StepModule(nn.Module):
    """One step of a CharRNN on its own weights (a copy): forward(ids [N], h [L, N, H][, c]) ->
    (logits [N, V], h'[, c']). A row reading the model's reset id starts from the zero state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        cfg = model.cfg
        self.cell, self.num_layers, self.reset_id = cfg.cell, cfg.num_layers, cfg.reset_id
        self.embed = nn.Embedding.from_pretrained(model.embed.weight.detach().float().clone())
        self.layers = nn.ModuleList()
        for layer in range(cfg.num_layers):
            m = nn.Module()
            for name, t in model.layer_params(layer).items():
                m.register_buffer(name, t.detach().float().clone())
            self.layers.append(m)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        self.head.load_state_dict({k: v.detach().float() for k, v in model.head.state_dict().items()})
        self.eval()

    def forward(self, ids: Tensor, h: Tensor, c: Tensor | None = None):
        if self.reset_id is not None:
            keep = (ids != self.reset_id).to(h.dtype)[None, :, None]  # [1, N, 1]: 0 where a row resets
            h = h * keep
            c = c * keep if c is not None else None
        x = self.embed(ids)
        hs, cs = [], []
        for layer, p in enumerate(self.layers):
            params = {n: getattr(p, n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "peephole")
                      if hasattr(p, n)}
            state = (h[layer], c[layer]) if c is not None else (h[layer],)
            r = cells.step(self.cell, x, state, params)
            x = r["h"]
            hs.append(r["h"])
            if c is not None:
                cs.append(r["c"])
        logits = self.head(x)
        if c is not None:
            return logits, torch.stack(hs), torch.stack(cs)
        return logits, torch.stack(hs)


def _names(cell: str) -> tuple[list[str], list[str]]:
    if cells.state_size(cell) == 2:
        return ["ids", "h", "c"], ["logits", "h_out", "c_out"]
    return ["ids", "h"], ["logits", "h_out"]


def metadata(model: nn.Module, vocab: Vocab) -> dict[str, str]:
    """The `charlstm.*` metadata properties of the file (all strings)."""
    cfg = model.cfg
    inputs, outputs = _names(cfg.cell)
    none = lambda v: "" if v is None else str(v)  # noqa: E731
    return {"charlstm.format": FORMAT, "charlstm.version": "1", "charlstm.cell": cfg.cell,
            "charlstm.num_layers": str(cfg.num_layers), "charlstm.hidden_size": str(cfg.hidden_size),
            "charlstm.vocab_size": str(cfg.vocab_size), "charlstm.units": vocab.units,
            "charlstm.reset_id": none(cfg.reset_id), "charlstm.eot_id": none(vocab.eot_id),
            "charlstm.unk_id": none(vocab.unk_id), "charlstm.start_id": str(start_id(vocab)),
            "charlstm.inputs": ",".join(inputs), "charlstm.outputs": ",".join(outputs),
            "charlstm.tokenizer": vocab.to_json()}


def onnx_bytes(model: nn.Module, vocab: Vocab) -> bytes:
    """The ONNX file's content for a model and its vocabulary."""
    onnx, _ = require_onnx()
    if vocab.size != model.cfg.vocab_size:
        raise CharlstmError(f"vocabulary of {vocab.size} symbols does not fit the model ({model.cfg.vocab_size})")
    step = StepModule(model)
    cfg = model.cfg
    L, H = cfg.num_layers, cfg.hidden_size
    args = (torch.zeros(2, dtype=torch.long),) + tuple(torch.zeros(L, 2, H) for _ in range(cells.state_size(cfg.cell)))
    inputs, outputs = _names(cfg.cell)
    axes = {"ids": {0: "batch"}, "logits": {0: "batch"}}
    axes.update({n: {1: "batch"} for n in inputs[1:] + outputs[1:]})
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its successor
        torch.onnx.export(step, args, buf, dynamo=False, opset_version=OPSET, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes)
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in metadata(model, vocab).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = (f"charlstm {cfg.cell} {L}x{H} step: ({', '.join(inputs)}) -> ({', '.join(outputs)}); "
                        "docs/formats.md, 'ONNX'")
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


@dataclass
class OnnxCheck:
    """onnxruntime against PyTorch over `steps` steps of `rows` rows: the largest |logit difference|
    and |state difference|."""

    steps: int
    rows: int
    max_logit_diff: float
    max_state_diff: float


def check_onnx(path: str | os.PathLike, model: nn.Module, steps: int = 64, rows: int = 2, seed: int = 0) -> OnnxCheck:
    """Run the exported step in onnxruntime and the model in PyTorch (model.read, which carries the
    records rule) on the same random ids, <eot> included when the model has a reset id, with the
    state carried from step to step; returns the largest differences."""
    _, ort = require_onnx()
    cfg = model.cfg
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg.vocab_size, size=(rows, steps))
    if cfg.reset_id is not None:
        ids[:, 0] = cfg.reset_id
        ids[0, steps // 2] = cfg.reset_id
    model = model.float().eval()
    state = model.init_state(rows, device="cpu")
    names = _names(cfg.cell)[0]
    feed_state = [s.numpy() for s in state]
    worst_logit = worst_state = 0.0
    with torch.no_grad():
        for t in range(steps):
            x = torch.from_numpy(ids[:, t:t + 1]).long()
            logits, state = model.read(x, state)
            got = sess.run(None, dict(zip(names, [ids[:, t].astype(np.int64), *feed_state])))
            worst_logit = max(worst_logit, float(np.abs(got[0] - logits[:, 0].numpy()).max()))
            worst_state = max(worst_state, max(float(np.abs(g - s.numpy()).max()) for g, s in zip(got[1:], state)))
            feed_state = got[1:]
    return OnnxCheck(steps, rows, worst_logit, worst_state)


def export_onnx(path: str | os.PathLike, model: nn.Module, vocab: Vocab) -> Path:
    """Write the model's ONNX step to path atomically; returns the path."""
    path = Path(path)
    atomic_write_bytes(path, onnx_bytes(model, vocab))
    return path
