"""The exported page in a real browser (Debian's headless chromium, driven by charlstm.export.browser):
for briefly trained models, greedy generation in the page equals `charlstm sample --greedy` and its
traces equal `charlstm trace`, for lstm, gru, rnn and peephole, char and byte models, running text
and records; the page's UI streams coloured text; corpus text stays text.

Why the runs are rounded to float16 first: the page holds float16 weights and computes in float64,
so it runs exactly the model whose weights are those float16 values (charlstm.export.page_model).
`charlstm sample` of that rounded run then differs from the page only by float32 vs float64
arithmetic (~1e-6 in the logits), far below the margins of a trained model's argmax, which the tests
check along every greedy path (so a failure is a real difference, not a near-tie). The traces are
also compared with the unrounded run, to bound what float16 weights cost (1e-3).

Without chromium the tests fail under CI (CI=true) and skip elsewhere.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import charlstm
from charlstm.checkpoint import save_model
from charlstm.cli import main
from charlstm.config import ModelConfig, TrainConfig
from charlstm.corpora.build import EncodeOptions
from charlstm.corpora.synthetic import write_synthetic
from charlstm.corpora.text import write_text
from charlstm.export.browser import Chromium
from charlstm.export.page import page_model
from charlstm.runs import BEST
from charlstm.runtime import cpu_threads
from charlstm.trace import load_trace
from charlstm.train import train

from helpers import make_run, need_chromium

pytestmark = pytest.mark.browser

PROSE = (
    "The river runs past the mill and under the old stone bridge.\n"
    "In the morning the baker opens the shop and the street smells of bread.\n"
    "Children walk to school along the river, counting the boats.\n"
    "At noon the bridge is busy; at night it is quiet again, and the mill stops.\n"
    "The miller says the river was higher when he was young, and nobody argues.\n"
)
ACCENTS = ("Le café est fermé le lundi; à midi, on déjeune près de la fenêtre.\n"
           "Über den Fluß führt eine Brücke, und die Straße ist schmal.\n"
           "¿Dónde está la estación? — Al final de la calle, señor.\n")
PAYLOAD = "<script>document.documentElement.setAttribute('data-pwned','1')</script>" \
          "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','2')\"><!--"


def _chromium() -> str:
    return need_chromium("the page's browser tests need it")


@pytest.fixture(scope="module")
def browser():
    with Chromium(_chromium()) as b:
        yield b


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _train(ds, run: Path, cell: str, hidden: int, layers: int, steps: int) -> Path:
    tcfg = TrainConfig(batch_size=16, seq_len=32, lr=1e-2, min_lr=1e-3, warmup_steps=10, max_steps=steps,
                       eval_every=steps, log_every=50, sample_chars=0, device="cpu")
    with cpu_threads(1):
        train(ds, run, ModelConfig(cell=cell, hidden_size=hidden, embed_dim=16, num_layers=layers), tcfg, quiet=True)
    return run


def _rounded(run: Path) -> Path:
    """A copy of the run whose weights are rounded to float16: the model the page computes with."""
    out = run.with_name(run.name + "-f16")
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("last.safetensors"))
    save_model(out / BEST, page_model(charlstm.load(run).module, "float16"), {"step": 0, "val_bpc": None})
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Briefly trained runs (a few seconds each on one CPU thread): prose with lstm, gru and rnn;
    accented prose as bytes; the counting task as records. Each with its float16-rounded copy."""
    root = tmp_path_factory.mktemp("page-runs")
    (root / "prose.txt").write_text(PROSE * 3, encoding="utf-8")
    prose = write_text([root / "prose.txt"], "prose", data_dir=root / "data")
    (root / "accents.txt").write_text(ACCENTS * 4, encoding="utf-8")
    accents = write_text([root / "accents.txt"], "accents", data_dir=root / "data",
                         opts=EncodeOptions(units="byte"))
    counting = write_synthetic("counting", num=600, seed=1, data_dir=root / "data")
    out = {}
    for cell in ("lstm", "gru", "rnn"):
        out[cell] = _train(prose, root / cell, cell, hidden=48, layers=2, steps=250)
    out["byte"] = _train(accents, root / "byte", "gru", hidden=64, layers=1, steps=250)
    out["records"] = _train(counting, root / "records", "lstm", hidden=10, layers=1, steps=300)
    return {**out, **{f"{k}-f16": _rounded(v) for k, v in out.items()}}


