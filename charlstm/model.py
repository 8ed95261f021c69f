"""The character model: Embedding -> stacked recurrent layers -> Linear head. No I/O here.

Shapes: N batch, T time, E embedding, H hidden, L layers, V vocabulary.
State: a tuple of [L, N, H] tensors: (h, c) for lstm/peephole, (h,) for gru/rnn. Passing the state
returned by one call into the next continues the sequence exactly (truncated BPTT, sampling).

lstm/gru/rnn use PyTorch's fused modules (cuDNN on GPU, oneDNN on CPU); peephole runs the explicit
cell of charlstm.cells one step at a time (much slower; see docs/benchmarks.md).

Records. A model of records (tweets, synthetic tasks; cfg.reset_id = the <eot> id) reads <eot> from
the zero state: every record starts from the same state, the state after reading <eot> from zero,
whatever came before it. Training lays records out so (charlstm.train.batches), and every reader
follows the same rule through this module: `read` resets rows at <eot> inside a sequence, `begin`
is the state (and prediction) a text starts from, and `context` puts the implicit <eot> in front of
a text. A text given to a record model is therefore read as the start of a record, as sampling,
scoring, tracing and ablation all do. Running-text models (reset_id None) carry the state through
everything and start from zero.

Owns: the model and that rule. Does not know: files, vocabularies or training.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from charlstm import cells
from charlstm.config import ModelConfig

State = tuple[Tensor, ...]


class PeepholeLSTM(nn.Module):
    """A stacked peephole LSTM with nn.LSTM's parameter names plus `peephole_l{k}` [3, H].

    forward(x [N, T, In], state (h, c) each [L, N, H]) -> (out [N, T, H], (h, c)).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        k = hidden_size ** -0.5
        for layer in range(num_layers):
            inp = input_size if layer == 0 else hidden_size
            for name, shape in (("weight_ih", (4 * hidden_size, inp)), ("weight_hh", (4 * hidden_size, hidden_size)),
                                ("bias_ih", (4 * hidden_size,)), ("bias_hh", (4 * hidden_size,)),
                                ("peephole", (3, hidden_size))):
                self.register_parameter(f"{name}_l{layer}", nn.Parameter(torch.empty(shape).uniform_(-k, k)))

    def layer_params(self, layer: int) -> dict[str, Tensor]:
        return {n: getattr(self, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "peephole")}

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hs, cs = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
            x, (h, c), _ = cells.unroll("peephole", x, (state[0][layer], state[1][layer]), self.layer_params(layer))
            hs.append(h)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))


