"""`charlstm export RUN --html demo.html`: one self-contained page that runs the model.

The page (template page.html, its script page.js, both inlined: no network, no CDN, no server)
holds the model's weights and a small JavaScript implementation of the model: the embedding, the
LSTM / GRU / RNN / peephole layers with the equations and gate orders of charlstm.cells, and the
head. It generates text from a typed prime (temperature, top-k, seed, length, greedy), streaming
the characters as they come and colouring them by one chosen unit, and it exposes a script API,
`window.charlstm` (docs/formats.md, "The exported page").

Weights: float16 (default) or float32, little-endian, base64, in a `<script type="application/json">`
block escaped like the trace viewer's (charlstm.viz.html). The page computes in float64 from them,
so it runs exactly the model whose weights are these float16 values (`page_model` builds that model
in PyTorch); float32 weights give the trained model itself.

The model's rules, decided here in Python and handed to the page as data, so that there is one
home for each: the vocabulary (char symbols, or bytes decoded as UTF-8), <unk> never generated,
the records rule (reset_id: a text starts after <eot>, and <eot> is read from the zero state;
charlstm.model), what an empty prime starts from (charlstm.sample.loop.start_id), stopping at <eot>.

Owns: the page's data, the size limit, writing the page. Does not know: files of runs (the caller
loads the model) or the command line.
"""
from __future__ import annotations

import base64
import copy
import html
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.fileio import atomic_write_text
from charlstm.inputs import encode
from charlstm.sample.loop import start_id
from charlstm.units import GATE_KINDS, check_unit, key, parse_unit
from charlstm.viz.colors import NEG, POS
from charlstm.viz.html import _json_for_script  # the one escaping rule for JSON inside <script>
from charlstm.vocab import Vocab

#: The largest model a page holds: 10M parameters are 20 MB of float16 (27 MB of base64) and
#: generate about 20 characters a second in a browser (docs/benchmarks.md, "The exported page").
MAX_PARAMS = 10_000_000
DTYPES = ("float16", "float32")
MAX_LENGTH = 100_000  # characters one generation may ask for in the page's form


@dataclass
class PageInfo:
    """What `write_page` wrote: the file, its size in bytes, the model's parameter count, the dtype."""

    path: Path
    size: int
    params: int
    dtype: str


def check_size(module: torch.nn.Module, max_params: int = MAX_PARAMS) -> int:
    """The model's parameter count, or a CharlstmError naming the limit when it exceeds max_params."""
    n = sum(p.numel() for p in module.parameters())
    if n > max_params:
        raise CharlstmError(f"the model has {n:,} parameters, more than a page holds (at most {max_params:,}, "
                            "--max-params): a browser would download and run it too slowly; export it with --onnx")
    return n


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise CharlstmError(f"page weights are float16 or float32, got '{dtype}'")


def page_model(module: torch.nn.Module, dtype: str = "float16") -> torch.nn.Module:
    """A copy of the model (float32, eval mode) with exactly the weights the page computes with:
    each weight rounded to float16 (dtype "float16"), or the model itself (a copy) for "float32"."""
    _check_dtype(dtype)
    m = copy.deepcopy(module).float().eval()
    if dtype == "float16":
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.half().float())
    if hasattr(m, "_charlstm_step_weights"):
        del m._charlstm_step_weights  # the sampler's cache of the old weights
    return m


def _tensor(t: torch.Tensor, dtype: str) -> dict[str, Any]:
    a = t.detach().to("cpu", torch.float32).numpy()
    if dtype == "float16":
        with np.errstate(over="raise"):
            try:
                a = a.astype(np.float16)
            except FloatingPointError:
                raise CharlstmError("a weight is too large for float16 (|w| > 65504); export with --dtype float32") from None
    data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    return {"shape": list(a.shape), "data": base64.b64encode(data).decode("ascii")}