def _export(run: Path, tmp_path: Path, *args) -> Path:
    page = tmp_path / f"{run.name}.html"
    r = invoke("export", run, "--html", page, *args)
    assert r.exit_code == 0, r.output
    assert re.match(rf"wrote {re.escape(str(page))} \(\d+\.\d (kB|MB): [\d,]+ parameters as float(16|32); open it", r.stdout)
    return page


def _cli_greedy(run: Path, prime: str, length: int) -> tuple[str, str]:
    r = CliRunner(env={"CHARLSTM_QUIET": "0"}).invoke(main, ["sample", str(run), "--prime", prime, "--greedy",
                                                          "--length", str(length)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(prime) and r.stdout.endswith("\n")
    reason = re.search(r"ended by (\w+)", r.stderr).group(1)
    return r.stdout[len(prime):-1], reason


def _margins(run: Path, prime: str, text: str) -> float:
    """The smallest gap between the best and the second-best logit (<unk> excluded) at every step of a
    greedy path, in the rounded model: how far the path is from a tie."""
    m = charlstm.load(run)
    ids = m.module.context(m.encode(prime).tolist()) or [m.vocab.eot_id]
    gen = m.encode(text).tolist()
    with torch.no_grad():
        logits, _ = m.module.read(torch.tensor([ids + gen]))
    lg = logits[0, len(ids) - 1:].clone()  # the steps that chose each character of text, and the one after
    if m.vocab.unk_id is not None:
        lg[:, m.vocab.unk_id] = float("-inf")
    top = lg.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).min())


def _trace_diff(got: dict, run: Path, text: str, tmp_path: Path) -> float:
    """The largest |difference| between the page's traceAll and `charlstm trace RUN --text text`."""
    npz = tmp_path / f"{run.name}.npz"
    r = invoke("trace", run, "--text", text, "-o", npz, "-q")
    assert r.exit_code == 0, r.output
    want = load_trace(npz)
    assert set(got) == set(want.arrays)
    worst = max(float(np.abs(np.array(got[k]) - want.arrays[k]).max()) for k in want.arrays)
    print(f"trace {run.name}: largest difference {worst:.2e}")
    return worst


def _page_generate(browser, page: Path, prime: str, length: int, **opts) -> dict:
    browser.open(page.as_uri())
    o = json.dumps({"length": length, "greedy": True, **opts})
    return browser.evaluate(f"charlstm.generateFull({json.dumps(prime)}, {o})")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_greedy_page_equals_charlstm_sample_and_traces_equal_charlstm_trace(cell, runs, browser, tmp_path):
    run = runs[f"{cell}-f16"]
    page = _export(run, tmp_path)
    for prime in ("The river", "At noon"):
        want, reason = _cli_greedy(run, prime, 300)
        got = _page_generate(browser, page, prime, 300)
        assert reason == "length" and len(want) == 300, (reason, want)
        assert _margins(run, prime, want[:-1]) > 1e-4, "the greedy path passes a near-tie: pick another prime"
        assert got["text"] == want, f"first difference at {next(i for i, (a, b) in enumerate(zip(got['text'], want)) if a != b)}"
        assert got["stopReason"] == "length" and len(got["ids"]) == 300
    assert browser.evaluate("document.documentElement.getAttribute('data-errors')") == "0"

    # traces: every unit of every kind against `charlstm trace`: the float16 page against the rounded
    # run (the same weights), a float32 page against the trained run itself
    text = PROSE[:160]
    got = browser.evaluate(f"charlstm.traceAll({json.dumps(text)})")
    assert _trace_diff(got, run, text, tmp_path) < 1e-3
    # one unit at a time gives the same values as the whole trace
    col = browser.evaluate(f"charlstm.trace({json.dumps(text)}, {{unit: 'layer1.h:5'}})")
    assert col == [row[5] for row in got["layer1.h"]]
    browser.open(_export(runs[cell], tmp_path, "--dtype", "float32").as_uri())
    assert _trace_diff(browser.evaluate(f"charlstm.traceAll({json.dumps(text)})"), runs[cell], text, tmp_path) < 1e-3


