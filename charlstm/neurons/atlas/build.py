"""Building an atlas: every applicable feature against every unit, with held-out confirmation,
chance and learning controls, probes, ablations, gate saturation and the n-gram error analysis.

    atlas = build_atlas(model, vocab, read_input(vocab, config, split="val", limit=20000), config)

The stages, in order (each timed in `Atlas.seconds`):

1. trace every layer's h, c and gates over the text (charlstm.trace), compute each target feature
   (charlstm.neurons.atlas.selection) and cut the text into selection and confirmation parts;
2. rank every unit on the selection part (charlstm.neurons.atlas.scoring), score the best ones on
   the confirmation part, and the best unit against S shifted copies of the feature (chance);
3. the same ranking on untrained models of the same shape (learning control,
   charlstm.neurons.atlas.controls), and L1 probes with their control tasks;
4. ablate the top units (zero and mean) and measure bits per character (causes);
5. gate saturation per layer (charlstm.units, charlstm.trace.GateStats);
6. n-gram baselines fitted on the run's training split, and where the LSTM beats them (ngram,
   breakdown);
and, for each dictionary given (charlstm.dictionary), every feature of it ranked like the units on
the selection part, the best confirmed on the other part and held against shifted copies (there
is no learning control for a dictionary: it was fitted to the trained model's states).

Owns: `build_atlas`. Does not know: the command line, files or pictures.
Shapes: T characters, U units (all layers and kinds), S shifted controls.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.inputs import Input, split_ids
from charlstm.neurons.ablation import fused_losses
from charlstm.neurons.atlas import causes as C
from charlstm.neurons.atlas.breakdown import compare
from charlstm.neurons.atlas.controls import learned, probe_selectivity, untrained_model
from charlstm.neurons.atlas.ngram import ngram_bits
from charlstm.neurons.atlas.results import KEEP, P_MAX, Atlas, FeatureResult, UnitResult, skill
from charlstm.neurons.atlas.scoring import UnitMatrix, directed, p_value, score_of, shift_offsets
from charlstm.neurons.atlas.selection import Target, corpus_kind, key_predictions, parts, targets_for, usable
from charlstm.neurons.features import compute, get_feature
from charlstm.neurons.ranking import auroc_columns, infer_kind, pearson_columns
from charlstm.neurons.textsteps import steps
from charlstm.trace import GateStats, trace_ids
from charlstm.units import SATURATION_GATES, Clamp, kind_of, parse_key, parse_unit
from charlstm.vocab import Vocab

Log = Callable[[str], None]
#: Features whose inside/outside the error analysis compares (those of them the atlas scored).
REGIONS = ("string", "comment", "double-quote", "single-quote", "url", "mention", "hashtag")
#: Shifted controls needed before a p-value can reach P_MAX (1 / (controls + 1) <= P_MAX).
MIN_CONTROLS = 99
#: Vocabularies this small get a per-character table of the best state unit's gates.
SMALL_VOCAB = 16


class _Prepared:
    """A target's values on the text, its rows, and the unit matrices of one model (cached per span)."""

    def __init__(self, target: Target, symbols: Sequence[str], select: np.ndarray, confirm: np.ndarray):
        self.target = target
        self.feature = get_feature(target.name)
        self.values = compute(self.feature, list(symbols))
        self.kind = self.feature.kind if self.feature.kind != "auto" else infer_kind(self.values)
        self.span = compute(target.span, list(symbols)) > 0.5 if target.span else None
        inside = self.span if self.span is not None else np.ones(len(symbols), bool)
        self.select, self.confirm = select & inside, confirm & inside
        self.why_not = usable(self.values, self.kind, self.select) or usable(self.values, self.kind, self.confirm)


def _direction(raw: float, kind: str) -> int:
    """+1 if a column rises with the feature (r >= 0, or AUROC >= 0.5), else -1."""
    return 1 if (raw >= 0 if kind == "continuous" else raw >= 0.5) else -1


def _holds_up(heldout: float, score: float, kind: str, heldout_p: float) -> bool:
    """Keeps KEEP of its distance from chance on the confirmation part and beats its own controls."""
    return skill(heldout, kind) >= KEEP * skill(score, kind) and heldout_p <= P_MAX