def _symbols(vocab: Vocab) -> list[str | None]:
    """What each id writes: the character (char units; "<unk>"/"<eot>" as such) or None for a byte
    (the page decodes bytes as UTF-8) and "<eot>"."""
    if vocab.units == "char":
        return list(vocab.symbols)
    return [None] * 256 + list(vocab.symbols[256:])


def _labels(vocab: Vocab) -> list[str]:
    """How each id is named in the page's hover readout (charlstm's vocab.symbol: bytes as \\xNN)."""
    return [vocab.symbol(i) for i in range(vocab.size)]


def _default_unit(cfg) -> str:
    kind = "c" if cfg.cell in ("lstm", "peephole") else "h"
    return f"{key(cfg.num_layers - 1, kind)}:0"


def page_data(module: torch.nn.Module, vocab: Vocab, *, dtype: str = "float16", title: str | None = None,
              prime: str = "", unit: str | None = None, max_params: int = MAX_PARAMS) -> dict[str, Any]:
    """The JSON object the page reads (docs/formats.md, "The exported page")."""
    _check_dtype(dtype)
    cfg = module.cfg
    if vocab.size != cfg.vocab_size:
        raise CharlstmError(f"vocabulary of {vocab.size} symbols does not fit the model ({cfg.vocab_size})")
    params = check_size(module, max_params)
    try:  # a prime the model cannot read is refused now, not in the page
        encode(vocab, prime, "error")
    except CharlstmError as e:  # charlstm.inputs' wording, less its advice about --unknown (export has none)
        raise CharlstmError(f"the page's prime: {str(e).split('; use --unknown')[0]}") from None
    u = parse_unit(unit or _default_unit(cfg))
    check_unit(u, cfg.cell, cfg.num_layers, cfg.hidden_size)
    weights = {name: _tensor(t, dtype) for name, t in module.state_dict().items()}
    return {
        "format": "charlstm-page", "version": 1, "title": title or "charlstm model",
        "cell": cfg.cell, "num_layers": cfg.num_layers, "hidden_size": cfg.hidden_size, "embed_dim": cfg.embed_dim,
        "vocab_size": cfg.vocab_size, "params": params, "dtype": dtype, "weights": weights,
        "kinds": list(cells.KINDS[cfg.cell]), "gates": sorted(GATE_KINDS),
        "units": vocab.units, "symbols": _symbols(vocab), "labels": _labels(vocab),
        "eot_id": vocab.eot_id, "unk_id": vocab.unk_id, "reset_id": cfg.reset_id, "start_id": start_id(vocab),
        "prime": prime, "select": str(u), "max_length": MAX_LENGTH,
        "colors": {"neg": list(NEG), "pos": list(POS)},
    }


def _asset(name: str) -> str:
    return resources.files("charlstm.export").joinpath(name).read_text(encoding="utf-8")


def render_page(module: torch.nn.Module, vocab: Vocab, **kw: Any) -> str:
    """The page for a model, as a string (keyword arguments as for `page_data`)."""
    data = page_data(module, vocab, **kw)
    script = _asset("page.js")
    if re.search(r"</script|<!--", script, re.I):
        raise AssertionError("page.js must not contain '</script' or '<!--'")
    fill = {"TITLE": html.escape(data["title"]), "DATA": _json_for_script(data), "SCRIPT": script}
    # one pass, so a title containing "{{DATA}}" stays literal
    return re.sub(r"\{\{(TITLE|DATA|SCRIPT)\}\}", lambda m: fill[m.group(1)], _asset("page.html"))


def write_page(path: str | os.PathLike, module: torch.nn.Module, vocab: Vocab, **kw: Any) -> PageInfo:
    """render_page(...) written to path atomically -> PageInfo."""
    path = Path(path)
    text = render_page(module, vocab, **kw)
    atomic_write_text(path, text)
    return PageInfo(path, len(text.encode("utf-8")), sum(p.numel() for p in module.parameters()),
                    kw.get("dtype", "float16"))
