"""Finding neurons and checking them by intervention: `charlstm neurons find` and `neurons ablate`.

This module orchestrates the pieces other modules own: a text (or a dataset split) becomes ids, the
model is traced (charlstm.trace), a feature is computed on the same characters (charlstm.features),
and every unit of every layer and kind is ranked against it (charlstm.ranking: |Pearson r| for a
continuous feature, AUROC for a binary one; optionally a sparse L1 probe). What it adds itself:

* `load_input`: --text / --file / --split to ids plus one symbol per id (what features align with).
  The literal ``<eot>`` in a text stands for the record boundary (synthetic tasks, tweets).
* `explicit_losses`: the model run layer by layer with the explicit cells (`charlstm.cells.step` on
  `model.layer_params`), optionally with one unit forced to a value at every step, giving the loss
  of every prediction. Unablated it equals the fused model (tests hold it to that); ablated it is
  the intervention the fused kernels cannot do.
* `ablate`: bits per character where the feature is active and where it is not, before and after.

Shapes: T characters, H hidden units, L layers, V vocabulary.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from charlstm import cells
from charlstm.errors import CharlstmError
from charlstm.features import EOT, Feature, compute, get_feature
from charlstm.ranking import ProbeResult, UnitScore, l1_probe, parse_unit_spec, rank_units
from charlstm.vocab import Vocab

LN2 = math.log(2.0)
#: Characters used from a --split (and the cap on --text/--file) unless --limit says otherwise:
#: a full trace of a 3x512 LSTM is 36 KB per character.
DEFAULT_LIMIT = 10_000


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restored after). Step-by-step work on a few rows
    is a long series of tiny operations: more threads only add synchronisation, and on a busy
    machine that costs 50x (1 ms against 56 ms per LSTM step of a 2x256 model, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# Input


@dataclass
class TextInput:
    """What the model reads. ids: int64 [T]; symbols: one str per id (features align with these);
    source: a few words for tables ("split val of stdlib", "--text", "file foo.py")."""

    ids: np.ndarray
    symbols: list[str]
    source: str
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.ids)


def step_symbols(vocab: Vocab, ids: np.ndarray) -> list[str]:
    """One symbol per id as features expect them: the character, ``"<eot>"`` for the boundary,
    ``"<unk>"``; non-ASCII bytes of a byte vocabulary become U+FFFD (one step each)."""
    if vocab.units == "char":
        table = list(vocab.symbols)
    else:
        table = [chr(i) if i < 128 else "\ufffd" for i in range(256)] + [EOT] * (vocab.size - 256)
    return [table[i] for i in np.asarray(ids, dtype=np.int64).tolist()]


def encode_with_boundaries(vocab: Vocab, text: str, unknown: str = "error") -> np.ndarray:
    """Text -> ids [T] int64, where each literal ``<eot>`` becomes the vocabulary's boundary id (when
    it has one), so records can be written inline: ``"aaXbb<eot>aaaXbbb<eot>"``."""
    if unknown not in ("error", "skip", "replace"):
        raise CharlstmError(f"unknown policy '{unknown}'; choose error, skip or replace")
    pieces = text.split(EOT) if vocab.eot_id is not None else [text]
    out: list[np.ndarray] = []
    for k, piece in enumerate(pieces):
        if k:
            out.append(np.array([vocab.eot_id], dtype=np.int64))
        if piece:
            out.append(vocab.encode(piece, unknown=unknown).astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def load_input(vocab: Vocab, run_cfg: dict[str, Any] | None = None, *, text: str | None = None,
               file: str | Path | None = None, split: str | None = None, limit: int | None = DEFAULT_LIMIT,
               unknown: str = "error") -> TextInput:
    """Exactly one of text, file (UTF-8) or split (of the run's dataset, from its config.json) ->
    TextInput of at most `limit` characters (None: no limit). Raises CharlstmError for no or several
    sources, an unreadable file, a missing dataset, unknown characters (unknown="error") or an empty
    result."""
    given = [n for n, v in (("--text", text), ("--file", file), ("--split", split)) if v is not None]
    if len(given) != 1:
        raise CharlstmError("give exactly one of --text, --file or --split" +
                            (f" (got {' and '.join(given)})" if given else ""))
    if limit is not None and limit < 2:
        raise CharlstmError(f"--limit must be at least 2 characters, got {limit}")
    if split is not None:
        from charlstm.dataset import open_dataset

        ds_info = (run_cfg or {}).get("dataset", {})
        where = ds_info.get("path") or ds_info.get("name")
        if not where:
            raise CharlstmError("the run's config.json names no dataset; use --text or --file instead of --split")
        try:
            ds = open_dataset(where, verify=False)
        except CharlstmError:
            if ds_info.get("name") and ds_info.get("name") != where:
                ds = open_dataset(ds_info["name"], verify=False)  # moved data folder: try by name
            else:
                raise
        if ds.vocab.size != vocab.size:
            raise CharlstmError(f"dataset '{ds.name}' has {ds.vocab.size} symbols but the model {vocab.size}; "
                                "it was rebuilt since the run was trained")
        all_ids = ds.split(split)
        n = len(all_ids) if limit is None else min(limit, len(all_ids))
        ids = np.asarray(all_ids[:n], dtype=np.int64)
        source, truncated = f"split {split} of {ds.name}", n < len(all_ids)
    else:
        if file is not None:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise CharlstmError(f"no such file: {file}") from None
            except UnicodeDecodeError:
                raise CharlstmError(f"{file} is not UTF-8 text") from None
            except OSError as e:
                raise CharlstmError(f"cannot read {file}: {e.strerror}") from None
            source = f"file {Path(file).name}"
        else:
            source = "--text"
        if not text:
            raise CharlstmError(f"nothing to analyse: the {'file' if file is not None else 'text'} is empty")
        all_ids = encode_with_boundaries(vocab, text, unknown)
        truncated = limit is not None and len(all_ids) > limit
        ids = all_ids[:limit] if truncated else all_ids
    if len(ids) < 2:
        raise CharlstmError(f"nothing to analyse: {source} has {len(ids)} character(s); at least 2 are needed")
    return TextInput(ids, step_symbols(vocab, ids), source, bool(truncated))


# ----------------------------------------------------------------------------------------------
# Finding


@dataclass
class FindResult:
    """The outcome of `find_units`.

    feature: the Feature; kind: "binary" or "continuous" (how it was ranked);
    values: float32 [T] feature values; trace: the charlstm.trace.Trace ([T, H] arrays);
    ranking: the best units, best first; probe: the L1 probe when asked for.
    """

    feature: Feature
    kind: str
    values: np.ndarray
    trace: Any
    ranking: list[UnitScore]
    source: str = ""
    probe: ProbeResult | None = None
    truncated: bool = False

    def best(self, kinds: Sequence[str] | None = None) -> UnitScore:
        """The best unit, optionally only among trace kinds (``("h", "c")``)."""
        for u in self.ranking:
            if kinds is None or u.key.rsplit(".", 1)[-1] in kinds:
                return u
        raise CharlstmError(f"no unit of kind {', '.join(kinds or ())} among the ranked units")


def feature_values(feature: str | Feature, symbols: Sequence[str]) -> tuple[Feature, np.ndarray, str]:
    """(Feature, values float32 [T], kind "binary" | "continuous") of a feature on the symbols."""
    from charlstm.ranking import infer_kind

    feat = get_feature(feature)
    values = compute(feat, list(symbols))
    kind = feat.kind if feat.kind != "auto" else infer_kind(values)
    return feat, values, kind


def find_units(model, vocab: Vocab, inp: TextInput, feature: str | Feature, *, top: int = 10,
               layers: Sequence[int] | str | None = None, kinds: Sequence[str] | str | None = None,
               probe: bool = False, max_units: int = 5, mask: np.ndarray | None = None,
               trace=None) -> FindResult:
    """Rank every unit (all layers and kinds unless narrowed) by how well it tracks `feature` on the
    input. mask: optional bool [T], the characters to score on. trace: reuse an existing Trace of
    exactly these ids instead of tracing again. Raises CharlstmError when the feature is constant."""
    from charlstm.trace import trace_ids

    feat, values, kind = feature_values(feature, inp.symbols)
    if trace is None:
        trace = trace_ids(model, vocab, inp.ids, layers=layers, kinds=kinds)
    ranking = rank_units(trace.arrays, values, kind=kind, top=top, mask=mask)
    pr = l1_probe(trace.arrays, values, kind=kind, max_units=max_units, mask=mask) if probe else None
    return FindResult(feat, kind, values, trace, ranking, inp.source, pr, inp.truncated)


def format_find(result: FindResult) -> str:
    """The table `neurons find` prints: rank, unit, score, and r (continuous) or AUROC plus the
    unit's mean where the feature is on and off (binary)."""
    n = len(result.values)
    how = "|Pearson r|" if result.kind == "continuous" else "AUROC (max of AUROC, 1 - AUROC)"
    lines = [f"feature {result.feature.name} ({result.kind}, ranked by {how}) on {n:,} characters of {result.source}"
             + (" (truncated: --limit)" if result.truncated else "")]
    if result.kind == "continuous":
        lines.append(f"{'rank':>4}  {'unit':<14} {'score':>6} {'r':>7}")
        for k, u in enumerate(result.ranking, 1):
            lines.append(f"{k:>4}  {u.name:<14} {u.score:>6.3f} {u.r:>+7.3f}")
    else:
        on = result.values > 0.5
        lines.append(f"{'rank':>4}  {'unit':<14} {'score':>6} {'auroc':>6} {'mean on':>8} {'mean off':>9}")
        for k, u in enumerate(result.ranking, 1):
            col = result.trace.unit(u.key, u.unit)
            lines.append(f"{k:>4}  {u.name:<14} {u.score:>6.3f} {u.auroc:>6.3f} {col[on].mean():>8.3f} "
                         f"{col[~on].mean():>9.3f}")
    if result.probe is not None:
        lines.append("")
        lines.extend(format_probe(result.probe).splitlines())
    return "\n".join(lines)


def format_probe(p: ProbeResult) -> str:
    """A few lines describing an L1 probe: how many units, how well on held-out text, which units."""
    if p.kind == "binary":
        h = p.heldout
        perf = (f"held-out accuracy {h['accuracy']:.3f} (majority baseline {h['baseline']:.3f}"
                + (f", AUROC {h['auroc']:.3f}" if "auroc" in h else "") + ")") if h else "no held-out text"
    else:
        perf = f"held-out R^2 {p.heldout['r2']:.3f} (r {p.heldout['r']:+.3f})" if p.heldout else "no held-out text"
    model = "logistic" if p.kind == "binary" else "least squares"
    lines = [f"L1 probe ({model}, units standardised): {len(p.units)} unit(s), {perf}; "
             f"trained on {p.n_train:,}, tested on the last {p.n_test:,} characters"]
    for u in p.units:
        lines.append(f"  {u.name:<14} weight {u.weight:+.3f}")
    if not p.units:
        lines.append("  (no unit helps: the probe is the constant prediction)")
    return "\n".join(lines)


#: Characters the --html page shows: with every unit of a big model embedded, pages grow by about
#: 1.3 bytes per value (21 MB for 10,000 characters of a 2x256 LSTM, all kinds).
HTML_CHARS = 5000


def find_html(result: FindResult, path: str | Path, units: int | None = None, max_chars: int = HTML_CHARS) -> Path:
    """Write the trace viewer (charlstm.viz.html) for the input, with the ranking as the feature's
    scores in its overview: the best unit is shown first, and n/p step through the ranking.
    units: how many of the ranked units to offer (default all of `result.ranking`). To keep the
    page small it holds only the layers and kinds of the ranked units, over the first max_chars
    characters."""
    import dataclasses

    from charlstm.trace import key, parse_key
    from charlstm.viz.html import write_html

    ranked = result.ranking[:units] if units is not None else result.ranking
    tr = result.trace
    layers = sorted({parse_key(u.key)[0] for u in ranked})
    kinds = [k for k in tr.kinds if any(parse_key(u.key)[1] == k for u in ranked)]
    arrays = {key(l, k): tr.arrays[key(l, k)] for l in layers for k in kinds if key(l, k) in tr.arrays}
    shown = dataclasses.replace(tr, arrays=arrays, layers=layers, kinds=kinds).head(min(len(tr), max_chars))
    how = "|r|" if result.kind == "continuous" else "max(AUROC, 1 - AUROC)"
    scores = {f"{result.feature.name} ({how})": [(u.key, u.unit, u.score) for u in ranked]}
    best = ", ".join(f"{u.name} {u.score:.3f}" for u in ranked[:5])
    notes = [f"Units ranked against feature {result.feature.name} ({result.kind}) on {len(result.values):,} characters "
             f"of {result.source}; best: {best}."]
    if result.probe is not None:
        notes.append("L1 probe: " + ", ".join(f"{u.name} ({u.weight:+.2f})" for u in result.probe.units))
    return write_html(path, shown, scores=scores, title=f"charlstm neurons find: {result.feature.name}",
                      notes=notes, total=len(tr))


def find_png(result: FindResult, path: str | Path, max_lines: int = 16, max_cols: int = 80) -> Path | None:
    """Draw the best unit over the start of the text (as it reads: a row per line) into a PNG, with
    the viewer's colour map; None when matplotlib is missing."""
    from charlstm.experiments.report import wrapped_png

    best = result.ranking[0]
    how = f"r {best.r:+.3f}" if best.r is not None else f"AUROC {best.auroc:.3f}"
    title = f"{best.name} ({how} with {result.feature.name})"
    return wrapped_png(path, result.trace.chars, result.trace.unit(best.key, best.unit), best.key.rsplit(".", 1)[-1],
                       title=title, max_lines=max_lines, max_cols=max_cols)


# ----------------------------------------------------------------------------------------------
# Explicit run with interventions


@dataclass(frozen=True)
class Intervention:
    """Force one unit to `value` at every step: layer, kind (a key of cells.KINDS[cell]), unit."""

    layer: int
    kind: str
    unit: int
    value: float

    @property
    def name(self) -> str:
        return f"layer{self.layer}.{self.kind}:{self.unit}"


def parse_intervention(spec: str, model, value: float = 0.0) -> Intervention:
    """"layer1.c:37" (checked against the model's shape) -> Intervention(1, "c", 37, value)."""
    cfg = model.cfg
    known = {f"layer{l}.{k}": cfg.hidden_size for l in range(cfg.num_layers) for k in cells.KINDS[cfg.cell]}
    key, unit = parse_unit_spec(spec, known)
    layer, kind = key.split(".")
    return Intervention(int(layer[5:]), kind, unit, float(value))


def _gates_pre(x: Tensor, h: Tensor, p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The two halves of the pre-activations, (x W_ih' + b_ih, h W_hh' + b_hh), each [N, G*H]."""
    gi, gh = x @ p["weight_ih"].t(), h @ p["weight_hh"].t()
    if p.get("bias_ih") is not None:
        gi, gh = gi + p["bias_ih"], gh + p["bias_hh"]
    return gi, gh


def _intervene(cell: str, r: dict[str, Tensor], x: Tensor, state: tuple[Tensor, ...], p: dict[str, Tensor],
               kind: str, sel: Tensor, value: float) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Redo one step with kind[sel] forced to value: r is `cells.step(cell, x, state, p)`; what depends
    on the forced value is recomputed from it. sel: bool [N, H] (rows and unit).
    Returns (output h [N, H], new state)."""
    v = torch.as_tensor(value, dtype=x.dtype, device=x.device)

    def force(t: Tensor) -> Tensor:
        return torch.where(sel, v, t)

    if cell == "rnn":
        h = force(r["h"])
        return h, (h,)
    if cell == "gru":
        if kind == "h":
            h = force(r["h"])
            return h, (h,)
        rg, z, n = r["r"], r["z"], r["n"]
        if kind == "r":
            rg = force(rg)
            gi, gh = _gates_pre(x, state[0], p)
            n = torch.tanh(gi.chunk(3, -1)[2] + rg * gh.chunk(3, -1)[2])
        elif kind == "z":
            z = force(z)
        else:
            n = force(n)
        h = (1 - z) * n + z * state[0]
        return h, (h,)
    # LSTM and peephole: i, f, g do not depend on the new cell; o does for the peephole cell.
    i, f, g, o, c = r["i"], r["f"], r["g"], r["o"], r["c"]
    if kind == "h":
        h = force(r["h"])
        return h, (h, c)
    if kind in ("i", "f", "g"):
        i, f, g = (force(t) if k == kind else t for k, t in (("i", i), ("f", f), ("g", g)))
        c = f * state[1] + i * g
    elif kind == "c":
        c = force(c)
    if cell == "peephole" and kind != "o":
        gi, gh = _gates_pre(x, state[0], p)
        o = torch.sigmoid((gi + gh).chunk(4, -1)[3] + p["peephole"][2] * c)
    if kind == "o":
        o = force(o)
    return o * torch.tanh(c), (o * torch.tanh(c), c)


@torch.inference_mode()
def explicit_losses(model, ids: np.ndarray, interventions: Sequence[Intervention | None] = (None,),
                    state=None) -> np.ndarray:
    """Run the model over ids [T] with the explicit cells, layer by layer (`cells.step` one step at a
    time, on `model.layer_params`), once per entry of `interventions` (None: unablated), all in one
    batch. Returns the loss of every prediction in nats, float64 [len(interventions), T - 1]: row k,
    column t is -log p(ids[t+1] | ids[:t+1]) under intervention k. state: optional initial state (as
    the model takes it, [L, 1, H] each), else zeros."""
    cfg = model.cfg
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    T, N = len(ids_t), len(interventions)
    if T < 2:
        raise CharlstmError("at least 2 characters are needed to score a prediction")
    was_training = model.training
    model.eval()
    cpu = model.head.weight.device.type == "cpu"
    try:
        with one_thread() if cpu else contextlib.nullcontext():
            return _explicit_run(model, ids_t, interventions, state)
    finally:
        model.train(was_training)


def _explicit_run(model, ids_t: Tensor, interventions: Sequence[Intervention | None], state) -> np.ndarray:
    """The body of `explicit_losses` (same arguments, ids as a tensor [T])."""
    cfg = model.cfg
    T, N = len(ids_t), len(interventions)
    w = model.head.weight
    dev = w.device
    x = model.embed(ids_t.to(dev))[None].expand(N, T, -1)  # [N, T, E]
    n_state = cells.state_size(cfg.cell)
    for layer in range(cfg.num_layers):
        p = model.layer_params(layer)
        if state is None:
            st = tuple(torch.zeros(N, cfg.hidden_size, device=dev, dtype=w.dtype) for _ in range(n_state))
        else:
            st = tuple(s[layer].expand(N, -1).contiguous() for s in state)
        # (intervention, bool [N, H] its row and unit, bool [N, 1] its row) for this layer
        sels = []
        for k, iv in enumerate(interventions):
            if iv is not None and iv.layer == layer:
                sel = torch.zeros(N, cfg.hidden_size, dtype=torch.bool, device=dev)
                sel[k, iv.unit] = True
                sels.append((iv, sel, sel.any(1, keepdim=True)))
        outs = []
        for t in range(T):
            xt = x[:, t]
            r = cells.step(cfg.cell, xt, st, p)
            h, new = r["h"], ((r["h"], r["c"]) if n_state == 2 else (r["h"],))
            # Each intervention changes only its own batch row; the other rows keep the plain step.
            for iv, sel, rows in sels:
                h_k, st_k = _intervene(cfg.cell, r, xt, st, p, iv.kind, sel, iv.value)
                h = torch.where(rows, h_k, h)
                new = tuple(torch.where(rows, a, b) for a, b in zip(st_k, new))
            st = new
            outs.append(h)
        x = torch.stack(outs, 1)  # [N, T, H]: the next layer's input
    logp = torch.log_softmax(model.head(x[:, :-1]).double(), dim=-1)  # [N, T-1, V]
    tgt = ids_t[1:].to(dev)[None, :, None].expand(N, -1, 1)
    return (-logp.gather(-1, tgt)[..., 0]).cpu().numpy()


@torch.inference_mode()
def fused_losses(model, ids: np.ndarray) -> np.ndarray:
    """The same losses from the fused model (what training and sampling run): float64 [T - 1]."""
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None].to(model.head.weight.device)
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(ids_t)
    finally:
        model.train(was_training)
    logp = torch.log_softmax(logits[0, :-1].double(), -1)
    return (-logp.gather(-1, ids_t[0, 1:, None])[:, 0]).cpu().numpy()


# ----------------------------------------------------------------------------------------------
# Ablation


@dataclass
class AblationGroup:
    """Bits per character of the predictions made after characters in one group."""

    name: str
    count: int
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass
class AblationResult:
    """The outcome of `ablate`. groups: "active" (feature on / non-zero at the character read
    before the prediction), "inactive" and "all". fused_bpc: the fused model's bpc on the same
    predictions (equal to groups["all"].before up to float rounding)."""

    intervention: Intervention
    mode: str
    feature: Feature
    source: str
    groups: dict[str, AblationGroup]
    fused_bpc: float
    losses: np.ndarray = field(repr=False)  # [2, T-1] nats: before, after
    active: np.ndarray = field(repr=False)  # bool [T-1]


def ablate(model, vocab: Vocab, inp: TextInput, unit: str, feature: str | Feature, mode: str = "zero",
           value: float | None = None) -> AblationResult:
    """Force `unit` ("layer1.c:37") at every step and measure the change in bits per character,
    separately where the feature is active (non-zero at the character just read) and where not.

    mode: "zero" (value 0), "mean" (the unit's mean over this input, unablated) or "value" (the
    given value). Runs the explicit cells (`explicit_losses`) for both the clean and the ablated
    model in one batch, and the fused model once as a check.
    """
    if mode not in ("zero", "mean", "value"):
        raise CharlstmError(f"unknown ablation mode '{mode}'; choose zero, mean or value")
    if (mode == "value") != (value is not None):
        raise CharlstmError("give --value exactly when the mode is 'value'" if mode == "value" else
                            f"--value is only used with --mode value (mode is '{mode}')")
    iv = parse_intervention(unit, model, 0.0)
    feat, values, kind = feature_values(feature, inp.symbols)
    if mode == "mean":
        from charlstm.trace import trace_ids

        tr = trace_ids(model, vocab, inp.ids, layers=[iv.layer], kinds=[iv.kind])
        value = float(tr.unit(f"layer{iv.layer}.{iv.kind}", iv.unit).mean())
    iv = Intervention(iv.layer, iv.kind, iv.unit, float(value or 0.0))
    losses = explicit_losses(model, inp.ids, [None, iv])
    fused = float(fused_losses(model, inp.ids).mean() / LN2)
    active = (values[:-1] > 0.5) if kind == "binary" else (values[:-1] != 0)
    groups = {}
    for name, sel in (("active", active), ("inactive", ~active), ("all", np.ones_like(active))):
        cnt = int(sel.sum())
        b = float(losses[0, sel].mean() / LN2) if cnt else float("nan")
        a = float(losses[1, sel].mean() / LN2) if cnt else float("nan")
        groups[name] = AblationGroup(name, cnt, b, a)
    return AblationResult(iv, mode, feat, inp.source, groups, fused, losses, active)


def format_ablation(res: AblationResult) -> str:
    """The table `neurons ablate` prints."""
    iv = res.intervention
    how = {"zero": "set to 0", "mean": f"set to its mean {iv.value:+.4f}", "value": f"set to {iv.value:+g}"}[res.mode]
    lines = [f"ablating {iv.name} ({how}) at every step; {res.groups['all'].count:,} predictions on {res.source}",
             f"feature {res.feature.name}: active = "
             + ("on" if res.feature.kind == "binary" else "non-zero") + " at the character just read",
             f"{'':<9} {'predictions':>11} {'bpc before':>10} {'bpc after':>10} {'change':>8}"]
    for g in res.groups.values():
        if g.count:
            lines.append(f"{g.name:<9} {g.count:>11,} {g.before:>10.4f} {g.after:>10.4f} {g.change:>+8.4f}")
        else:
            lines.append(f"{g.name:<9} {0:>11} {'-':>10} {'-':>10} {'-':>8}")
    diff = abs(res.groups["all"].before - res.fused_bpc)
    lines.append(f"check: the unablated explicit run gives {res.groups['all'].before:.4f} bpc, the fused model "
                 f"{res.fused_bpc:.4f} (difference {diff:.1e})")
    return "\n".join(lines)