def test_byte_model_page_decodes_utf8_like_charlstm_sample(runs, browser, tmp_path):
    run = runs["byte-f16"]
    page = _export(run, tmp_path)
    for prime in ("Le café", "Über"):
        want, reason = _cli_greedy(run, prime, 300)
        got = _page_generate(browser, page, prime, 300)
        assert reason == "length" and len(want.encode("utf-8")) >= 200
        assert re.search(r"[^\x00-\x7f]", want), "the test wants multi-byte characters in the text"
        assert _margins(run, prime, want[:-1]) > 1e-4
        assert got["text"] == want and len(got["ids"]) == 300
    text = ACCENTS[:80]
    npz = tmp_path / "byte.npz"
    assert invoke("trace", run, "--text", text, "-o", npz, "-q").exit_code == 0
    want = load_trace(npz)
    got = browser.evaluate(f"charlstm.traceAll({json.dumps(text)})")
    assert len(got["layer0.h"]) == len(text.encode("utf-8"))  # one row per byte
    assert max(float(np.abs(np.array(got[k]) - want.arrays[k]).max()) for k in want.arrays) < 1e-5


def test_records_model_page_follows_the_records_rule_and_stops_at_eot(runs, browser, tmp_path):
    run = runs["records-f16"]
    page = _export(run, tmp_path)
    stopped = 0
    # "": the page starts a record from <eot> like charlstm sample; "...<eot>...": read from zero
    for prime in ("aaaX", "aaaaaaX", "aaXbb<eot>aaaaX", "bbbb<eot>aX", ""):
        want, reason = _cli_greedy(run, prime, 60)
        got = _page_generate(browser, page, prime, 60)
        assert got["text"] == want and got["stopReason"] == reason, (prime, got, want, reason)
        stopped += reason == "eot"
    assert stopped >= 3, "the model should end most counting records at <eot>"
    # not stopping at <eot>: the symbol is written, and the next record starts from the zero state
    got = _page_generate(browser, page, "aaX", 40, stopAtEot=False)
    want = charlstm.load(run).generate("aaX", length=40, greedy=True, stop_at_eot=False)
    assert got["text"] == want and "<eot>" in want
    # the trace reads the text as the start of a record and each <eot> from the zero state
    text = "aaXbb<eot>aaaXbbb<eot>bbbbbXa"
    npz = tmp_path / "records.npz"
    assert invoke("trace", run, "--text", text, "-o", npz, "-q").exit_code == 0
    want_tr = load_trace(npz)
    got_tr = browser.evaluate(f"charlstm.traceAll({json.dumps(text)})")
    assert max(float(np.abs(np.array(got_tr[k]) - want_tr.arrays[k]).max()) for k in want_tr.arrays) < 1e-5


def test_peephole_page_matches_the_explicit_cell(browser, tmp_path):
    path, module, vocab = make_run(tmp_path, name="peep", cell="peephole", hidden=24, layers=2, seed=3)
    rounded = page_model(module, "float16")
    save_model(path / BEST, rounded, {"step": 0, "val_bpc": None})
    page = _export(path, tmp_path)
    prime = "def f(x):\n"
    want, _ = _cli_greedy(path, prime, 120)
    got = _page_generate(browser, page, prime, 120)
    assert got["text"] == want
    npz = tmp_path / "peep.npz"
    assert invoke("trace", path, "--text", prime * 3, "-o", npz, "-q").exit_code == 0
    want_tr = load_trace(npz)
    got_tr = browser.evaluate(f"charlstm.traceAll({json.dumps(prime * 3)})")
    assert max(float(np.abs(np.array(got_tr[k]) - want_tr.arrays[k]).max()) for k in want_tr.arrays) < 1e-5


def test_greedy_never_writes_unk_and_takes_the_first_of_equal_maxima(browser, tmp_path):
    path, module, vocab = make_run(tmp_path, name="ties", hidden=16, layers=1)
    j, k = vocab.encode("ab").tolist()
    with torch.no_grad():
        module.head.bias[vocab.unk_id] = 100.0  # the most likely symbol, never to be written
        module.head.weight[k] = module.head.weight[j]
        module.head.bias[j] = module.head.bias[k] = 50.0  # j and k tie, always, ahead of the rest
    save_model(path / BEST, page_model(module, "float16"), {"step": 0, "val_bpc": None})
    want, _ = _cli_greedy(path, "def", 30)
    assert want == "a" * 30
    assert _page_generate(browser, _export(path, tmp_path), "def", 30)["text"] == want