def _column_raw(col: np.ndarray, y: np.ndarray, kind: str) -> float:
    col = np.asarray(col, np.float32)[:, None]
    return float(pearson_columns(col, y)[0] if kind == "continuous" else auroc_columns(col, y > 0.5)[0])


def _rank(trace_arrays, prep: _Prepared, cache: dict) -> tuple[UnitMatrix, np.ndarray]:
    """The selection part's unit matrix (cached per span) and every unit's raw score [U]."""
    um = cache.get(prep.target.span)
    if um is None:
        um = cache[prep.target.span] = UnitMatrix(trace_arrays, prep.select)
    return um, um.raw(prep.values[prep.select], prep.kind)


def _confirm(trace_arrays, prep: _Prepared, key: str, unit: int, direction: int,
             offsets: np.ndarray) -> tuple[float, float, float]:
    """(raw, directed score, p against shifted controls) of one unit on the confirmation part."""
    y = prep.values[prep.confirm]
    col = np.asarray(trace_arrays[key])[prep.confirm, unit]
    raw = _column_raw(col, y, prep.kind)
    score = float(directed(raw, prep.kind, direction))
    null = UnitMatrix({key: trace_arrays[key]}, prep.confirm, [(key, unit)]).null_best(y, prep.kind, offsets)
    return raw, score, p_value(score, null)


def _gates(trace, prep: _Prepared, raw: np.ndarray, um: UnitMatrix, vocab: Vocab, symbols) -> dict | None:
    """The best h or c unit's own gates: means where the feature moves and where it holds (within the
    span), and per character read for small vocabularies."""
    gates = SATURATION_GATES[trace.cell]
    states = [j for j, (k, _) in enumerate(um.columns) if kind_of(k) in ("h", "c")]
    if not gates or not states:
        return None
    j = max(states, key=lambda j: float(score_of(raw[j], prep.kind)))
    k, u = um.columns[j]
    layer, _ = parse_key(k)
    cols = {g: trace.unit(f"layer{layer}.{g}", u) for g in gates if f"layer{layer}.{g}" in trace.arrays}
    inside = prep.span if prep.span is not None else np.ones(len(prep.values), bool)
    moves = np.r_[False, np.diff(prep.values) != 0] & inside
    holds = ~moves & inside
    out: dict[str, Any] = {"unit": f"{k}:{u}", "score": float(score_of(raw[j], prep.kind)),
                           "moves": {g: float(v[moves].mean()) for g, v in cols.items()} if moves.any() else None,
                           "holds": {g: float(v[holds].mean()) for g, v in cols.items()} if holds.any() else None}
    if vocab.size <= SMALL_VOCAB:
        sym = np.asarray(symbols, dtype=object)
        out["by_char"] = {s: {g: float(v[sym == s].mean()) for g, v in cols.items()}
                          for s in dict.fromkeys(symbols)}
    return out


def _saturation(trace) -> dict[str, Any]:
    stats = GateStats.from_trace(trace)
    out: dict[str, Any] = {"characters": stats.n, "low": 0.1, "high": 0.9, "table": stats.table(), "layers": {}}
    for layer, gates in stats.fractions().items():
        out["layers"][str(layer)] = {g: {"left_mean": float(lo.mean()), "right_mean": float(hi.mean()),
                                         "mostly_left": int((lo > 0.5).sum()), "mostly_right": int((hi > 0.5).sum()),
                                         "never": int(((lo == 0) & (hi == 0)).sum()), "units": int(len(lo)),
                                         "left": [round(float(v), 4) for v in lo], "right": [round(float(v), 4) for v in hi]}
                                     for g, (lo, hi) in gates.items()}
    return out


