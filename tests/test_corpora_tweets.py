"""Tweet corpora: the clinton-trump CSV layout, JSON, JSONL, a local file through `datasets`,
cleaning rules and record splits."""
from __future__ import annotations

import csv
import json

import pytest

from charlstm.corpora.build import EncodeOptions
from charlstm.corpora.tweets import clean_tweets, read_rows, write_tweets
from charlstm.errors import CharlstmError
from charlstm.dataset import data_root

# Invented tweets in the layout of Kaggle's "clinton-trump-tweets" CSV.
HEADER = ["id", "handle", "text", "is_retweet", "original_author", "time", "in_reply_to_screen_name",
          "is_quote_status", "lang", "retweet_count", "favorite_count"]
ROWS = [
    ("1", "HillaryClinton", "Let's build an economy that works for everyone. https://t.co/AbC123", "False", ""),
    ("2", "realDonaldTrump", "Big rally tonight in Ohio!\nSee you there &amp; bring friends 🇺🇸", "False", ""),
    ("3", "HillaryClinton", "RT @timkaine: Proud to stand with @HillaryClinton", "True", "timkaine"),
    ("4", "realDonaldTrump", "Big rally tonight in Ohio!\nSee you there &amp; bring friends 🇺🇸", "False", ""),
    ("5", "realDonaldTrump", "Thank you, Iowa! https://t.co/XyZ789 #MAGA", "False", ""),
    ("6", "realDonaldTrump", "Quoted: \"Crème brûlée\" — a naïve tweet, unmarked retweet", "False", ""),
    ("7", "realDonaldTrump", "RT @someone: an old-style retweet without the flag", "False", ""),
]


def _csv(path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i, h, t, rt, orig in ROWS:
            w.writerow([i, h, t, rt, orig, "2016-09-28T00:22:34", "", "False", "en", "10", "20"])
    return path


def _records(ds) -> list[str]:
    recs = []
    for s in ds.splits:
        text = ds.vocab.decode(ds.split(s))
        assert text == "" or text.endswith("<eot>")
        recs += text.split("<eot>")[:-1]
    return recs


def test_clinton_trump_csv(tmp_path):
    ds = write_tweets(_csv(tmp_path / "tweets.csv"), opts=EncodeOptions(val_frac=0.25))
    assert ds.name == "tweets" and ds.meta["records"] is True
    recs = _records(ds)
    assert sorted(recs) == sorted([
        "Let's build an economy that works for everyone. https://t.co/AbC123",
        "Big rally tonight in Ohio!\nSee you there & bring friends 🇺🇸",
        "Thank you, Iowa! https://t.co/XyZ789 #MAGA",
        "Quoted: \"Crème brûlée\" — a naïve tweet, unmarked retweet",
    ])
    assert ds.meta["stats"]["tweets"] == {"read": 7, "kept": 4, "retweets": 2, "duplicates": 1, "empty": 0,
                                          "other_authors": 0}
    assert ds.meta["stats"]["records_per_split"] == {"train": 3, "val": 1}
    assert ds.meta["source"]["column"] == "text"


def test_handle_and_url_modes(tmp_path):
    src = _csv(tmp_path / "t.csv")
    ds = write_tweets(src, handle="@realdonaldtrump", urls="mask", opts=EncodeOptions(val_frac=0))
    assert ds.name == "realdonaldtrump"
    assert "Thank you, Iowa! <url> #MAGA" in _records(ds) and len(_records(ds)) == 3
    ds = write_tweets(src, "stripped", urls="strip", opts=EncodeOptions(val_frac=0))
    assert "Thank you, Iowa! #MAGA" in _records(ds) and not any("http" in r for r in _records(ds))
    with pytest.raises(CharlstmError, match="no tweets by 'nobody' .*HillaryClinton, realDonaldTrump"):
        write_tweets(src, handle="nobody")


def test_json_jsonl_and_archive_layouts(tmp_path):
    tweets = [{"full_text": "first tweet 😀", "user": {"screen_name": "me"}}, {"full_text": "second tweet"},
              {"full_text": "RT @x: a retweet"}, {"full_text": "first tweet 😀"}]
    (tmp_path / "a.json").write_text(json.dumps(tweets))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(t) for t in tweets) + "\n")
    (tmp_path / "c.js").write_text("window.YTD.tweets.part0 = " + json.dumps([{"tweet": t} for t in tweets]))
    (tmp_path / "d.json").write_text(json.dumps({"data": [t["full_text"] for t in tweets]}))
    for f in ("a.json", "b.jsonl", "c.js", "d.json"):
        ds = write_tweets(tmp_path / f, opts=EncodeOptions(val_frac=0))
        assert sorted(_records(ds)) == ["first tweet 😀", "second tweet"], f
    ds = write_tweets(tmp_path / "a.json", "mine", handle="me", opts=EncodeOptions(val_frac=0))
    assert _records(ds) == ["first tweet 😀"]


