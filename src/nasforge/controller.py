"""The LSTM controller of policy-gradient NAS (Zoph & Le 2017; ENAS, Pham et al. 2018), in one place.

Used by the multi-trial :class:`~nasforge.strategy.PolicyBasedRL` and the one-shot
:class:`~nasforge.oneshot.EnasTrainer`. This module imports torch; ``nasforge.strategy`` imports it
only when an RL strategy is set up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F

__all__ = ["LstmController"]


class LstmController(torch.nn.Module):
    """An LSTM policy over a sequence of decisions (one per label, ``sizes[k]`` candidates each).

    Step ``k`` feeds the previous decision's embedding (a learned start vector at step 0) to an
    ``LSTMCell`` of width ``hidden``; a linear head per label gives the logits, squashed as
    ``tanh_constant · tanh(logits / temperature)`` (ENAS; ``tanh_constant=None``: ``logits / temperature``).
    A decision with one candidate is taken without a draw and adds nothing to the log-probability.

    Weights are initialised as PyTorch's defaults for these layers, drawn from ``generator``
    (never from the global RNG). :meth:`forward` samples one episode through ``choose`` or
    scores a batch of given ones; :meth:`sample` is the one-episode form with a torch generator.

    Example::

        ctrl = LstmController([3, 2, 4], hidden=32, generator=torch.Generator().manual_seed(0))
        indices, log_prob, entropy = ctrl.sample(torch.Generator().manual_seed(1))
    """

    def __init__(self, sizes: Sequence[int], hidden: int = 64, temperature: float = 5.0,
                 tanh_constant: float | None = 2.5, generator: torch.Generator | None = None):
        super().__init__()
        if any(int(n) < 1 for n in sizes):
            raise ValueError(f"sizes must be candidate counts >= 1 (one per decision), got {list(sizes)!r}")
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an int >= 1, got {hidden!r}")
        self.sizes = [int(n) for n in sizes]
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        with torch.random.fork_rng(devices=[]):  # the layers' own initialisation is replaced below
            self.start = torch.nn.Parameter(torch.zeros(1, hidden))
            self.cell = torch.nn.LSTMCell(hidden, hidden)
            self.embeddings = torch.nn.ModuleList(torch.nn.Embedding(n, hidden) for n in self.sizes)
            self.heads = torch.nn.ModuleList(torch.nn.Linear(hidden, n) for n in self.sizes)
        self.reset_parameters(generator if generator is not None else torch.Generator().manual_seed(0))
        #: each decision's probability vector of the last episode (with gradients), for penalties
        self.last_probs: list[torch.Tensor] = []

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch's default initialisation of the LSTM cell, embeddings and heads, drawn from ``generator``."""
        bound = 1.0 / math.sqrt(self.hidden)
        for p in self.cell.parameters():
            p.uniform_(-bound, bound, generator=generator)
        for emb in self.embeddings:
            cast(torch.nn.Embedding, emb).weight.normal_(generator=generator)
        for head in self.heads:
            linear = cast(torch.nn.Linear, head)
            torch.nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)

    def logits(self, step: int, h: torch.Tensor) -> torch.Tensor:
        z = cast(torch.nn.Linear, self.heads[step])(h) / self.temperature
        return z if self.tanh_constant is None else self.tanh_constant * torch.tanh(z)

    def forward(self, choose: Callable[[int, torch.Tensor], int] | None = None,
                actions: Sequence[Sequence[int]] | None = None) -> tuple[list[list[int]], torch.Tensor, torch.Tensor]:
        """Sample one episode (``choose(step, probabilities) -> index``, probabilities detached) or score
        the episodes ``actions`` (a batch); returns the decisions, and per episode the summed
        log-probability and summed entropy (shape ``(batch,)``, differentiable)."""
        if (choose is None) == (actions is None):
            raise ValueError("pass exactly one of choose (sample an episode) and actions (score given episodes)")
        batch = 1 if actions is None else len(actions)
        x = self.start.expand(batch, self.hidden)
        h = torch.zeros(batch, self.hidden, device=x.device)
        c = torch.zeros_like(h)
        log_probs, entropies, probs = [], [], []
        chosen: list[list[int]] = [[] for _ in range(batch)]
        for step, n in enumerate(self.sizes):
            h, c = self.cell(x, (h, c))
            if n == 1:
                a = torch.zeros(batch, dtype=torch.long, device=x.device)
                probs.append(torch.ones(batch, 1, device=x.device))
            else:
                logp = F.log_softmax(self.logits(step, h), -1)
                p = logp.exp()
                probs.append(p)
                if choose is not None:
                    a = torch.tensor([int(choose(step, p[0].detach()))], device=x.device)
                else:
                    a = torch.tensor([list(acts)[step] for acts in actions or []], device=x.device)
                log_probs.append(logp.gather(1, a[:, None])[:, 0])
                entropies.append(-(p * logp).sum(-1))
            for b in range(batch):
                chosen[b].append(int(a[b]))
            x = self.embeddings[step](a)
        self.last_probs = [p[0] for p in probs]
        zero = torch.zeros(batch, device=x.device)
        log_prob = torch.stack(log_probs).sum(0) if log_probs else zero
        entropy = torch.stack(entropies).sum(0) if entropies else zero
        return chosen, log_prob, entropy

    def sample(self, generator: torch.Generator | None = None, greedy: bool = False) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """One episode: the indices, the summed log-probability and the summed entropy (scalars).
        Draws with ``generator`` (``greedy``: the most probable candidate at each step)."""
        def choose(_step: int, p: torch.Tensor) -> int:
            if greedy:
                return int(torch.argmax(p))
            return int(torch.multinomial(p.cpu(), 1, generator=generator))

        chosen, log_prob, entropy = self(choose=choose)
        return chosen[0], log_prob[0], entropy[0]