class CharRNN(nn.Module):
    """forward(x [N, T] int64, state or None) -> (logits [N, T, V] float, state).

    Dropout (cfg.dropout) applies between recurrent layers and before the head, in training only.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        H, L, E = cfg.hidden_size, cfg.num_layers, cfg.embed_dim
        self.embed = nn.Embedding(cfg.vocab_size, E)
        inter = cfg.dropout if L > 1 else 0.0
        if cfg.cell == "lstm":
            self.rnn = nn.LSTM(E, H, L, batch_first=True, dropout=inter)
        elif cfg.cell == "gru":
            self.rnn = nn.GRU(E, H, L, batch_first=True, dropout=inter)
        elif cfg.cell == "rnn":
            self.rnn = nn.RNN(E, H, L, nonlinearity="tanh", batch_first=True, dropout=inter)
        else:
            self.rnn = PeepholeLSTM(E, H, L, dropout=inter)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(H, cfg.vocab_size)
        self._init_forget_bias()

    def _init_forget_bias(self) -> None:
        """LSTM forget gate bias = 1 (the i, f, g, o block f is [H:2H]), so memory is kept early on."""
        if self.cfg.cell not in ("lstm", "peephole"):
            return
        H = self.cfg.hidden_size
        with torch.no_grad():
            for layer in range(self.cfg.num_layers):
                getattr(self.rnn, f"bias_ih_l{layer}")[H:2 * H].fill_(1.0)
                getattr(self.rnn, f"bias_hh_l{layer}")[H:2 * H].fill_(0.0)

    @property
    def state_size(self) -> int:
        return cells.state_size(self.cfg.cell)

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """Zero state: tuple of [L, N, H]."""
        w = self.head.weight
        shape = (self.cfg.num_layers, batch, self.cfg.hidden_size)
        return tuple(torch.zeros(shape, device=device or w.device, dtype=dtype or w.dtype)
                     for _ in range(self.state_size))

    def layer_params(self, layer: int) -> dict[str, Tensor]:
        """Layer `layer`'s recurrent parameters under the names charlstm.cells.step expects."""
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] + (["peephole"] if self.cfg.cell == "peephole" else [])
        return {n: getattr(self.rnn, f"{n}_l{layer}") for n in names}

    def recurrent(self, emb: Tensor, state: State) -> tuple[Tensor, State]:
        """emb [N, T, E], state -> (outputs of the last layer [N, T, H], new state)."""
        if self.cfg.cell in ("lstm", "peephole"):
            return self.rnn(emb, (state[0], state[1]))
        out, h = self.rnn(emb, state[0])
        return out, (h,)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """x [N, T] -> (logits [N, T, V], state), carrying the state through every position (the
        fused kernels; training lays records out so that no row resets inside a chunk)."""
        if state is None:
            state = self.init_state(x.shape[0], device=x.device)
        out, state = self.recurrent(self.embed(x), state)
        return self.head(self.drop(out)), state

    # -------------------------------------------------------------- records (see the module docstring)
    @property
    def reset_id(self) -> int | None:
        return self.cfg.reset_id

    def read(self, x: Tensor, state: State | None = None, logits: bool = True) -> tuple[Tensor | None, State]:
        """Like forward, but a row whose input at step t is the reset id reads it from the zero
        state. The fused kernels run between the columns where some row resets. x [N, T] ->
        (logits [N, T, V], or None when logits=False: only the state is wanted, state)."""
        if state is None:
            state = self.init_state(x.shape[0], device=x.device)
        r = self.reset_id
        bounds = [0, x.shape[1]]
        if r is not None:
            bounds = sorted({0, x.shape[1], *torch.nonzero((x == r).any(0)).flatten().tolist()})
        outs = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            if r is not None:
                keep = (x[:, a] != r).to(state[0].dtype)[None, :, None]  # [1, N, 1]: 0 where a row resets
                state = tuple(s * keep for s in state)
            out, state = self.recurrent(self.embed(x[:, a:b]), state)
            if logits:
                outs.append(self.head(self.drop(out)))
        return (torch.cat(outs, 1) if logits else None), state

    def begin(self, n: int = 1) -> tuple[State, Tensor | None]:
        """The state a text starts from, for n rows, and the logits [n, V] predicting its first
        symbol: after reading the reset id from the zero state (records), else the zero state and
        None (running text: nothing predicts the first symbol)."""
        dev = self.head.weight.device
        if self.reset_id is None:
            return self.init_state(n, device=dev), None
        logits, state = self(torch.full((n, 1), self.reset_id, dtype=torch.long, device=dev))
        return state, logits[:, 0]

    def context(self, ids: list[int]) -> list[int]:
        """The ids a model reads for a text: the implicit reset id first for records (a text starts a
        record), the text alone for running text."""
        return ([self.reset_id] if self.reset_id is not None else []) + list(ids)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def layer_macs(self, layer: int) -> int:
        """Multiply-adds of one step of one recurrent layer: G*H x (inputs + H)."""
        c = self.cfg
        return cells.GATE_COUNT[c.cell] * c.hidden_size * ((c.embed_dim if layer == 0 else c.hidden_size) + c.hidden_size)

    def step_macs(self) -> int:
        """Multiply-adds of one whole step of one row: every layer and the head (the embedding is a
        row gather). What decides whether a CPU thread or several run a step fastest."""
        return sum(self.layer_macs(layer) for layer in range(self.cfg.num_layers)) + \
            self.cfg.hidden_size * self.cfg.vocab_size


def detach_state(state: State) -> State:
    """Cut the graph between truncated-BPTT chunks while keeping the values."""
    return tuple(s.detach() for s in state)
