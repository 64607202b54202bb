"""The ENAS / DARTS recurrent cell search space, and a small sequence model around it.

The cell (Pham et al., ICML 2018; Liu et al., ICLR 2019) maps the input ``x_t`` and the previous
hidden state ``h_{t-1}`` to ``h_t``. Node 0 is ``s_0 = h + c ⊙ (tanh(W_h [x, h]) - h)`` with the gate
``c = σ(W_c [x, h])``; node ``i = 1 … num_nodes`` picks a predecessor ``s_p`` (label ``input_<i>``,
``p < i``) and an activation ``f`` (label ``act_<i>``: tanh, relu, sigmoid, identity) and computes
``s_i = s_p + c_i ⊙ (f(W_i^h s_p) - s_p)`` with ``c_i = σ(W_i^c s_p)``; ``h_t`` is the mean of the
nodes 1 … num_nodes (DARTS' output rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch

import nasforge.nn as nn
from nasforge import ops
from nasforge.errors import InvalidArchError
from nasforge.hub._common import PresetMixin, check_positive_int, layer_choice

__all__ = ["RnnCell", "RnnCellSpace", "RnnGenotype", "rnn_genotype_to_arch", "rnn_arch_to_genotype"]


class RnnGenotype(NamedTuple):
    """A DARTS recurrent genotype: per node ``(activation, predecessor)``, and the averaged nodes."""

    recurrent: list[tuple[str, int]]
    concat: list[int]


def rnn_genotype_to_arch(genotype: RnnGenotype) -> dict[str, Any]:
    """The arch (labels ``act_<i>``, ``input_<i>``) of a recurrent genotype; it must average every node."""
    nodes = list(genotype[0])
    if list(genotype[1]) != list(range(1, len(nodes) + 1)):
        raise InvalidArchError(
            f"RnnCellSpace averages every node (concat {list(range(1, len(nodes) + 1))}); the genotype has {list(genotype[1])}"
        )
    arch: dict[str, Any] = {}
    for i, (act, pred) in enumerate(nodes, 1):
        if not 0 <= int(pred) < i:
            raise InvalidArchError(f"genotype node {i} = {(act, pred)!r}: it can read nodes 0..{i - 1}")
        arch[f"act_{i}"] = act
        arch[f"input_{i}"] = int(pred)
    return arch


def rnn_arch_to_genotype(arch: Mapping[str, Any]) -> RnnGenotype:
    nodes = []
    i = 1
    while f"act_{i}" in arch:
        nodes.append((arch[f"act_{i}"], int(arch[f"input_{i}"])))
        i += 1
    return RnnGenotype(nodes, list(range(1, len(nodes) + 1)))


class _Node(torch.nn.Module):
    def __init__(self, i: int, hidden: int, activations: Sequence[str]):
        super().__init__()
        self.pick = nn.InputChoice(n_candidates=i, n_chosen=1, reduction="sum", label=f"input_{i}")
        self.linear = torch.nn.Linear(hidden, 2 * hidden, bias=False)
        self.act = layer_choice({a: ops.activation(a) for a in activations}, f"act_{i}")

    def forward(self, states):
        s = self.pick(states)
        c, h = self.linear(s).chunk(2, dim=-1)
        return s + torch.sigmoid(c) * (self.act(h) - s)


class RnnCell(torch.nn.Module):
    """The searchable recurrent cell: ``cell(x_t, h_{t-1}) -> h_t`` (see the module docstring)."""

    def __init__(self, input_size: int, hidden_size: int, num_nodes: int = 8,
                 activations: Sequence[str] = ops.RNN_ACTIVATIONS):
        super().__init__()
        self.hidden_size = hidden_size
        self.w0 = torch.nn.Linear(input_size + hidden_size, 2 * hidden_size, bias=False)
        self.nodes = torch.nn.ModuleList(_Node(i, hidden_size, activations) for i in range(1, num_nodes + 1))

    def forward(self, x, h):
        c, g = self.w0(torch.cat([x, h], dim=-1)).chunk(2, dim=-1)
        states = [h + torch.sigmoid(c) * (torch.tanh(g) - h)]
        for node in self.nodes:
            states.append(node(states))
        return torch.stack(states[1:]).mean(0)


class RnnCellSpace(PresetMixin, nn.ModelSpace):
    """A sequence model around the searchable :class:`RnnCell` (the space's choices are the cell's).

    Inputs: float sequences ``[batch, time, input_size]``, or token ids ``[batch, time]`` when
    ``vocab_size`` is given (an embedding of ``input_size`` first). ``task="classify"`` returns
    ``[batch, num_classes]`` logits from the last hidden state; ``task="lm"`` returns next-token
    logits ``[batch, vocab_size, time]`` (the layout ``nn.CrossEntropyLoss`` takes with targets
    ``[batch, time]``), decoded by weights tied to the embedding when ``input_size == hidden_size``.

    DARTS' PTB setting: ``vocab_size=10000, input_size=hidden_size=850, num_nodes=8, task="lm"``;
    the defaults are CPU-sized.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 32,
        num_nodes: int = 8,
        num_classes: int = 10,
        vocab_size: int | None = None,
        task: str = "classify",
        dropout: float = 0.0,
        activations: Sequence[str] = ops.RNN_ACTIVATIONS,
    ):
        super().__init__()
        check_positive_int("RnnCellSpace", input_size=input_size, hidden_size=hidden_size, num_nodes=num_nodes,
                           num_classes=num_classes)
        if task not in ("classify", "lm"):
            raise ValueError(f"RnnCellSpace: task must be 'classify' or 'lm', got {task!r}")
        if task == "lm" and vocab_size is None:
            raise ValueError("RnnCellSpace: task='lm' needs vocab_size")
        unknown = [a for a in activations if a not in ops.ACTIVATIONS]
        if not activations or unknown:
            raise ValueError(f"RnnCellSpace: unknown activation(s) {unknown}; valid: {sorted(ops.ACTIVATIONS)}")
        self.task = task
        self.embedding = torch.nn.Embedding(vocab_size, input_size) if vocab_size is not None else None
        self.cell = RnnCell(input_size, hidden_size, num_nodes, activations)
        self.dropout = torch.nn.Dropout(dropout)
        self.decoder = torch.nn.Linear(hidden_size, vocab_size if task == "lm" and vocab_size is not None else num_classes)
        if task == "lm" and input_size == hidden_size and self.embedding is not None:
            self.decoder.weight = self.embedding.weight  # tied to the embedding

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        elif x.dim() == 2:
            x = x.unsqueeze(-1)
        x = self.dropout(x)
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            if self.task == "lm":
                outputs.append(h)
        if self.task == "lm":
            return self.decoder(self.dropout(torch.stack(outputs, 1))).transpose(1, 2)
        return self.decoder(self.dropout(h))

    def arch_to_genotype(self, arch: Mapping[str, Any]) -> RnnGenotype:
        return rnn_arch_to_genotype(self.space.validate(arch))

    def genotype_to_arch(self, genotype: RnnGenotype) -> dict[str, Any]:
        return self.space.validate(rnn_genotype_to_arch(genotype))
