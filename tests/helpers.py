"""Test helpers: build a tiny run folder without training, so sampling/tracing tests stay fast; and
the one check of what bad input must give on the command line."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

import torch

from charlstm.checkpoint import save_model
from charlstm.runs import BEST, write_config
from charlstm.config import ModelConfig, TrainConfig
from charlstm.model import CharRNN
from charlstm.vocab import Vocab

TEXT = "def f(x):\n    return 'a' + \"b\" # c\nclass K:\n    pass\n"


def make_run(root: Path, name: str = "tiny", cell: str = "lstm", text: str = TEXT, hidden: int = 16,
             layers: int = 2, units: str = "char", seed: int = 0) -> tuple[Path, CharRNN, Vocab]:
    """An untrained (random-weight) run folder at root/name with a char vocabulary of `text`."""
    torch.manual_seed(seed)
    vocab = Vocab.build_char(Counter(text)) if units == "char" else Vocab.build_byte(records=True)
    mcfg = ModelConfig(cell=cell, vocab_size=vocab.size, embed_dim=8, hidden_size=hidden, num_layers=layers)
    model = CharRNN(mcfg).eval()
    path = Path(root) / name
    write_config(path, mcfg, TrainConfig(), {"name": "synthetic-test", "path": "", "meta": {}}, vocab.to_json())
    save_model(path / BEST, model, {"step": 0, "val_bpc": None})
    return path, model, vocab


def make_data_run(root: Path, name: str = "drun", task: str = "counting", num: int = 300, cell: str = "lstm",
                  hidden: int = 8, layers: int = 2, seed: int = 0) -> tuple[Path, CharRNN, Vocab]:
    """An untrained run folder at root/name whose dataset (a synthetic task written with
    charlstm.corpora.synthetic under $CHARLSTM_DATA) has train and val splits, for commands that read
    a split."""
    from charlstm.corpora.synthetic import write_synthetic

    ds = write_synthetic(task, f"{name}-data", num=num, seed=seed)
    torch.manual_seed(seed)
    vocab = ds.vocab
    mcfg = ModelConfig(cell=cell, vocab_size=vocab.size, embed_dim=8, hidden_size=hidden, num_layers=layers,
                       reset_id=vocab.eot_id)
    model = CharRNN(mcfg).eval()
    path = Path(root) / name
    write_config(path, mcfg, TrainConfig(), {"name": ds.name, "path": str(ds.path), "meta": ds.meta}, vocab.to_json())
    save_model(path / BEST, model, {"step": 0, "val_bpc": None})
    return path, model, vocab


def assert_error_line(result, match: str = "") -> str:
    """What bad input must give (a Click CliRunner result): a non-zero exit, no traceback, no
    exception other than the exit, and a last line `Error: ...` containing `match`, on stderr.
    Returns that line."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    err = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert err and err[-1].startswith("Error: ") and match in err[-1], result.output
    return err[-1]


def unavailable(msg: str):
    """Something a test needs is not installed: skip here, but fail under CI (CI=1/true/yes), where
    `.ci/run` installs everything, so a missing piece can never pass as a skip."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


def need(module: str, why: str):
    """Import an optional module, or `unavailable(why)`."""
    try:
        return __import__(module)
    except ImportError:
        unavailable(why)


def need_chromium(what: str) -> str:
    """The path of headless Chromium (charlstm.export.browser.find_chromium), or `unavailable`."""
    from charlstm.export.browser import find_chromium

    return find_chromium() or unavailable(f"headless chromium is not installed (apt-get install -y chromium); {what}")
