"""Writing and reading traces: the .npz format and LSTMVis folders (docs/formats.md, "Traces").

Both writers are sinks of `charlstm.trace.run_trace`, so they stream: each chunk is appended to
disk as it is computed and nothing grows with the text. The .npz writer appends raw rows to one
.npy file per array (header first, the shape is known in advance) in a temporary folder beside the
output, then stores them uncompressed into the zip and renames it into place, so memory stays at
one chunk and a failure never leaves a partial file. Plain file writes rather than np.memmap keep
the written pages out of the process's resident set.

Owns: the .npz trace format (writer, reader) and the LSTMVis folder writer. Does not know: how the
values were computed (charlstm.trace.record).
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.fileio import temp_dir_beside
from charlstm.trace.sinks import TOP_K, Trace, TraceInfo
from charlstm.units import key
from charlstm.vocab import EOT, UNK, Vocab

FORMAT = "charlstm-trace"
VERSION = 1
# Code points stored for the special symbols in the `chars` array.
SPECIAL_CODEPOINTS = {UNK: 0xFFFD, EOT: 0x0003}


def codepoint_table(vocab: Vocab) -> np.ndarray:
    """id -> the `chars` value: the character's code point (char units), the byte value (byte
    units), U+FFFD for <unk> and U+0003 (END OF TEXT) for <eot>. [V] uint32."""
    out = np.zeros(vocab.size, np.uint32)
    for i, s in enumerate(vocab.symbols):
        if s in SPECIAL_CODEPOINTS and i in (vocab.unk_id, vocab.eot_id):
            out[i] = SPECIAL_CODEPOINTS[s]
        elif vocab.units == "byte":
            out[i] = i
        else:
            out[i] = ord(s) if len(s) == 1 else 0xFFFD
    return out


def trace_meta(info: TraceInfo | Trace, kinds: Sequence[str], dtype, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `meta` JSON stored with a trace."""
    vocab = info.vocab
    return {**(extra or {}), "format": FORMAT, "version": VERSION, "cell": info.cell,
            "num_layers": info.num_layers, "hidden_size": info.hidden_size, "layers": list(info.layers),
            "kinds": list(kinds), "characters": int(info.total if isinstance(info, TraceInfo) else len(info)),
            "dtype": np.dtype(dtype).name, "units": vocab.units, "vocab_size": vocab.size,
            "eot_id": vocab.eot_id, "unk_id": vocab.unk_id, "top_k": TOP_K}


