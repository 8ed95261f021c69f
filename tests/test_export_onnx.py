"""The ONNX step (charlstm.export.onnx) in onnxruntime against the PyTorch model, every cell: logits
within 1e-4 step after step with the state carried, the records rule inside the graph, the metadata,
and `charlstm export --onnx`.

onnx and onnxruntime are the optional extra charlstm[export] (the dev extra installs them): without
them these tests fail under CI (CI=true) and skip elsewhere.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import charlstm
from charlstm.checkpoint import save_model
from charlstm.cli import main
from charlstm.config import ModelConfig, TrainConfig
from charlstm.runs import BEST, read_config, write_config
from charlstm.export.onnx import check_onnx, export_onnx
from charlstm.vocab import Vocab

from helpers import make_run, need


def _need(name: str):
    return need(name, f"{name} is not installed (pip install 'charlstm[export]'); the ONNX tests need it")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ort():
    _need("onnx")
    return _need("onnxruntime")


def _session(ort, path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole"])
def test_onnx_step_equals_the_pytorch_step(cell, ort, tmp_path):
    _, model, vocab = make_run(tmp_path, cell=cell, hidden=24, layers=2, seed=1)
    path = export_onnx(tmp_path / "m.onnx", model, vocab)
    sess = _session(ort, path)
    names = [i.name for i in sess.get_inputs()]
    assert names == (["ids", "h", "c"] if cell in ("lstm", "peephole") else ["ids", "h"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "h_out", "c_out"][:len(names)]
    rng = np.random.default_rng(0)
    rows, steps = 3, 40
    ids = rng.integers(0, vocab.size, size=(rows, steps))
    state = model.init_state(rows)
    feed = [s.numpy() for s in state]
    worst = 0.0
    with torch.no_grad():
        for t in range(steps):
            logits, state = model(torch.from_numpy(ids[:, t:t + 1]), state)
            got = sess.run(None, dict(zip(names, [ids[:, t], *feed])))
            worst = max(worst, float(np.abs(got[0] - logits[:, 0].numpy()).max()))
            for g, s in zip(got[1:], state):
                assert np.abs(g - s.numpy()).max() < 1e-4
            feed = got[1:]
    assert worst < 1e-4, worst


def test_the_records_rule_is_inside_the_step(ort, tmp_path):
    _, model, vocab = make_run(tmp_path, hidden=16, layers=2)
    model.cfg.reset_id = vocab.eot_id
    path = export_onnx(tmp_path / "r.onnx", model, vocab)
    sess = _session(ort, path)
    rng = np.random.default_rng(1)
    h, c = (rng.normal(size=(2, 2, 16)).astype(np.float32) for _ in range(2))
    ids = np.array([vocab.eot_id, vocab.encode("d")[0]])
    got = sess.run(None, {"ids": ids, "h": h, "c": c})
    zero = sess.run(None, {"ids": ids, "h": np.zeros_like(h), "c": np.zeros_like(c)})
    # row 0 reads <eot> from the zero state whatever it carried; row 1 carries its state
    assert np.array_equal(got[0][0], zero[0][0]) and not np.allclose(got[0][1], zero[0][1])
    chk = check_onnx(path, model, steps=32)  # model.read, with <eot> mid-sequence
    assert chk.max_logit_diff < 1e-4 and chk.max_state_diff < 1e-4
    # a graph without the rule would not pass that check
    model.cfg.reset_id = None
    plain = export_onnx(tmp_path / "plain.onnx", model, vocab)
    model.cfg.reset_id = vocab.eot_id
    assert check_onnx(plain, model, steps=32).max_logit_diff > 1e-2


def test_the_file_carries_the_vocabulary_and_the_rules(ort, tmp_path):
    onnx = _need("onnx")
    _, model, vocab = make_run(tmp_path, cell="gru", units="byte", hidden=8, layers=1)
    proto = onnx.load(str(export_onnx(tmp_path / "m.onnx", model, vocab)))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["charlstm.format"] == "charlstm-onnx-step" and meta["charlstm.cell"] == "gru"
    assert meta["charlstm.units"] == "byte" and meta["charlstm.eot_id"] == "256" and meta["charlstm.unk_id"] == ""
    assert meta["charlstm.reset_id"] == "" and meta["charlstm.start_id"] == "256"
    assert meta["charlstm.inputs"] == "ids,h" and meta["charlstm.outputs"] == "logits,h_out"
    assert Vocab.from_json(meta["charlstm.tokenizer"]) == vocab


def test_cli_export_onnx(ort, tmp_path):
    make_run(tmp_path / "checkpoints", cell="lstm")
    out = tmp_path / "m.onnx"
    r = CliRunner(env={"CHARLSTM_QUIET": "0"}).invoke(main, ["export", "tiny", "--onnx", str(out)])
    assert r.exit_code == 0, r.output
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \(\d+\.\d kB: one step, inputs and outputs in docs/formats.md\)\n",
                        r.stdout)
    m = re.fullmatch(r"checked with onnxruntime: 64 steps x 2 rows, largest \|logit difference\| from PyTorch "
                     r"(\S+), state (\S+)\n", r.stderr)
    assert m and float(m.group(1)) < 1e-4 and float(m.group(2)) < 1e-4, r.stderr
    assert json.loads({p.key: p.value for p in _need("onnx").load(str(out)).metadata_props}["charlstm.tokenizer"])


@pytest.mark.parametrize("records", [False, True])
def test_scripts_onnx_generate_writes_what_charlstm_sample_writes(records, ort, tmp_path):
    """The docs' portable generator (onnxruntime, numpy and tokenizers only) against charlstm."""
    path, model, vocab = make_run(tmp_path, cell="gru", hidden=24, layers=2, seed=4)
    if records:  # a model of records: <eot> first, and a sample may end at <eot>
        cfg = read_config(path)
        model.cfg.reset_id = vocab.eot_id
        write_config(path, ModelConfig(**{**cfg["model"], "reset_id": vocab.eot_id}), TrainConfig(),
                     cfg["dataset"], vocab.to_json())
        save_model(path / BEST, model, {"step": 0, "val_bpc": None})
    export_onnx(tmp_path / "m.onnx", model, vocab)
    script = Path(__file__).resolve().parents[1] / "scripts" / "onnx_generate.py"
    for prime in ("def ", "", "return 'a' + "):
        r = subprocess.run([sys.executable, str(script), str(tmp_path / "m.onnx"), "--prime", prime, "--length", "80"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        want = charlstm.load(path).generate(prime, length=80, greedy=True)
        assert r.stdout == prime + want + "\n"
