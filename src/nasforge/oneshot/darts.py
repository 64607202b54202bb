"""DARTS (Liu, Simonyan & Yang, ICLR 2019) and GDAS (Dong & Yang, CVPR 2019)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nasforge.oneshot.base import OneShotTrainer, TrainerOptions
from nasforge.space import Arch

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DartsTrainer", "GumbelDartsTrainer"]


class DartsTrainer(OneShotTrainer):
    """Differentiable architecture search with softmax-weighted mixed ops.

    Every ``LayerChoice`` becomes ``Σ_k softmax(α)_k · op_k(x)``, every ``InputChoice`` a
    softmax-weighted sum of its inputs, a ``Repeat`` a weighted sum over depths, a ``Cell`` a
    mixed DAG. Each step takes an architecture step (Adam on α, lr ``arc_learning_rate``,
    betas (0.5, 0.999), weight decay 1e-3) on a batch of the validation half of ``dataset`` and
    a weight step (``optimizer``, gradient norm clipped to ``grad_clip``) on a batch of the
    training half. ``unrolled=True`` uses the paper's second-order approximation with a virtual
    step of size ``learning_rate`` (ξ). :meth:`export` takes the argmax per choice (top-k
    inputs for an ``InputChoice`` with ``n_chosen > 1``).

    Collapse remedies (off by default, so plain DARTS stays plain DARTS):

    * ``regularization="beta"``: β-DARTS' Beta-Decay regularisation, ``λ(t) · mean_label
      logsumexp(α)`` added to the validation loss, with λ rising linearly from 0 to
      ``reg_weight`` over the epochs; its gradient is softmax(α), which keeps any one α from
      running away (the mechanism of the skip-connection collapse);
    * ``warmup_epochs=k``: train the weights only for the first ``k`` epochs, so α starts
      moving once the convolutions are no longer at their random initialisation;
    * ``selection="perturbation"``: DARTS-PT's perturbation-based selection: after training, each
      layer choice in turn (random order) is decided by the candidate whose *removal* from the
      mixture hurts validation accuracy most (not by the largest α), then fixed, and the supernet
      weights are tuned for ``pt_tune_epochs`` before the next choice;
    * ``exclude_zero=True``: the paper's own derivation rule, "retain the strongest non-zero
      operation" (Liu et al. 2019, §2.4): export never picks the zero op (``none``) unless it is a
      choice's only candidate. Off by default so that plain argmax stays available;
      perturbation-based selection likewise never removes into a zero op when it is set;
    * ``export_max_param_free=M``: P-DARTS' architecture refinement (Chen et al., ICCV 2019, which
      keeps at most M = 2 skip connections per cell): at export, at most ``M`` layer choices may take a
      parameter-free, non-zero candidate (skip, pooling); those with the largest weight on it keep
      it, the others take their strongest candidate with parameters. It guards the export against
      the late skip-connection collapse without changing the search;
    * ``max_param_free=k``: DARTS+-style early stopping: after an epoch whose argmax
      architecture uses more than ``k`` parameter-free candidates (skip, pooling, zero), stop
      and export the architecture of the previous epoch.

    Example::

        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
        trainer = DartsTrainer(model, loss=nn.CrossEntropyLoss(), metrics=accuracy, optimizer=optimizer,
                               num_epochs=5, dataset=train_set, batch_size=64)
        trainer.fit()
        arch = trainer.export()                 # {"conv1": 1, "conv2": 0, "skipconnect": 1}
        trainer.arch_probabilities()            # softmax(α) per label
        net = model.freeze(arch)
    """

    style = "mixed"
    logger_name = "nasforge.oneshot.darts"

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None,
        optimizer: torch.optim.Optimizer | None,
        num_epochs: int,
        dataset: Any,
        *,
        learning_rate: float = 2.5e-3,
        arc_learning_rate: float = 3e-4,
        unrolled: bool = False,
        regularization: str | None = None,
        reg_weight: float = 50.0,
        max_param_free: int | None = None,
        warmup_epochs: int = 0,
        selection: str = "argmax",
        pt_tune_epochs: int = 1,
        pt_eval_batches: int = 4,
        exclude_zero: bool = False,
        export_max_param_free: int | None = None,
        **options: Unpack[TrainerOptions],
    ):
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, **options)
        if regularization not in (None, "beta"):
            raise ValueError(f"regularization must be None or 'beta', got {regularization!r}")
        self.learning_rate = learning_rate
        self.arc_learning_rate = arc_learning_rate
        self.unrolled = unrolled
        self.regularization = regularization
        self.reg_weight = reg_weight
        self.max_param_free = max_param_free
        self.warmup_epochs = warmup_epochs
        if selection not in ("argmax", "perturbation"):
            raise ValueError(f"selection must be 'argmax' or 'perturbation', got {selection!r}")
        self.selection = selection
        self.pt_tune_epochs = pt_tune_epochs
        self.pt_eval_batches = pt_eval_batches
        self.pt_log: list[dict[str, Any]] = []
        self.exclude_zero = exclude_zero
        if export_max_param_free is not None and (not isinstance(export_max_param_free, int) or export_max_param_free < 0):
            raise ValueError(f"export_max_param_free must be None or an int >= 0, got {export_max_param_free!r}")
        self.export_max_param_free = export_max_param_free
        self.alpha_list = self.supernet.init_alphas(self.device, generator=self.generator)
        self._exclude_from_weight_optimizer(self.alpha_list)
        self.arch_optimizer = torch.optim.Adam(self.alpha_list, arc_learning_rate, betas=(0.5, 0.999), weight_decay=1e-3)
        self._exported: Arch | None = None
        self._previous: Arch | None = None

    # -- architecture steps ------------------------------------------------------------------
    def _regularizer(self, reg: float) -> torch.Tensor | float:
        """β-DARTS' regulariser of the architecture loss, ``reg · mean_label logsumexp(α)``."""
        return reg * torch.stack([a.logsumexp(-1) for a in self.alpha_list]).mean() if reg else 0.0

    def _val_loss(self, x: torch.Tensor, y: torch.Tensor, reg: float) -> torch.Tensor:
        return self.loss(self.model(x), y) + self._regularizer(reg) + self.cost_penalty()

    def _arch_step(self, tx, ty, vx, vy, reg: float) -> None:
        alphas = self.alpha_list
        if self.unrolled:
            grads: Sequence[torch.Tensor | None] = self._unrolled_grads(tx, ty, vx, vy, reg)
        else:
            grads = torch.autograd.grad(self._val_loss(vx, vy, reg), alphas, allow_unused=True)
        self._arch_update(alphas, grads, self.arch_optimizer)

    def _unrolled_grads(self, tx, ty, vx, vy, reg: float) -> list[torch.Tensor]:
        """Second-order DARTS: ∇_α L_val(w - ξ∇_w L_train(w, α), α), Hessian term by finite differences."""
        params = [p for p in self._weight_params() if p.requires_grad]
        alphas = self.alpha_list
        xi = self.learning_rate
        wd = float(self.optimizer.param_groups[0].get("weight_decay", 0.0))
        backup = [p.detach().clone() for p in params]
        g_train = torch.autograd.grad(self.loss(self.model(tx), ty), params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, g_train):
                if g is not None:
                    p.sub_(xi * (g + wd * p))
        grads = torch.autograd.grad(self._val_loss(vx, vy, reg), alphas + params, allow_unused=True)
        d_alpha = [g if g is not None else torch.zeros_like(a) for g, a in zip(grads[: len(alphas)], alphas)]
        d_w = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[len(alphas):], params)]
        norm = torch.cat([g.reshape(-1) for g in d_w]).norm()
        eps = 0.01 / (norm + 1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, b, g in zip(params, backup, d_w):
                    p.copy_(b + sign * eps * g)
            hg = torch.autograd.grad(self.loss(self.model(tx), ty), alphas, allow_unused=True)
            hessian.append([h if h is not None else torch.zeros_like(a) for h, a in zip(hg, alphas)])
        with torch.no_grad():
            for p, b in zip(params, backup):
                p.copy_(b)
        return [da - xi * (hp - hn) / (2 * eps) for da, hp, hn in zip(d_alpha, hessian[0], hessian[1])]

    def _weight_only(self) -> None:
        """Warm-up steps train weights only (the supernet's α stay put)."""

    # -- the epoch ------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> dict[str, float]:
        # β-DARTS: λ rises linearly to reg_weight over the epochs (here num_epochs >= 1)
        reg = self.reg_weight * (epoch + 1) / self.num_epochs if self.regularization else 0.0
        total = self._steps_per_epoch()
        meter = self._meter()
        search = epoch >= self.warmup_epochs
        for step, ((tx, ty), (vx, vy)) in enumerate(zip(self._batches("train"), self._batches("val")), 1):
            if search:
                self._arch_step(tx, ty, vx, vy, reg)
            else:
                self._weight_only()
            self._weight_step(tx, ty, meter, (epoch, step, total))
        return meter.result()

    # -- early stopping, export --------------------------------------------------------------------
    def param_free_count(self, arch: Arch | None = None) -> int:
        """How many choices of ``arch`` (default: the current argmax) pick a parameter-free candidate."""
        arch = arch if arch is not None else self.supernet.export_from_alphas()
        return sum(1 for label, slot in self.supernet.slots.items()
                   if slot.kind == "layer" and label in arch
                   and slot.param_free[slot.categorical.index(arch[label])])

    def _before_fit(self) -> None:
        self._exported = None
        self._previous = None

    def _should_stop(self) -> bool:
        if self.max_param_free is None or self.epoch <= self.warmup_epochs:
            return False
        current = self.supernet.export_from_alphas(self.exclude_zero)
        count = self.param_free_count(current)
        if count > self.max_param_free:
            self.logger.info(
                "argmax arch uses %d parameter-free ops (> max_param_free=%d): stopping; exporting the %s",
                count, self.max_param_free, "previous epoch's arch" if self._previous is not None else "current arch",
            )
            self._exported = self._previous if self._previous is not None else current
            return True
        self._previous = current
        return False

    def _after_fit(self) -> None:
        if self.selection == "perturbation" and self.supernet.family.mixes:
            self._exported = self._perturbation_select()

    def _perturbation_select(self) -> Arch:
        """DARTS-PT (Wang et al., ICLR 2021): decide each layer choice by the accuracy drop of removing a candidate."""
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=self.generator)))
        batches = list(itertools.islice(self._batches("val", gen), self.pt_eval_batches))
        slots = [s for s in self.supernet.slots.values() if s.kind == "layer" and s.n > 1]
        order = torch.randperm(len(slots), generator=self.generator).tolist()
        arch = self.supernet.export_from_alphas(self.exclude_zero)
        try:
            for pos in order:
                slot = slots[pos]
                w = F.softmax(slot.alpha.detach(), -1)
                accs = []
                for k in range(slot.n):  # the mixture without candidate k
                    slot.fixed = w * (torch.arange(slot.n, device=w.device) != k)
                    correct, _, total = self._eval_sums(batches)
                    accs.append(correct / max(total, 1))
                allowed = [k for k in range(slot.n) if not (self.exclude_zero and slot.zero[k])] or list(range(slot.n))
                best = min(allowed, key=lambda k: accs[k])
                slot.fixed = torch.zeros_like(w)
                slot.fixed[best] = 1.0
                arch[slot.label] = slot.key(best)
                self.pt_log.append({"label": slot.label, "removal_acc": accs, "chosen": slot.key(best)})
                self.logger.info("perturbation selection: %s -> %r (accuracy without each: %s)", slot.label,
                                 slot.key(best), [round(a, 3) for a in accs])
                for _ in range(self.pt_tune_epochs):  # tune the weights with this choice fixed
                    for x, y in self._batches("train"):
                        self._weight_step(x, y)
        finally:
            for slot in slots:
                slot.fixed = None
        return arch

    def _export(self) -> Arch:
        """Argmax α per label (top-``n_chosen`` inputs for multi-input choices); valid for ``model.space``.

        With ``exclude_zero=True`` the zero op (``none``) is skipped, as in DARTS' derivation rule.
        """
        if self._exported is not None:
            return dict(self._exported)
        return self.cap_param_free(self.supernet.export_from_alphas(self.exclude_zero), self.arch_scores())

    def arch_scores(self) -> dict[str, torch.Tensor]:
        """Label -> the per-candidate score export ranks by (:meth:`arch_distribution`)."""
        return {label: self.arch_distribution(s).detach()
                for label, s in self.supernet.slots.items() if s.alpha is not None}

    def cap_param_free(self, arch: Arch, scores: Mapping[str, torch.Tensor], allowed: Mapping[str, list[int]] | None = None) -> Arch:
        """P-DARTS' refinement: at most ``export_max_param_free`` layer choices keep a parameter-free, non-zero pick."""
        cap = self.export_max_param_free
        if cap is None:
            return arch
        free = []
        for label, slot in self.supernet.slots.items():
            if slot.kind != "layer" or label not in scores:
                continue
            k = slot.categorical.index(arch[label])
            if slot.param_free[k] and not slot.zero[k]:
                free.append((float(scores[label][k]), label))
        if len(free) <= cap:
            return arch
        arch = dict(arch)
        for _, label in sorted(free, reverse=True)[cap:]:
            slot = self.supernet.slots[label]
            options = [k for k in (allowed[label] if allowed else range(slot.n)) if not slot.param_free[k]]
            if options:
                best = max(options, key=lambda k: float(scores[label][k]))
                arch[label] = slot.key(best)
        return arch