def test_hub_reads_a_local_file_through_datasets(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    rows = [{"content": f"tweet number {i}", "is_retweet": i == 3} for i in range(10)]
    (tmp_path / "hub.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = write_tweets(hub=str(tmp_path / "hub.jsonl"), opts=EncodeOptions(val_frac=0.2, seed=1))
    assert ds.name == "hub" and ds.meta["source"]["hub"] == str(tmp_path / "hub.jsonl")
    assert sorted(_records(ds)) == sorted(f"tweet number {i}" for i in range(10) if i != 3)
    assert ds.meta["stats"]["records_per_split"] == {"train": 7, "val": 2}
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary Arrow cache is gone


def test_byte_units_records(tmp_path):
    ds = write_tweets(_csv(tmp_path / "t.csv"), "b", opts=EncodeOptions(units="byte", val_frac=0))
    assert ds.vocab.size == 257 and ds.meta["dtype"] == "uint16" and len(_records(ds)) == 4


def test_clean_tweets_rules():
    rows = [{"text": "  padded  "}, {"text": ""}, {"text": None}, {"text": "https://t.co/x"},
            {"text": "a &lt;b&gt;", "is_retweet": "FALSE"}, {"text": "rt", "is_retweet": "true"},
            {"text": "x", "retweeted_status": {"id": 1}}]
    out, n = clean_tweets(rows, "text", urls="strip")
    assert out == ["padded", "a <b>"]
    assert n == {"read": 7, "kept": 2, "retweets": 2, "duplicates": 0, "empty": 3, "other_authors": 0}
    out, _ = clean_tweets(rows, "text", keep_retweets=True, unescape=False)
    assert out == ["padded", "https://t.co/x", "a &lt;b&gt;", "rt", "x"]


def test_bad_tweet_inputs(tmp_path):
    src = _csv(tmp_path / "t.csv")
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "empty.csv").write_text("text\n")
    (tmp_path / "rts.csv").write_text('text\n"RT @a: x"\n')
    cases = [(dict(source=tmp_path / "missing.csv"), "no such file"),
             (dict(source=src, column="nope"), "no column 'nope'"),
             (dict(source=tmp_path / "bad.json"), "not valid JSON"),
             (dict(source=tmp_path / "empty.csv"), "no tweets in"),
             (dict(source=tmp_path / "rts.csv"), "no tweets left after cleaning .*1 retweets"),
             (dict(hub=str(tmp_path / "missing.jsonl")), "no such file"),
             (dict(hub=str(tmp_path / "bad.json")), "cannot load dataset"),
             (dict(), "give a tweets file or --hub")]
    for kw, msg in cases:
        with pytest.raises(CharlstmError, match=msg):
            write_tweets(**kw)
    assert not data_root().exists()
    assert read_rows(src)[1]["text"].startswith("Big rally tonight in Ohio!\nSee")  # quoted newline survives


def test_malformed_csv_is_an_error_naming_the_line(tmp_path):
    cases = {
        # an unquoted comma: the columns no longer line up
        "handle,text,is_retweet\nme,fine,False\nme,hello, world,False\n":
            "line 3: 4 fields but the header has 3; quote the field that holds a delimiter",
        # a quote never closed would swallow the rest of the file into one tweet
        'handle,text\nme,first\nme,"second\nyou,third\nyou,fourth\n':
            "line 3: a quoted field is never closed (it would run to the end of the file)",
        # text after a closing quote was silently glued on before
        'handle,text\nme,first\n\nme,"a"b\n': "line 4: not valid CSV (',' expected after '\"')",
    }
    for raw, fragment in cases.items():
        (tmp_path / "bad.csv").write_text(raw)
        with pytest.raises(CharlstmError) as e:
            write_tweets(tmp_path / "bad.csv")
        assert str(e.value).startswith(f"{tmp_path / 'bad.csv'}, {fragment}"), str(e.value)
    assert not data_root().exists()


def test_csv_quoting_and_short_rows_are_read_as_before(tmp_path):
    (tmp_path / "ok.csv").write_text('handle,text\r\nme,"multi\r\nline, with ""quotes"""\r\nyou\r\n'
                                     'me,plain "inner" quotes\r\n')
    assert read_rows(tmp_path / "ok.csv") == [{"handle": "me", "text": 'multi\nline, with "quotes"'},
                                               {"handle": "you", "text": None},  # a short row: missing is empty
                                               {"handle": "me", "text": 'plain "inner" quotes'}]
