"""scripts/make_tweet_corpus.py: fortune files -> a tweets CSV that `charlstm data tweets` reads."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from charlstm.cli import main
from charlstm.dataset import open_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_tweet_corpus.py"


def test_fortunes_become_tweet_records(tmp_path):
    d = tmp_path / "fortunes"
    d.mkdir()
    (d / "wisdom").write_text("Look before\nyou leap.\n%\n\t-- Old proverb\n%\n" + "x" * 300 + "\n%\n"
                              "_\bb_\bo_\bl_\bd and B\bBO\bOL\bLD\bD\n%\n", encoding="utf-8")
    (d / "wisdom.dat").write_bytes(b"\x00\x01binary index")
    (d / "wisdom.u8").symlink_to(d / "wisdom")
    out = tmp_path / "f.csv"
    subprocess.run([sys.executable, str(SCRIPT), "--dir", str(d), "--csv", str(out), "--no-encode"], check=True)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    # the 300-character fortune is over a tweet's length; overstriking and tabs are cleaned away;
    # the .dat index and the .u8 link are not read
    assert [r["text"] for r in rows] == ["Look before\nyou leap.", "-- Old proverb", "bold and BOLD"]
    assert {r["handle"] for r in rows} == {"wisdom"} and {r["is_retweet"] for r in rows} == {"False"}
    res = CliRunner().invoke(main, ["data", "tweets", str(out), "--name", "fort", "--val-frac", "0.34"])
    assert res.exit_code == 0, res.output
    ds = open_dataset("fort")
    assert ds.meta["records"] and ds.meta["stats"]["tweets"]["kept"] == 3


def test_a_missing_folder_says_how_to_get_it(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(tmp_path / "nope"), "--no-encode"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "apt-get install fortunes" in r.stderr and "Traceback" not in r.stderr