def test_sampling_options_and_errors_in_the_page(runs, browser, tmp_path):
    page = _export(runs["lstm"], tmp_path)
    browser.open(page.as_uri())
    ev = browser.evaluate
    a = ev("charlstm.generateFull('The', {length: 120, temperature: 0.8, seed: 7})")
    b = ev("charlstm.generateFull('The', {length: 120, temperature: 0.8, seed: 7})")
    c = ev("charlstm.generateFull('The', {length: 120, temperature: 0.8, seed: 8})")
    assert a["text"] == b["text"] and a["seed"] == 7 and a["text"] != c["text"]
    # top-k 1 is greedy
    greedy = ev("charlstm.generate('The', {length: 80, greedy: true})")
    assert ev("charlstm.generate('The', {length: 80, topK: 1, temperature: 1.7, seed: 3})") == greedy
    # streaming: onText receives the text piece by piece
    pieces = ev("(async () => { const p = []; await charlstm.generate('The', {length: 50, greedy: true, "
                "onText: x => p.push(x)}); return p; })()")
    assert "".join(pieces) == greedy[:50] and len(pieces) == 50

    def error(js: str) -> str:
        return ev(f"(async () => {{ try {{ await {js}; return 'no error'; }} catch (e) {{ return e.message; }} }})()")

    assert error("charlstm.generate('naïve →', {length: 5})") == \
        "2 character(s) not in the model's vocabulary: 'ï' at 2, '→' at 6; use unknown: 'skip' or 'replace'"
    assert ev("charlstm.generate('na→ive', {length: 0, unknown: 'skip'})") == ""
    assert error("charlstm.generate('The', {temperature: 0})").startswith("temperature must be a positive number")
    assert error("charlstm.generate('The', {length: -1})").startswith("length must be a whole number")
    assert error("charlstm.generate('The', {topK: 0.5})").startswith("top-k must be a whole number")
    assert error("charlstm.trace('The', {unit: 'layer5.c:0'})").startswith("cannot read unit 'layer5.c:0'")
    assert error("charlstm.trace('')") == "nothing to trace: the text is empty"
    assert ev("document.documentElement.getAttribute('data-errors')") == "0"


def test_the_page_streams_coloured_text_and_keeps_corpus_text_as_text(tmp_path, browser):
    text = "def f(x):\n    return 'a' + \"b\" # c\n" + PAYLOAD + "\n"
    path, module, vocab = make_run(tmp_path, name="html", text=text, hidden=16, layers=2)
    page = tmp_path / "page.html"
    r = invoke("export", path, "--html", page, "--title", "t <script>alert(1)</script>", "--prime", PAYLOAD,
               "--unit", "layer0.h:3")
    assert r.exit_code == 0, r.output
    source = page.read_text(encoding="utf-8")
    assert "<img" not in source and source.count("<script") == 3  # the error counter, the data, the program
    browser.open(page.as_uri())
    ev = browser.evaluate
    assert ev("document.title") == "t <script>alert(1)</script>"
    assert ev("document.getElementById('prime').value") == PAYLOAD
    assert ev("document.documentElement.getAttribute('data-selected')") == "layer0.h:3"
    ev("document.getElementById('length').value = 40; document.getElementById('greedy').checked = true")
    res = ev("charlstm.generateInPage()")
    shown = ev("Array.from(document.querySelectorAll('#text span')).map(s => s.textContent).join('')")
    assert shown.replace("↵", "\n") == PAYLOAD + res["text"]
    assert ev("document.querySelectorAll('#text img').length") == 0
    assert ev("document.documentElement.getAttribute('data-pwned')") is None
    colours = ev("Array.from(document.querySelectorAll('#text span')).map(s => s.style.backgroundColor)")
    assert len(colours) == len(PAYLOAD) + len(res["text"]) and all(c.startswith("rgb(") for c in colours)
    # the colours are the unit's values: the trace of prime + generated text, through the colour map
    values = ev(f"charlstm.trace({json.dumps(PAYLOAD + res['text'])})")
    expect = [f"rgb({r}, {g}, {b})" for r, g, b in _rgb(values)]
    assert colours == expect
    status = ev("document.getElementById('status').textContent")
    assert re.match(r"greedy · 40 characters in \d+\.\d\d s \([\d,]+/s\) · ended by length", status), status
    # picking another unit recolours the text
    ev("charlstm.select('layer1.c:2')")
    assert ev("document.documentElement.getAttribute('data-selected')") == "layer1.c:2"
    assert ev("Array.from(document.querySelectorAll('#text span')).map(s => s.style.backgroundColor)") != colours
    # a prime the model cannot read: one error line in the page, no exception
    ev("document.getElementById('prime').value = 'z→'")
    assert ev("charlstm.generateInPage()") is None
    assert ev("document.getElementById('status').textContent").startswith("Error: 2 character(s) not in the model's vocabulary")
    assert ev("document.documentElement.getAttribute('data-errors')") == "0"


def _rgb(values):
    """charlstm.viz.colors for an h unit (the value itself)."""
    from charlstm.viz.colors import rgb

    return [rgb(v) for v in values]
