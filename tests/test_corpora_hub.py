"""corpora/hub.py without a network: the reachability probe, offline mode for one load, and a hub
name that cannot be loaded failing in seconds with one line (the test machine has no network; with
one, the hub answers that the dataset does not exist, as fast)."""
from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner

from charlstm.cli import main
from charlstm.corpora import hub
from charlstm.dataset import data_root
from charlstm.errors import CharlstmError


def test_probe_sees_an_open_port_a_closed_one_and_gives_up_on_a_slow_lookup(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        open_port = server.getsockname()[1]
        assert hub.hub_reachable(("127.0.0.1", open_port), timeout=2)
    assert not hub.hub_reachable(("127.0.0.1", open_port), timeout=2)  # closed now: refused at once

    def slow(*a, **k):  # a name lookup that hangs: the socket timeout would not bound it
        time.sleep(5)
        raise OSError("too late")

    monkeypatch.setattr(socket, "create_connection", slow)
    t0 = time.perf_counter()
    assert not hub.hub_reachable(("huggingface.co", 443), timeout=0.3)
    assert time.perf_counter() - t0 < 1.5


def test_the_probe_goes_to_the_proxy_when_one_is_set(monkeypatch):
    for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    assert hub.hub_address() == ("huggingface.co", 443)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub.hub_address() == ("proxy.example", 3128)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:8080")
    assert hub.hub_address() == ("proxy.example", 8080)


def test_an_unreachable_hub_loads_offline_and_restores_the_flags(monkeypatch):
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: False)
    before = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    seen = []
    real = datasets.load_dataset

    def load(*a, **k):
        seen.append((constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE))
        return real(*a, **k)

    monkeypatch.setattr(datasets, "load_dataset", load)
    with pytest.raises(CharlstmError) as e:
        with hub.load_hub("charlstm-test/no-such-dataset"):
            pass
    assert str(e.value) == ("cannot load dataset 'charlstm-test/no-such-dataset': huggingface.co cannot be reached "
                            "(no network?) and the dataset is not in the local cache")
    assert seen == [(True, True)] and (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE) == before


@pytest.mark.parametrize("command", ["text", "tweets"])
def test_a_hub_name_that_cannot_be_loaded_fails_in_seconds_with_one_line(command):
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, ["data", command, "--hub", "charlstm-test/no-such-dataset"])
    took = time.perf_counter() - t0
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: cannot load dataset 'charlstm-test/no-such-dataset': ")
    if not hub.hub_reachable():
        assert "(no network?)" in lines[0]
    assert took < 10, f"{took:.1f} s"  # was about 25 s of retries without a network
    assert not data_root().exists()