def _dictionary_best(d, acts: np.ndarray, p: _Prepared, off_c: np.ndarray, off_s: np.ndarray,
                     cache: dict) -> dict[str, Any]:
    """The best feature of one dictionary for one target: ranked on the selection part, confirmed on
    the other, against shifted copies (chance). acts: the dictionary's activations [T, F]."""
    um = cache.get((d.key, p.target.span))
    if um is None:
        um = cache[(d.key, p.target.span)] = UnitMatrix({d.key: acts}, p.select)
    raw = um.raw(p.values[p.select], p.kind)
    scores = score_of(raw, p.kind)
    j = int(np.argmax(scores))
    k, f = um.columns[j]
    direction = _direction(raw[j], p.kind)
    hraw, hscore, hp = _confirm({k: acts}, p, k, f, direction, off_c)
    holds = _holds_up(hscore, float(scores[j]), p.kind, hp)
    chance_p = p_value(float(scores[j]), um.null_best(p.values[p.select], p.kind, off_s))
    unit = UnitResult(f"{k}:{f}", float(raw[j]), float(scores[j]), direction, hraw, hscore, hp, bool(holds))
    return {"dictionary": d.name or "dict", "layer": d.layer, "kind": d.kind, "size": d.size, "k": d.k,
            **unit.to_json(), "chance_p": chance_p, "found": bool(holds and chance_p <= P_MAX)}


