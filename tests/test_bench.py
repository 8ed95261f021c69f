"""charlstm bench: the machinery runs end to end at minuscule sizes and its JSON is well formed.

No test asserts a speed (the machine is shared; timings are not test material): only that every
rate is a positive finite number, the ratios are present and consistent, and the CLI writes it all.
"""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from click.testing import CliRunner

from charlstm import bench
from charlstm.cli import main
from charlstm.config import ModelConfig
from charlstm.errors import CharlstmError
from charlstm.model import CharRNN

TINY = dict(device="cpu", quick=True, presets=["tiny"], threads=1, matmul_n=64, bandwidth_mb=4, sample_chars=24,
            trace_chars=100, encode_mb=0.05, data_chars=20_000,
            model_overrides={"hidden_size": 8, "embed_dim": 4, "batch_size": 4, "seq_len": 8})


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def result():
    threads = torch.get_num_threads()
    try:
        return bench.run_bench(bench.BenchOptions(**TINY))
    finally:
        torch.set_num_threads(threads)


def test_bench_json_structure_and_sanity(result):
    r = json.loads(json.dumps(result))  # JSON-ready: no tensors, numpy scalars or paths
    assert r["format"] == "charlstm-bench" and r["version"] == 1 and r["quick"] is True
    assert r["device"]["type"] == "cpu" and r["device"]["threads"] == 1
    m = r["machine"]
    for k in ("matmul_flops_fp32", "matmul_flops_bf16", "memory_bandwidth", "bf16_over_fp32"):
        assert positive(m[k]), k
    assert m["bf16_over_fp32"] == pytest.approx(m["matmul_flops_bf16"] / m["matmul_flops_fp32"])
    assert positive(r["encoding"]["mb_per_s"]) and positive(r["encoding"]["peak_memory_mb"])
    [p] = r["presets"]
    assert p["preset"] == "tiny" and (p["num_layers"], p["hidden_size"], p["batch_size"], p["seq_len"]) == (2, 8, 4, 8)
    t = p["train"]
    for k in ("charlstm_chars_per_s", "bare_chars_per_s", "ratio", "mfu", "bare_mfu", "peak_memory_mb"):
        assert positive(t[k]), k
    assert t["ratio"] == pytest.approx(t["charlstm_chars_per_s"] / t["bare_chars_per_s"])
    assert t["mfu"] == pytest.approx(t["charlstm_chars_per_s"] * p["train_flops_per_char"] / m["matmul_flops_fp32"])
    s = p["sample"]
    for b in (1, 64):
        assert positive(s[f"batch{b}_chars_per_s"]) and positive(s[f"batch{b}_stream_limit"])
        assert s[f"batch{b}_of_limit"] == pytest.approx(s[f"batch{b}_chars_per_s"] / s[f"batch{b}_stream_limit"])
    assert s["batch64_stream_limit"] == pytest.approx(64 * s["batch1_stream_limit"])
    assert positive(p["trace"]["chars_per_s"])
    assert positive(r["seconds"]) and positive(r["peak_rss_mb"])


def test_report_names_every_measurement(result):
    text = bench.format_report(result)
    for word in ("matmul", "bf16", "memory bandwidth", "encoding", "tiny", "bare nn.LSTM", "MFU", "sample b=1",
                 "sample b=64", "stream limit", "trace chars/s"):
        assert word in text, word


def test_model_arithmetic_counts_the_matmul_weights():
    m = ModelConfig(cell="lstm", vocab_size=50, embed_dim=10, hidden_size=20, num_layers=3)
    model = CharRNN(m)
    weights = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("rnn.weight", "head.weight")))
    assert bench.matmul_params(m) == weights
    assert bench.train_flops_per_char(m) == 6 * weights
    # sampling reads W_hh of every layer, W_ih of layers >= 1 and the head, 4 bytes each
    assert bench.sample_weight_bytes(m) == 4 * (weights - 4 * 20 * 10)
    g = dataclasses.replace(m, cell="gru")
    assert bench.matmul_params(g) == sum(p.numel() for n, p in CharRNN(g).named_parameters()
                                         if n.startswith(("rnn.weight", "head.weight")))


def test_log_interval_follows_step_time():
    assert bench.log_every_for(0.001, 2.0) == 10  # fast steps: train's default interval
    assert bench.log_every_for(0.5, 2.0) == 4
    assert bench.log_every_for(30.0, 2.0) == 1


