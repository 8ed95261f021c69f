"""Corpus sources -> datasets. One module per source, all ending in the shared encoder:

- `code`: git URL, local repository or folder, or Python's stdlib (`write_code`)
- `text`: plain text files/folders or a hub text column (`write_text`)
- `tweets`: CSV/JSON/JSONL tweets or a hub dataset, one record per tweet (`write_tweets`)
- `synthetic`: the four synthetic tasks (`generate`, `write_synthetic`)
- `build`: the two-pass streaming build and the record build (`write_stream`, `write_records`)
- `encode`: bytes -> counts and ids, fast paths for ASCII
"""
from __future__ import annotations

from charlstm.corpora.build import EncodeOptions, dataset_dir, write_records, write_stream

__all__ = ["EncodeOptions", "dataset_dir", "write_records", "write_stream"]