def build_atlas(model, vocab: Vocab, inp: Input, run_config: dict[str, Any], *, run: str = "",
                features: Sequence[str] = (), dictionaries: Sequence[Any] = (), top: int = 1, listed: int = 5,
                controls: int = 199,
                untrained: int = 3, probe: bool = True, ngram: int = 5, train_ids: np.ndarray | None = None,
                ablate_chars: int | None = 20_000, blocks: int = 10, seed: int = 0, log: Log | None = None) -> Atlas:
    """The atlas of `model` on `inp` (see the module docstring). run_config: the run's config.json
    (what kind of text it learned, where its training split is). features: extra features to try;
    dictionaries: charlstm.dictionary.Dictionary objects fitted to this model, whose features are
    ranked too (FeatureResult.dictionary); top: units ablated per feature; listed: units listed (and
    confirmed) per feature; controls: shifted copies per feature (chance); untrained: untrained models (learning control; 0 skips
    it); probe: fit L1 probes with control tasks; ngram: the highest n-gram order (0 skips the
    error analysis); train_ids: the n-gram training text (default: the run's training split);
    ablate_chars: ablations run on the first this many characters (None: all; each ablated copy
    reruns the model step by step, the slowest part of an atlas); blocks: blocks the text is cut
    into for the two parts; seed: seeds the controls.
    Raises CharlstmError for a text under 20 characters or fewer than MIN_CONTROLS controls."""
    say = log or (lambda msg: None)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    if len(inp) < 20:
        raise CharlstmError(f"an atlas needs at least 20 characters, got {len(inp)}")
    if controls < MIN_CONTROLS:
        raise CharlstmError(f"at least {MIN_CONTROLS} controls are needed for p <= {P_MAX} to be possible, got {controls}")
    targets = targets_for(run_config, features)
    ids = np.asarray(inp.ids, np.int64)
    symbols = inp.symbols
    trace = trace_ids(model, vocab, ids)
    arrays = trace.arrays
    cfg = model.cfg
    say(f"traced {len(ids):,} characters ({cfg.cell} {cfg.num_layers}x{cfg.hidden_size}, "
        f"{sum(a.shape[1] for a in arrays.values()):,} units) in {time.perf_counter() - t0:.1f}s")
    select, confirm = parts(len(ids), blocks)
    preps, skipped = [], []
    for t in targets:
        p = _Prepared(t, symbols, select, confirm)
        (skipped.append((t.name, p.why_not)) if p.why_not else preps.append(p))
    clock["trace"] = time.perf_counter() - t0

    # 2. ranking, confirmation, chance
    t1 = time.perf_counter()
    cache: dict = {}
    results: list[FeatureResult] = []
    keys: list[np.ndarray] = []  # per feature, bool [T - 1]: its key predictions
    line_end = steps(list(symbols)).line_end
    # per feature, the shifted copies of its selection and confirmation parts (units and dictionaries alike)
    offsets = [(shift_offsets(int(p.select.sum()), controls, seed),
                shift_offsets(int(p.confirm.sum()), controls, seed + 1)) for p in preps]
    for p, (off_s, off_c) in zip(preps, offsets):
        um, raw = _rank(arrays, p, cache)
        scores = score_of(raw, p.kind)
        order = np.argsort(-scores, kind="stable")[:listed]
        units = []
        for j in order:
            k, u = um.columns[j]
            d = _direction(raw[j], p.kind)
            hraw, hscore, hp = _confirm(arrays, p, k, u, d, off_c)
            holds = _holds_up(hscore, float(scores[j]), p.kind, hp)
            units.append(UnitResult(f"{k}:{u}", float(raw[j]), float(scores[j]), d, hraw, hscore, hp, bool(holds)))
        null = um.null_best(p.values[p.select], p.kind, off_s)
        best = units[0].score
        chance = {"controls": controls, "p": p_value(best, null), "beaten": float(np.mean(null < best)),
                  "null_median": float(np.median(null)), "null_95": float(np.quantile(null, 0.95)),
                  "null_99": float(np.quantile(null, 0.99)), "null_max": float(null.max())}
        key, key_what = key_predictions(p.target.name, p.kind, p.values, p.span, line_end)
        res = FeatureResult(p.target.name, p.kind, p.target.why, p.feature.description, p.target.span,
                            {"selection": int(p.select.sum()), "confirmation": int(p.confirm.sum()),
                             "on_selection": int((p.values[p.select] != 0).sum()),
                             "on_confirmation": int((p.values[p.confirm] != 0).sum())},
                            units, chance, [], False, None, key_what,
                            gates=_gates(trace, p, raw, um, vocab, symbols))
        results.append(res)
        keys.append(key)
        say(f"{p.target.name}: best {units[0].unit} {units[0].score:.3f} (confirmation {units[0].heldout:.3f}), "
            f"chance p {chance['p']:.3g}")
    cache.clear()
    clock["ranking"] = time.perf_counter() - t1

    # 2b. dictionary features, ranked and confirmed like units
    if dictionaries:
        t1 = time.perf_counter()
        for d in dictionaries:
            acts = d.activations(np.asarray(arrays[f"layer{d.layer}.{d.kind}"]))  # [T, F]
            d_cache: dict = {}
            for p, res, (off_s, off_c) in zip(preps, results, offsets):
                res.dictionary.append(_dictionary_best(d, acts, p, off_c, off_s, d_cache))
            del acts, d_cache
            say(f"dictionary {d.name or 'dict'} ({d.size:,} features of layer{d.layer}.{d.kind}) ranked")
        clock["dictionaries"] = time.perf_counter() - t1

    # 3. learning control and probes
    t2 = time.perf_counter()
    for m in range(untrained):
        rm = untrained_model(model, seed=10_000 + seed * 100 + m)
        r_arrays = trace_ids(rm, vocab, ids).arrays
        r_cache: dict = {}
        for p, res in zip(preps, results):
            um, raw = _rank(r_arrays, p, r_cache)
            j = int(np.argmax(score_of(raw, p.kind)))
            k, u = um.columns[j]
            d = _direction(raw[j], p.kind)
            hraw = _column_raw(np.asarray(r_arrays[k])[p.confirm, u], p.values[p.confirm], p.kind)
            res.untrained.append({"model": m, "unit": f"{k}:{u}", "score": float(score_of(raw[j], p.kind)),
                                  "heldout": float(directed(hraw, p.kind, d))})
        del r_arrays, r_cache
        say(f"untrained model {m + 1}/{untrained} ranked")
    for res in results:
        res.learned = bool(res.untrained) and learned(res.best.heldout, res.untrained_best)
    clock["untrained"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    if probe:
        for p, res in zip(preps, results):
            try:
                res.probe = probe_selectivity(arrays, p.values, p.kind, ids, p.select, p.confirm, seed=seed)
            except CharlstmError as e:
                res.notes.append(f"probe skipped: {e}")
        say("probes fitted")
    clock["probes"] = time.perf_counter() - t3

    # 4. causes
    t4 = time.perf_counter()
    jobs: list[C.Job] = []
    mine: list[list[int]] = []  # per feature, its jobs
    means = {}

    def mean_of(unit: str) -> float:
        if unit not in means:
            u = parse_unit(unit)
            means[unit] = float(np.mean(trace.unit(u.key, u.unit), dtype=np.float64))
        return means[unit]

    def add(job: C.Job) -> int:
        if job not in jobs:
            jobs.append(job)
        return jobs.index(job)

    for res in results:
        idx = []
        for ur in res.units[:top]:
            u = parse_unit(ur.unit)
            idx.append(add(C.Job((Clamp(u.layer, u.kind, u.unit, 0.0),), "zero")))
            idx.append(add(C.Job((Clamp(u.layer, u.kind, u.unit, mean_of(ur.unit)),), "mean")))
        # the listed units of the best unit's layer and kind, held at their means together
        group = [parse_unit(ur.unit) for ur in res.units if ur.unit.split(":")[0] == res.best.unit.split(":")[0]]
        if top and len(group) > 1:
            idx.append(add(C.Job(tuple(Clamp(u.layer, u.kind, u.unit, mean_of(u.name)) for u in group),
                                 "mean, together")))
        mine.append(idx)
    n_ab = len(ids) if ablate_chars is None else max(2, min(len(ids), int(ablate_chars)))
    if jobs:
        clean, ablated = C.losses(model, ids[:n_ab], jobs,
                                  progress=lambda d, n: say(f"ablations {d}/{n} on {n_ab:,} characters"))
        for p, res, key, idx in zip(preps, results, keys, mine):
            span = p.span[:n_ab] if p.span is not None else None
            groups = C.prediction_groups(p.values[:n_ab], p.kind, span, key[:n_ab - 1])
            res.ablations = C.ablation_effects(clean, ablated[idx], [jobs[i] for i in idx], groups)
    clock["ablation"] = time.perf_counter() - t4

    # 5. gate saturation, 6. n-gram error analysis
    t5 = time.perf_counter()
    saturation = _saturation(trace)
    notes: list[str] = []
    errors, groups = None, []
    if ngram > 0:
        if train_ids is None:
            try:
                train_ids = split_ids(run_config, vocab, "train", instead="the error analysis needs it")
            except CharlstmError as e:
                notes.append(f"n-gram error analysis skipped: {e}")
        if train_ids is not None and len(train_ids):
            nbits = ngram_bits(np.asarray(train_ids), vocab.size, ngram, ids)
            lstm = fused_losses(model, ids) / math.log(2.0)
            bpc = nbits.mean(axis=1)
            best_n = int(np.argmin(bpc)) + 1
            regions = {p.target.name: p.values for p in preps if p.target.name in REGIONS}
            groups = compare(symbols, lstm, nbits[best_n - 1], regions)
            errors = {"train_characters": int(len(train_ids)), "orders": [{"n": n + 1, "bpc": float(b)} for n, b in enumerate(bpc)],
                      "best_order": best_n, "lstm_bpc": float(lstm.mean()), "groups": [g.to_json() for g in groups],
                      "smoothing": "interpolated Witten-Bell"}
            say(f"n-grams 1..{ngram} fitted on {len(train_ids):,} training characters")
    clock["gates_and_ngrams"] = time.perf_counter() - t5
    clock["total"] = time.perf_counter() - t0
    model_info = {"cell": cfg.cell, "layers": cfg.num_layers, "hidden": cfg.hidden_size,
                  "parameters": int(model.num_parameters()), "units": int(sum(a.shape[1] for a in arrays.values()))}
    settings = {"dictionaries": [d.name or "dict" for d in dictionaries], "blocks": blocks, "controls": controls,
                "untrained": untrained, "probe": probe, "ngram": ngram,
                "top": top, "listed": listed, "seed": seed, "keep": KEEP, "p_max": P_MAX, "ablated_characters": n_ab}
    return Atlas(run, model_info, inp.source, len(ids), inp.truncated, corpus_kind(run_config), settings, results,
                 skipped, saturation, errors, {k: round(v, 2) for k, v in clock.items()}, notes, trace=trace,
                 symbols=list(symbols), values={p.target.name: (p.values, p.span) for p in preps}, groups=groups)
