"""The recurrent encoder: an LSTM/GRU/RNN that reads each sequence's output at its true last step.

Input batches follow :mod:`clstm.data.sequences`: ``x`` is ``(B, T, F + 1)``, right-padded, with a
validity mask as last channel.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from clstm.data.sequences import split_mask

_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RecurrentEncoder(nn.Module):
    """An LSTM/GRU/RNN over a padded batch, returning each sequence's last real output ``(B, D)``.

    The batch is first trimmed to its longest sequence. ``packing="padded"``: it is run
    right-padded and the output gathered at step ``length - 1`` of each sequence (padding after a
    sequence cannot influence its earlier steps); on CPU this is ~7x faster than packing.
    ``packing="packed"``: ``pack_padded_sequence``, so no step of padding is computed (cuDNN's
    packed kernels make this the faster choice on CUDA). ``"auto"`` picks packed on CUDA and
    padded elsewhere; bidirectional encoders always pack, so the backward direction starts at
    each sequence's last real step. Both give the same outputs.

    With ``per_step=True`` it returns every step's output ``(B, T', D)`` instead, ``T'`` the
    batch's longest sequence (outputs at a sequence's padding steps are zeros when packed, and
    never depend on them when padded: the recurrence only runs forward).

    ``forward(x, steps)`` (``per_step`` only; ``steps`` a ``(B, T)`` bool mask, ``T`` at least the
    batch's longest sequence) returns only the outputs at the steps marked, ``(N, D)`` in row-major
    order (:func:`at_steps`), with the Elman output layer applied to those alone: the outputs at
    other steps are not computed. Exact, since neither the Elman output nor a head is fed back.

    With ``elman_output=True`` (a one-layer, one-direction vanilla RNN) each step's hidden state
    ``h_t`` is mapped to the layer's output ``y_t = tanh(W_ho h_t + b_ho)``, of the same size, which
    is not fed back: the output of an Elman layer, as in Ehret et al. 2021's ``SimpleRNN`` (their
    ``mnets/simple_rnn.py``, ``basic_rnn_step``); ``W_ho`` and ``b_ho`` start uniform in
    ``[-1/sqrt(H), 1/sqrt(H)]``, as theirs (and as ``nn.Linear`` initialises).

    With ``stateful=True`` the final hidden state of one forward pass is the initial state of the
    next (detached: truncated back-propagation), for consecutive windows of long series of equal
    length; :meth:`reset_state` forgets it. ``LSTMPlugin`` calls it at every experience boundary.
    """

    def __init__(
        self,
        *,
        n_features: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        stateful: bool = False,
        packing: str = "auto",
        per_step: bool = False,
        elman_output: bool = False,
    ):
        super().__init__()
        if elman_output and (cell != "rnn" or num_layers != 1 or bidirectional):
            raise ValueError(
                "an Elman output layer needs a one-layer, one-direction vanilla RNN "
                "(model.type: rnn, num_layers: 1, bidirectional: false)"
            )
        if packing not in ("auto", "packed", "padded"):
            raise ValueError(f"packing must be auto, packed or padded, got '{packing}'")
        if cell not in _CELLS:
            raise ValueError(f"unknown cell '{cell}'; choose one of {', '.join(_CELLS)}")
        if stateful and bidirectional:
            raise ValueError("a stateful encoder cannot be bidirectional")
        self.cell = cell
        self.bidirectional = bidirectional
        self.stateful = stateful
        self.packing = packing
        self.per_step = per_step
        self.rnn = _CELLS[cell](
            n_features,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self.out_features = hidden_size * (2 if bidirectional else 1)
        self.elman = nn.Linear(hidden_size, hidden_size) if elman_output else None
        self.state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None

    def reset_state(self) -> None:
        """Forget the carried recurrent state (the next batch starts from zeros)."""
        self.state = None

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> torch.Tensor:
        out = self._recurrence(x)
        if steps is not None:
            if not self.per_step:
                raise ValueError("outputs at chosen steps need a per-step encoder (per_step=True)")
            out = at_steps(out, steps)
        return out if self.elman is None else torch.tanh(self.elman(out))

    def _recurrence(self, x: torch.Tensor) -> torch.Tensor:
        if self._fills_batch(x):  # every sequence is real at the last step: no padding at all
            values, lengths, t_min = x[..., :-1], None, x.shape[1]
            t_max = t_min
        else:
            values, lengths = split_mask(x)  # (B, T, F), (B,)
            t_min, t_max = (int(v) for v in torch.aminmax(lengths))
            if t_min < 1:
                raise ValueError(
                    "a sequence in the batch has length 0 (its mask channel is all zero)"
                )
            values = values[:, :t_max]  # drop padding shared by the whole batch
        if self._packs(values):
            packed = pack_padded_sequence(
                values, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            out, h_n = self.rnn(packed)  # h_n (layers * dirs, B, H), in the batch's original order
            if self.per_step:
                return pad_packed_sequence(out, batch_first=True, total_length=t_max)[0]
            h_n = h_n[0] if self.cell == "lstm" else h_n
            if not self.bidirectional:
                return h_n[-1]  # (B, H): the last layer at each sequence's last real step
            return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H): last layer, both directions
        out, final = self.rnn(values, self._initial_state(values, lengths, t_max))  # (B, T, H)
        if self.stateful:
            self.state = (
                tuple(s.detach() for s in final) if isinstance(final, tuple) else final.detach()
            )
        if self.per_step:
            return out  # (B, T', H)
        if t_min == t_max:  # equal lengths (fixed-length data, most length-bucketed batches)
            return out[:, -1]  # (B, H)
        return out[torch.arange(out.shape[0], device=out.device), lengths - 1]  # (B, H)

    def _fills_batch(self, x: torch.Tensor) -> bool:
        """Whether every sequence of the padded batch ``x`` runs to its last step (fixed-length
        data, most length-bucketed batches), read from the mask's last step alone (masks are
        right-padded): one reduction instead of a sum over every step and a min/max (~25 µs a
        batch, ~1% of a small LSTM's step). Packed runs need the lengths anyway."""
        if x.dim() != 3 or x.shape[1] == 0 or x.shape[-1] < 2 or self._packs(x):
            return False  # split_mask says what is wrong with a malformed batch
        return bool(x[:, -1, -1].all())

    def _packs(self, values: torch.Tensor) -> bool:
        if self.bidirectional:
            return True
        if self.stateful or self.packing == "padded":
            return False  # stateful windows have equal lengths: nothing to skip
        return self.packing == "packed" or values.is_cuda

    def _initial_state(self, values: torch.Tensor, lengths: torch.Tensor, t_max: int):
        if not self.stateful:
            return None
        if lengths is not None and int(lengths.min()) != t_max:
            raise ValueError("a stateful encoder needs windows of equal length in every batch")
        if self.state is not None:
            batch = (self.state[0] if isinstance(self.state, tuple) else self.state).shape[1]
            if batch != values.shape[0]:
                raise ValueError(
                    f"stateful batch size changed from {batch} to {values.shape[0]}; "
                    "row b of each batch must continue row b of the previous one"
                )
        return self.state


def at_steps(out: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """The rows of per-step outputs ``out`` ``(B, T', D)`` at the steps ``steps`` ``(B, T)`` marks
    (bool, ``T >= T'``; no step beyond ``T'`` may be marked), ``(N, D)`` in row-major order: the
    order in which :func:`scattered` puts them back."""
    within = steps[:, : out.shape[1]]
    if within.shape[1] < steps.shape[1] and bool(steps[:, out.shape[1] :].any()):
        raise ValueError(
            f"targets beyond step {out.shape[1]} but the batch's sequences end there: a target "
            "must lie within its sequence's real steps"
        )
    return out[within]


def scattered(values: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """``(N, W)`` outputs at the steps ``steps`` ``(B, T)`` marks (from :func:`at_steps`) placed in
    a ``(B, T, W)`` tensor, zeros at the other steps (differentiable in ``values``)."""
    full = values.new_zeros(*steps.shape, values.shape[-1])
    full[steps] = values  # in place on the new zeros (no copy of them); autograd records it
    return full


def dropped(dropout: nn.Dropout, h: torch.Tensor) -> torch.Tensor:
    """``dropout(h)``, without the module call when it would return ``h`` itself (``p`` = 0:
    PyTorch returns its input then and draws no random numbers; the call cost ~5 µs a batch)."""
    return dropout(h) if dropout.p > 0 else h