def test_scaling_rows(tmp_path):
    threads = torch.get_num_threads()
    try:
        s = bench.run_scaling("cpu", axes={"hidden_size": [4, 8], "seq_len": [4]}, quick=True, threads=1,
                              base={"hidden_size": 4, "embed_dim": 4, "num_layers": 1, "batch_size": 2, "seq_len": 8})
    finally:
        torch.set_num_threads(threads)
    assert [(r["axis"], r["value"]) for r in s["rows"]] == [("hidden_size", 4), ("hidden_size", 8), ("seq_len", 4)]
    assert all(positive(r["charlstm_chars_per_s"]) and positive(r["bare_chars_per_s"]) for r in s["rows"])
    assert "| hidden_size = 8 |" in bench.format_scaling(s)


def test_unknown_preset_and_missing_gpu_are_clear_errors():
    with pytest.raises(CharlstmError, match="unknown preset 'huge'"):
        bench.run_bench(bench.BenchOptions(**{**TINY, "presets": ["huge"]}))
    if not torch.cuda.is_available():
        with pytest.raises(CharlstmError, match="no CUDA GPU"):
            bench.run_bench(bench.BenchOptions(**{**TINY, "device": "cuda"}))


def test_cli_prints_the_tables_and_writes_json(tmp_path, monkeypatch):
    real = bench.run_bench

    def tiny(opts, say=None):  # the CLI's options, shrunk to test size
        assert opts.quick and opts.device == "cpu" and list(opts.presets) == ["tiny"]
        return real(dataclasses.replace(opts, **{k: v for k, v in TINY.items() if k not in ("device", "quick", "presets")}), say)

    monkeypatch.setattr(bench, "run_bench", tiny)
    out = tmp_path / "b.json"
    threads = torch.get_num_threads()
    try:
        r = CliRunner().invoke(main, ["bench", "--device", "cpu", "--quick", "--presets", "tiny", "--json", str(out), "-q"])
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    assert "charlstm chars/s" in r.output and f"wrote {out}" in r.output
    data = json.loads(out.read_text())
    assert data["presets"][0]["preset"] == "tiny"


def test_cli_scaling_axes_and_base_reach_the_table(tmp_path, monkeypatch):
    seen = {}
    real = bench.run_scaling

    def spy(device, axes=None, base=None, quick=False, threads=None, say=None):
        seen.update(axes=axes, base=base)
        return real(device, axes=axes, base=base, quick=quick, threads=threads, say=say)

    monkeypatch.setattr(bench, "run_scaling", spy)
    out = tmp_path / "s.json"
    threads = torch.get_num_threads()
    try:
        r = CliRunner().invoke(main, ["bench", "--scaling", "--device", "cpu", "--quick", "--threads", "1", "-q",
                                      "--base", "num_layers=1", "--base", "hidden_size=4", "--base", "embed_dim=4",
                                      "--base", "batch_size=2", "--base", "seq_len=8",
                                      "--axis", "hidden_size=4,8", "--axis", "seq_len=4", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    assert seen == {"axes": {"hidden_size": [4, 8], "seq_len": [4]},
                    "base": {"num_layers": 1, "hidden_size": 4, "embed_dim": 4, "batch_size": 2, "seq_len": 8}}
    data = json.loads(out.read_text())
    assert [(row["axis"], row["value"], row["num_layers"]) for row in data["rows"]] == \
        [("hidden_size", 4, 1), ("hidden_size", 8, 1), ("seq_len", 4, 1)]
    assert "| hidden_size = 8 | 1x8 |" in r.output


@pytest.mark.parametrize("args, message", [
    (["--axis", "batch_size=8"], "--axis and --base shape the scaling table: add --scaling"),
    (["--scaling", "--axis", "batch_size"], "cannot read --axis 'batch_size': use NAME=V1,V2,..."),
    (["--scaling", "--axis", "batch_size=8,x"], "cannot read --axis 'batch_size=8,x'"),
    (["--scaling", "--base", "seq_len=8,16"], "--base seq_len takes one value, got 2"),
    (["--scaling", "--axis", "width=8"], "unknown scaling axis 'width'; choose from num_layers, hidden_size"),
    (["--scaling", "--base", "depth=2"], "unknown scaling base 'depth'"),
    (["--scaling", "--axis", "seq_len=0"], "scaling axis seq_len needs whole numbers >= 1, got 0"),
])
def test_cli_scaling_options_bad_input_is_one_line(args, message):
    r = CliRunner().invoke(main, ["bench", "--device", "cpu", *args])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and message in r.output, r.output
    assert r.output.count("\n") == 1 and "Traceback" not in r.output
