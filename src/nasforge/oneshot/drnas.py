"""DrNAS (Chen, Wang, Cheng, Tang & Hsieh, ICLR 2021): a Dirichlet distribution over architectures."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.distributions import Dirichlet, kl_divergence

from nasforge.oneshot.darts import DartsTrainer
from nasforge.space import Arch

__all__ = ["DrNasTrainer"]


class _DirichletSample(torch.autograd.Function):
    """``Dirichlet(concentration).rsample()`` drawn from a given generator (pathwise gradient, as torch's)."""

    @staticmethod
    def forward(ctx: Any, concentration: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = torch._sample_dirichlet(concentration, generator=generator)
        ctx.save_for_backward(x, concentration)
        return x

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, concentration = ctx.saved_tensors
        total = concentration.sum(-1, True).expand_as(concentration)
        grad = torch._dirichlet_grad(x, concentration, total)
        return grad * (grad_output - (x * grad_output).sum(-1, True)), None


class DrNasTrainer(DartsTrainer):
    """DrNAS: DARTS whose mixture weights are *samples* of a learned Dirichlet distribution.

    For every label the architecture parameters θ give Dirichlet concentrations
    ``β = elu(θ) + 1`` (so β > 0 and θ = 0 is the uniform Dirichlet(1)). Each step draws mixture
    weights ``w ~ Dir(β)`` with the pathwise (implicit reparameterisation) gradient of
    ``Dirichlet.rsample`` and runs the DARTS mixture ``Σ_k w_k · op_k(x)`` with them: an
    architecture step (Adam on θ, as :class:`DartsTrainer`) on a validation batch minimising

        ``L_val(w) + reg_scale · Σ_labels KL(Dir(β) ‖ Dir(1))``

    (the paper's anchor regulariser towards the uniform prior, scale 1e-3 as in the authors'
    code: it keeps β from growing without bound, the stochastic analogue of the weight decay on
    α that fails to prevent DARTS' collapse), then a weight step on a training batch with a fresh
    sample. The noise of the samples is itself a remedy for DARTS' skip-connection collapse: a
    parameter-free op cannot win by being mixed in at a fixed small weight, and flat minima of
    the validation loss are preferred (the paper's analysis).

    ``progressive=True`` is the paper's progressive learning reduced to its pruning half: after
    ``prune_epoch`` epochs (default: half of ``num_epochs``) every layer choice keeps only its
    ``prune_keep`` candidates of largest β (default ``ceil(n/2)``, 3 of NAS-Bench-201's 5), and the
    Dirichlet is over those from then on (the partial-channel half of the paper's scheme, which
    saves memory on large spaces, is not done here). :meth:`export` takes the argmax of β per
    label (the mode of the Dirichlet mean), among the kept candidates, skipping the zero op with
    ``exclude_zero=True`` (DARTS' derivation rule). :meth:`arch_probabilities` is the Dirichlet
    mean ``β / Σβ``.

    Sampling draws from a generator seeded by the trainer's own (never the global RNG), so a seed
    fixes the samples; data-parallel ranks draw the same samples.

    Example::

        trainer = DrNasTrainer(model, nn.CrossEntropyLoss(), None, optimizer, num_epochs=15, dataset=data,
                               arc_learning_rate=3e-3, progressive=True, exclude_zero=True, seed=0)
        arch = trainer.fit().export()
    """

    style = "mixed"
    logger_name = "nasforge.oneshot.drnas"

    def __init__(self, *args: Any, reg_scale: float = 1e-3, progressive: bool = False, prune_epoch: int | None = None,
                 prune_keep: int | None = None, **kwargs: Any):
        if kwargs.get("unrolled"):
            raise ValueError("DrNasTrainer is first order here; unrolled=True is not supported")
        if kwargs.get("regularization") is not None:
            raise ValueError("DrNasTrainer has its own regulariser (reg_scale · KL to Dir(1)); leave regularization=None")
        if kwargs.get("selection", "argmax") != "argmax":
            raise ValueError("DrNasTrainer exports argmax β; selection='perturbation' is a DartsTrainer option")
        super().__init__(*args, **kwargs)
        if reg_scale < 0:
            raise ValueError(f"reg_scale must be >= 0, got {reg_scale!r}")
        if prune_keep is not None and (not isinstance(prune_keep, int) or prune_keep < 1):
            raise ValueError(f"prune_keep must be an int >= 1, got {prune_keep!r}")
        self.reg_scale = reg_scale
        self.progressive = progressive
        self.prune_epoch = prune_epoch if prune_epoch is not None else self.num_epochs // 2
        self.prune_keep = prune_keep
        self.kept: dict[str, list[int]] = {label: list(range(s.n)) for label, s in self.supernet.slots.items()}
        self.pruned = False

    # -- the distribution -------------------------------------------------------------------------
    @staticmethod
    def concentration(slot: Any) -> torch.Tensor:
        """β = elu(θ) + 1 of a slot."""
        return torch.nn.functional.elu(slot.alpha) + 1.0

    def arch_distribution(self, slot: Any) -> torch.Tensor:
        """The Dirichlet mean β / Σβ over the kept candidates (0 for pruned ones)."""
        kept = torch.zeros(slot.n, dtype=torch.bool, device=slot.alpha.device)
        kept[self.kept[slot.label]] = True
        beta = self.concentration(slot) * kept
        return beta / beta.sum()

    def _kl(self) -> torch.Tensor:
        terms = []
        for label, slot in self.supernet.slots.items():
            beta = self.concentration(slot)[self.kept[label]]
            terms.append(kl_divergence(Dirichlet(beta), Dirichlet(torch.ones_like(beta))))
        return torch.stack(terms).sum()

    def _sample_weights(self) -> None:
        """Draw w ~ Dir(β) per label (differentiable in θ) into the slots' mixture weights."""
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=self.generator)))
        for label, slot in self.supernet.slots.items():
            kept = self.kept[label]
            beta = self.concentration(slot)
            sub = _DirichletSample.apply(beta[kept].cpu(), gen).to(beta.device)
            if len(kept) == slot.n:
                slot.fixed = sub
            else:
                idx = torch.tensor(kept, device=beta.device)
                slot.fixed = torch.zeros(slot.n, device=beta.device, dtype=sub.dtype).index_put((idx,), sub)

    def _clear_weights(self) -> None:
        for slot in self.supernet.slots.values():
            slot.fixed = None

    # -- steps ----------------------------------------------------------------------------------------
    def _regularizer(self, reg: float) -> torch.Tensor | float:
        """DrNAS' anchor ``reg_scale · Σ_labels KL(Dir(β) ‖ Dir(1))`` instead of β-DARTS'."""
        return self.reg_scale * self._kl() if self.reg_scale else 0.0

    def _arch_step(self, tx, ty, vx, vy, reg: float) -> None:
        self._sample_weights()
        super()._arch_step(tx, ty, vx, vy, reg)
        self._sample_weights()  # the weight step mixes with a fresh sample (as in the authors' code)

    def _weight_only(self) -> None:
        self._sample_weights()

    def _prune(self) -> None:
        for label, slot in self.supernet.slots.items():
            if slot.kind != "layer" or slot.n <= 2:
                continue
            keep = min(self.prune_keep or math.ceil(slot.n / 2), slot.n)  # prune_keep: None or >= 1
            beta = self.concentration(slot).detach()
            order = sorted(self.kept[label], key=lambda k: float(beta[k]), reverse=True)
            self.kept[label] = sorted(order[:keep])
        self.pruned = True
        if self.dist.is_main:
            self.logger.info("progressive pruning after epoch %d: kept %s", self.epoch,
                             {lb: [self.supernet.slots[lb].key(k) for k in ks] for lb, ks in self.kept.items()})

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        if self.progressive and not self.pruned and epoch >= self.prune_epoch and epoch > 0:
            self._prune()
        try:
            record = super()._train_epoch(epoch)
        finally:
            self._clear_weights()
        record["kl"] = float(self._kl().detach())
        return record

    def _should_stop(self) -> bool:
        self._clear_weights()
        return super()._should_stop()

    # -- export ------------------------------------------------------------------------------------
    def _argmax(self, exclude_zero: bool) -> Arch:
        return {label: slot.export_from_alpha(exclude_zero, self.concentration(slot), self.kept[label])
                for label, slot in self.supernet.slots.items()}

    def param_free_count(self, arch: Arch | None = None) -> int:
        return super().param_free_count(arch if arch is not None else self._argmax(self.exclude_zero))

    def _export(self) -> Arch:
        """Argmax β per label among the kept candidates (the zero op skipped with ``exclude_zero``; at most
        ``export_max_param_free`` parameter-free picks when set)."""
        if self._exported is not None:
            return dict(self._exported)
        return self.cap_param_free(self._argmax(self.exclude_zero), self.arch_scores(), self.kept)