class NpzWriter:
    """A sink writing the trace .npz at `path` (see module docstring). Use as a context manager
    around run_trace, or call `abort()` on failure; `end()` finishes the file.

    kinds: the kinds stored per traced layer; dtype: float32 or float16 for the activations.
    """

    def __init__(self, path: str | os.PathLike, kinds: Sequence[str], dtype=np.float32,
                 meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self.kinds, self.dtype, self.extra = list(kinds), np.dtype(dtype), meta or {}
        self.tmp: Path | None = None
        self.files: dict[str, Any] = {}

    def __enter__(self) -> "NpzWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()

    def _open(self, name: str, shape: tuple[int, ...], dtype) -> None:
        f = open(self.tmp / f"{name}.npy", "wb")
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
        self.files[name] = f

    def begin(self, info: TraceInfo) -> None:
        self.info = info
        self.tmp = temp_dir_beside(self.path)
        self.zip_tmp = self.tmp / "out.zip"
        T, H = info.total, info.hidden_size
        self.order = [key(l, k) for l in info.layers for k in self.kinds]
        for name in self.order:
            self._open(name, (T, H), self.dtype)
        self._open("ids", (T,), np.int32)
        self._open("chars", (T,), np.uint32)
        self._open("next_prob", (T,), np.float32)
        self._open("top_ids", (T, TOP_K), np.int32)
        self._open("top_probs", (T, TOP_K), np.float32)
        self.cp = codepoint_table(info.vocab)

    def layer(self, start: int, layer: int, arrays: dict[str, np.ndarray]) -> None:
        for k in self.kinds:
            self.files[key(layer, k)].write(np.ascontiguousarray(arrays[k], dtype=self.dtype).tobytes())

    def head(self, start, ids, next_prob, top_ids, top_probs) -> None:
        f = self.files
        f["ids"].write(ids.astype(np.int32).tobytes())
        f["chars"].write(self.cp[ids].tobytes())
        f["next_prob"].write(next_prob.astype(np.float32).tobytes())
        f["top_ids"].write(top_ids.astype(np.int32).tobytes())
        f["top_probs"].write(top_probs.astype(np.float32).tobytes())

    def end(self) -> None:
        for f in self.files.values():
            f.close()
        vocab = self.info.vocab
        np.save(self.tmp / "symbols.npy", np.array(vocab.symbols, dtype=str))
        meta = trace_meta(self.info, self.kinds, self.dtype, self.extra)
        np.save(self.tmp / "meta.npy", np.array(json.dumps(meta, ensure_ascii=False)))
        names = self.order + ["ids", "chars", "next_prob", "top_ids", "top_probs", "symbols", "meta"]
        with zipfile.ZipFile(self.zip_tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in names:
                zf.write(self.tmp / f"{name}.npy", arcname=f"{name}.npy")
                (self.tmp / f"{name}.npy").unlink()  # keep the temporary disk use near one copy
        with open(self.zip_tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self.zip_tmp, self.path)
        self.abort()

    def abort(self) -> None:
        """Close and remove the temporary files (the output is only ever renamed into place)."""
        for f in self.files.values():
            f.close()
        self.files = {}
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def _replay(trace: Trace, sinks: Sequence[Any], chunk: int = 1 << 16) -> None:
    """Feed an in-memory trace to sinks chunk by chunk (only its traced kinds)."""
    info = TraceInfo(trace.cell, trace.num_layers, trace.hidden_size, list(trace.layers), len(trace), trace.vocab)
    for s in sinks:
        s.begin(info)
    for start in range(0, len(trace), chunk):
        sl = slice(start, start + chunk)
        for l in trace.layers:
            arrays = {k: trace.arrays[key(l, k)][sl] for k in trace.kinds}
            for s in sinks:
                s.layer(start, l, arrays)
        for s in sinks:
            s.head(start, trace.ids[sl], trace.next_prob[sl], trace.top_ids[sl], trace.top_probs[sl])
    for s in sinks:
        s.end()


def save_npz(path: str | os.PathLike, trace: Trace, meta: dict[str, Any] | None = None) -> None:
    """Write an in-memory Trace as the documented .npz (same writer as the CLI)."""
    dtype = next(iter(trace.arrays.values())).dtype if trace.arrays else np.float32
    w = NpzWriter(path, trace.kinds, dtype, {**trace.meta, **(meta or {})})
    with w:
        _replay(trace, [w])


def load_trace(path: str | os.PathLike) -> Trace:
    """Read a trace .npz written by charlstm (no pickle) back into a Trace."""
    try:
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise CharlstmError(f"cannot read trace {path} ({e})") from None
    if meta.get("format") != FORMAT:
        raise CharlstmError(f"{path} is not a charlstm trace")
    symbols = [str(s) for s in z["symbols"]]
    vocab = Vocab(units=meta["units"], symbols=symbols, eot_id=meta.get("eot_id"), unk_id=meta.get("unk_id"))
    arrays = {n: z[n] for n in z.files if n.startswith("layer")}
    kinds = list(meta["kinds"])
    extra = {k: v for k, v in meta.items() if k not in ("cell", "hidden_size", "num_layers", "layers", "kinds")}
    return Trace(arrays, z["ids"].astype(np.int64), z["next_prob"], z["top_ids"].astype(np.int64), z["top_probs"],
                 vocab, meta["cell"], meta["hidden_size"], meta["num_layers"], list(meta["layers"]), kinds, extra)


# ----------------------------------------------------------------------------- LSTMVis
def lstmvis_words(vocab: Vocab) -> list[str]:
    """One whitespace-free, unique token per id for LSTMVis's `train.dict` (it splits lines on
    whitespace): space -> ␣, newline -> ↵, tab -> ⇥, other invisible characters -> U+XXXX."""
    named = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5"}
    words = []
    for i in range(vocab.size):
        s = vocab.symbol(i)
        if s in named:
            w = named[s]
        elif len(s) == 1 and (s.isspace() or not s.isprintable()):
            w = f"U+{ord(s):04X}"
        else:
            w = s
        words.append(w)
    seen: dict[str, int] = {}
    for i, w in enumerate(words):
        if w in seen or "".join(w.split()) != w:
            words[i] = f"<id{i}>"  # a real character collides with a stand-in: fall back to its id
        seen[words[i]] = i
    return words


LSTMVIS_FILES = ("states.hdf5", "train.hdf5", "train.dict", "lstm.yml")


def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML scalar


class LstmVisWriter:
    """A sink writing an LSTMVis project folder (needs h5py):

    states.hdf5  datasets "layer{l}.{kind}" [T, H] float32 (all traced kinds)
    train.hdf5   dataset "word_ids" [T] int32 (the character ids)
    train.dict   "symbol id" per line (lstmvis_words)
    lstm.yml     the LSTMVis config: c as `state`, h as `output` per layer (others commented)
    """

    def __init__(self, folder: str | os.PathLike, kinds: Sequence[str], name: str = "charlstm trace",
                 description: str = ""):
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise CharlstmError("--format lstmvis needs h5py: pip install 'charlstm[lstmvis]' (or pip install h5py)") from None
        self.folder, self.kinds, self.name, self.description = Path(folder), list(kinds), name, description

    def __enter__(self) -> "LstmVisWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()

    def begin(self, info: TraceInfo) -> None:
        import h5py

        self.info = info
        self.states = self.words = None
        if self.folder.exists() and not self.folder.is_dir():
            raise CharlstmError(f"{self.folder} exists and is not a folder; LSTMVis output is a folder")
        self.tmp = temp_dir_beside(self.folder)
        T, H = info.total, info.hidden_size
        self.states = h5py.File(self.tmp / "states.hdf5", "w")
        self.words = h5py.File(self.tmp / "train.hdf5", "w")
        for l in info.layers:
            for k in self.kinds:
                self.states.create_dataset(key(l, k), shape=(T, H), dtype="float32", chunks=(min(T, 1024), H))
        self.word_ids = self.words.create_dataset("word_ids", shape=(T,), dtype="int32")

    def layer(self, start, layer, arrays) -> None:
        for k in self.kinds:
            a = arrays[k]
            self.states[key(layer, k)][start:start + len(a)] = a

    def head(self, start, ids, *rest) -> None:
        self.word_ids[start:start + len(ids)] = ids

    def end(self) -> None:
        self.states.close()
        self.words.close()
        words = lstmvis_words(self.info.vocab)
        (self.tmp / "train.dict").write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)), encoding="utf-8")
        types, extra = [], []
        for l in self.info.layers:
            for k in self.kinds:
                entry = {"c": "state", "h": "output"}.get(k)
                # LSTMVis applies tanh to `state` values by default (cell states are unbounded); h
                # is already in -1..1.
                line = f"{{type: {entry or k}, layer: {l + 1}, path: {_yaml_str(key(l, k))}{', transform: none' if k != 'c' else ''}}}"
                (types if entry else extra).append(line)
        yml = [f"name: {_yaml_str(self.name)}", f"description: {_yaml_str(self.description or self.name)}", "",
               "files:", "  states: states.hdf5", "  train: train.hdf5", "  words: train.dict", "",
               "word_sequence:", "  file: train", "  path: word_ids", "  dict_file: words", "",
               "states:", "  file: states", "  types: ["]
        yml += [f"    {t}," for t in types]
        yml.append("  ]")
        if extra:
            yml.append("# other traced kinds (gates, candidates) are in states.hdf5 too; LSTMVis knows only")
            yml.append("# `state` and `output` types, so they are listed here for reference:")
            yml += [f"#   {t}" for t in extra]
        (self.tmp / "lstm.yml").write_text("\n".join(yml) + "\n", encoding="utf-8")
        # Move our four files in one by one: an existing folder keeps whatever else it holds.
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in LSTMVIS_FILES:
            os.replace(self.tmp / name, self.folder / name)
        self.abort()

    def abort(self) -> None:
        for f in ("states", "words"):
            h = getattr(self, f, None)
            if h is not None:
                h.close()  # closing a closed h5py file is a no-op
        if getattr(self, "tmp", None) is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
