"""Benchmark the exported page (`charlstm export RUN --html`): how fast it generates in Chromium.

    .venv/bin/python scripts/bench_page.py                      # the tiny and small presets
    .venv/bin/python scripts/bench_page.py --presets tiny --chars 1000 --repeats 5
    .venv/bin/python scripts/bench_page.py --run demo            # a trained run too, and how closely
                                                                 # its float16 page follows it

For each preset a model with random weights and a 100-symbol character vocabulary is exported
(float16 weights, as the command does by default; speed does not depend on the weights' values), the
page is opened in headless Chromium (charlstm.export.browser) and timed through its script API:
`charlstm.generateFull(prime, {length, temperature: 1, seed, stopAtEot: false})` for sampling and
the same with `greedy: true`; the time is the page's own (from reading the prime to the last
character, `seconds` in the result), the best of --repeats runs. Also reported: the page's size,
the time from navigation to the page being ready (weights decoded), and, for comparison,
`charlstm sample` in this process (one thread) on the same model. Other processes on the machine
slow every number down: run it a few times. Results go in docs/benchmarks.md, "The exported page".

With --run, the float16 and float32 pages of that run are also compared with the run itself: greedy
text of 500 characters from each of a few primes against `charlstm sample --greedy` (charlstm's
generate), and the largest |difference| of every traced value over the first prime's greedy text
against `charlstm trace` (charlstm's trace_text), of the run and of the run rounded to float16.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import charlstm
from charlstm.config import PRESETS, ModelConfig
from charlstm.export.browser import Chromium
from charlstm.export.page import page_model, write_page
from charlstm.model import CharRNN
from charlstm.runtime import cpu_threads
from charlstm.sample import SampleOptions, generate
from charlstm.trace import trace_text
from charlstm.vocab import Vocab

PRIME = "def main():\n    "
PRIMES = ("import ", "class ", "    return ", "def ", "    def ", "# ", "if ", "for i in ", "self.", "x = ",
          "The ", "In the ", "A ", "I ")


def preset_model(name: str, vocab: Vocab, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    m = PRESETS[name]["model"]
    cfg = ModelConfig(cell="lstm", vocab_size=vocab.size, embed_dim=m["embed_dim"], hidden_size=m["hidden_size"],
                      num_layers=m["num_layers"])
    return CharRNN(cfg).eval()


def measure(browser: Chromium, page: Path, chars: int, repeats: int) -> dict[str, float]:
    t0 = time.perf_counter()
    browser.open(page.as_uri())
    load = time.perf_counter() - t0
    out = {"load_s": load}
    for mode, greedy in (("sample", "false"), ("greedy", "true")):
        rates = []
        for r in range(repeats):
            res = browser.evaluate(f"charlstm.generateFull({PRIME!r}, {{length: {chars}, temperature: 1, seed: {r}, "
                                   f"greedy: {greedy}, stopAtEot: false}})")
            rates.append(res["length"] / res["seconds"])
        out[mode] = max(rates)
    return out


def python_rate(model, vocab: Vocab, chars: int) -> float:
    with cpu_threads(1):
        t0 = time.perf_counter()
        g = generate(model, vocab, vocab.encode(PRIME), SampleOptions(length=chars, seed=1, stop_at_eot=False), threads=1)
        return len(g.samples[0].ids) / (time.perf_counter() - t0)


def _diffs(got: dict, want) -> str:
    """Largest |page - charlstm| over the bounded kinds (h and the gates, in -1..1), and over c
    relative to 1 + |c| (the cell state is unbounded: it reached hundreds in a repetitive text)."""
    bounded = max(float(np.abs(np.asarray(got[k]) - v).max()) for k, v in want.arrays.items() if not k.endswith(".c"))
    cs = [(np.abs(np.asarray(got[k]) - v) / (1 + np.abs(v))).max() for k, v in want.arrays.items() if k.endswith(".c")]
    top = max((float(np.abs(v).max()) for k, v in want.arrays.items() if k.endswith(".c")), default=0.0)
    return f"h and gates {bounded:.1e}" + (f", c {max(cs):.1e} relative (|c| up to {top:.0f})" if cs else "")


def agreement(browser: Chromium, run: str, tmp: str, length: int = 500) -> None:
    """How closely the run's pages follow the run: greedy text and traces (see the module docstring)."""
    m = charlstm.load(run)
    primes = [p for p in PRIMES if not m.vocab.unknown_chars(p)]
    texts = {p: generate(m.module, m.vocab, m.vocab.encode(p), SampleOptions(length=length, greedy=True)).samples[0].text
             for p in primes}
    probe = primes[0] + texts[primes[0]]
    want = trace_text(m.module, m.vocab, probe)
    for dtype in ("float16", "float32"):
        page = write_page(Path(tmp) / f"{dtype}.html", m.module, m.vocab, dtype=dtype).path
        browser.open(page.as_uri())
        same = sum(browser.evaluate(f"charlstm.generate({json.dumps(p)}, {{length: {length}, greedy: true}})") == t
                   for p, t in texts.items())
        got = browser.evaluate(f"charlstm.traceAll({json.dumps(probe)})")
        print(f"{dtype} page of {run}: greedy text identical to charlstm's for {same} of {len(texts)} primes x "
              f"{length} characters; largest trace difference over {len(probe)} characters: {_diffs(got, want)}")
        if dtype == "float16":
            rounded = trace_text(page_model(m.module, "float16"), m.vocab, probe)
            print(f"  the same page against the run with its weights rounded to float16 (page_model): "
                  f"{_diffs(got, rounded)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,small", help="comma-separated presets (default tiny,small)")
    ap.add_argument("--run", default=None, help="also a trained run (name or folder)")
    ap.add_argument("--chars", type=int, default=2000, help="characters per generation (default 2000)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    vocab = Vocab.build_char(Counter({chr(c): 1 for c in range(32, 127)} | {"\n": 1, "\t": 1, "é": 1}))
    models = [(p, preset_model(p, vocab), vocab) for p in args.presets.split(",") if p]
    if args.run:
        m = charlstm.load(args.run)
        models.append((f"run {args.run}", m.module, m.vocab))
    print(f"{'model':<16} {'params':>9} {'page':>8} {'ready':>7} {'sample/s':>9} {'greedy/s':>9} {'python/s':>9}")
    with tempfile.TemporaryDirectory() as tmp, Chromium() as browser:
        for name, model, voc in models:
            page = Path(tmp) / "page.html"
            info = write_page(page, model, voc)
            r = measure(browser, page, args.chars, args.repeats)
            py = python_rate(model, voc, args.chars)
            c = model.cfg
            label = f"{name} ({c.num_layers}x{c.hidden_size})"
            print(f"{label:<16} {info.params:>9,} {info.size / 1e6:>6.2f}MB {r['load_s']:>6.2f}s {r['sample']:>9,.0f} "
                  f"{r['greedy']:>9,.0f} {py:>9,.0f}")
        print(f"{args.chars} characters per generation, best of {args.repeats}; {browser.version}")
        if args.run:
            agreement(browser, args.run, tmp)


if __name__ == "__main__":
    main()