class GumbelDartsTrainer(DartsTrainer):
    """GDAS: differentiable search over *sampled* sub-graphs (Gumbel-softmax, straight-through).

    Each step draws, per label, ``h = softmax((α + g) / τ)`` with Gumbel noise ``g`` and runs only
    the argmax candidate, scaled by the straight-through one-hot gate (value 1, gradient of
    ``h``), so α learns from a single path per choice. τ anneals linearly from
    ``gumbel_temperature`` (10 in the paper) to ``min_temperature`` (0.1) over the epochs.
    Architecture and weight steps alternate as in DARTS (first order).
    ``reference_gradient=True`` follows the authors' NAS-Bench-201 code (``forward_gdas``): an edge
    outputs ``h_k · op_k(x) + Σ_{j≠k} h_j`` for the sampled ``k``; the added gates are 0 in value
    but give every candidate's α a gradient on every step, not only the sampled one's. Sampling rather than
    mixing is itself a published remedy for DARTS' collapse: parameter-free ops no longer win by
    being cheap to mix in.

    Example::

        trainer = GumbelDartsTrainer(model, nn.CrossEntropyLoss(), None, optimizer, num_epochs=10, dataset=data)
        arch = trainer.fit().export()
    """

    style = "sampled"
    logger_name = "nasforge.oneshot.gdas"

    def __init__(self, *args: Any, gumbel_temperature: float = 10.0, min_temperature: float = 0.1,
                 reference_gradient: bool = False, **kwargs: Any):
        if kwargs.get("unrolled"):
            raise ValueError("GumbelDartsTrainer is first order; unrolled=True is not supported")
        super().__init__(*args, **kwargs)
        self.gumbel_temperature = gumbel_temperature
        self.min_temperature = min_temperature
        self.temperature = gumbel_temperature
        self.reference_gradient = reference_gradient

    def _sample(self, gated: bool) -> None:
        tau = self.temperature
        for slot in self.supernet.slots.values():
            a = slot.logits()
            u = torch.rand(a.shape, generator=self.generator).to(a.device)
            g = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
            idx = int(torch.argmax(a.detach() + g))
            slot.select(idx)
            if gated:
                h = F.softmax((a + g) / tau, -1)
                hard = torch.zeros_like(h)
                hard[idx] = 1.0
                slot.gate, slot.paths, slot.gate_all = hard - h.detach() + h, [idx], self.reference_gradient

    def _arch_step(self, tx, ty, vx, vy, reg: float) -> None:
        self._sample(gated=True)
        super()._arch_step(tx, ty, vx, vy, reg)  # first order (unrolled is refused)
        self._sample(gated=False)  # the weight step trains a fresh sample (gate value 1, no α gradient)

    def _weight_only(self) -> None:
        self._sample(gated=False)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        t = min(epoch / max(self.num_epochs - 1, 1), 1.0)  # τ anneals linearly over the epochs
        self.temperature = self.gumbel_temperature - (self.gumbel_temperature - self.min_temperature) * t
        record = super()._train_epoch(epoch)
        record["tau"] = self.temperature
        return record
