"""ProxylessNAS (Cai, Zhu & Han, ICLR 2019): binary-gated paths, two-path sampling, latency loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nasforge.oneshot.base import OneShotTrainer, TrainerOptions
from nasforge.oneshot.supernet import Supernet, _LayerChoiceWrapper
from nasforge.profile import count_flops, count_params, measure_latency
from nasforge.space import Arch

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ProxylessTrainer", "measure_cost_table", "measure_latency_table"]


def measure_latency_table(
    supernet: Supernet, dummy_input: torch.Tensor, repeats: int = 20, warmup: int = 3
) -> dict[str, list[float]]:
    """Per-op latency (milliseconds) of every layer-choice candidate, measured in place.

    Runs one forward of the supernet (every choice at its first candidate) to capture each
    layer choice's input, then times each candidate on it with :func:`nasforge.profile.measure_latency`.
    Labels tied across several modules add up their modules' latencies.
    """
    return measure_cost_table(supernet, dummy_input, "latency", repeats=repeats, warmup=warmup)


def measure_cost_table(
    supernet: Supernet | Any, dummy_input: torch.Tensor, metric: str = "flops", repeats: int = 20, warmup: int = 3
) -> dict[str, list[float]]:
    """Per-candidate cost of every layer choice: ``metric`` is ``"flops"`` (:func:`nasforge.profile.count_flops`
    on the candidate's captured input), ``"params"`` (:func:`nasforge.profile.count_params`) or ``"latency"``
    (milliseconds, :func:`nasforge.profile.measure_latency`). ``supernet``: a :class:`Supernet` or a trainer.
    Labels tied across several modules add up their modules' costs. Pass the result as ``cost_table``
    (or ``latency_table`` to :class:`ProxylessTrainer`).
    """
    if metric not in ("flops", "params", "latency"):
        raise ValueError(f"metric must be 'flops', 'params' or 'latency', got {metric!r}")
    supernet = getattr(supernet, "supernet", supernet)
    was_installed = supernet.installed
    supernet.install()
    captured: dict[int, tuple[_LayerChoiceWrapper, torch.Tensor]] = {}
    hooks = []
    for m in supernet.model.modules():
        if isinstance(m, _LayerChoiceWrapper):
            def hook(mod, args, _out):
                if id(mod) not in captured and args and isinstance(args[0], torch.Tensor):
                    captured[id(mod)] = (mod, args[0].detach())
            hooks.append(m.register_forward_hook(hook))
    saved = {label: (s.index, s.gate, s.paths, s.gate_all) for label, s in supernet.slots.items()}
    try:
        supernet.select([0] * len(supernet.slots))
        with torch.no_grad():
            supernet.model.eval()
            supernet.model(dummy_input)
            supernet.model.train()
    finally:
        for h in hooks:
            h.remove()
        for label, (i, g, p, a) in saved.items():
            s = supernet.slots[label]
            s.index, s.gate, s.paths, s.gate_all = i, g, p, a
        if not was_installed:
            supernet.restore()
    table: dict[str, list[float]] = {}
    for mod, x in captured.values():
        if metric == "latency":
            lat = [1000.0 * measure_latency(op, x, repeats=repeats, warmup=warmup) for op in mod.ops]
        elif metric == "flops":
            lat = [float(count_flops(op, x)) for op in mod.ops]
        else:
            lat = [float(count_params(op)) for op in mod.ops]
        prev = table.get(mod.slot.label)
        table[mod.slot.label] = lat if prev is None else [a + b for a, b in zip(prev, lat)]
    return table


class ProxylessTrainer(OneShotTrainer):
    """ProxylessNAS with binary gates.

    Weight steps train one path per choice, sampled from softmax(α). Architecture steps sample
    two distinct candidates per choice from softmax(α), run both, gate them with a binary
    one-hot gate (straight-through to softmax over the two, which gives the paper's gradient
    ``∂L/∂α_i = Σ_j ∂L/∂g_j p_j (δ_ij - p_i)``), take an Adam step on α, then rescale the two
    logits so the other candidates' probabilities are unchanged.

    Latency: pass ``latency_table`` (label -> per-candidate milliseconds, e.g. from
    :func:`measure_latency_table`, built on :func:`nasforge.profile.measure_latency`) or
    ``dummy_input`` (a batch-shaped example input: the table is measured here), and either

    * ``latency_weight`` λ > 0: ``λ · E[latency] / ref_latency`` is added to the architecture loss
      (the paper's additive form), or
    * ``latency_target`` T (ms): the architecture loss is multiplied by ``max(1, E[latency] / T) ** latency_beta``
      (a soft constraint in the spirit of MnasNet / the ProxylessNAS code's multiplicative loss, with
      β = 0.6 as there): no pressure once the expected latency is under the target.

    ``E[latency]`` is under softmax(α), summed over the labels of the table (differentiable).
    ``warmup_epochs`` train weights only (the paper warms the supernet up before any α update).

    Example::

        trainer = ProxylessTrainer(model, nn.CrossEntropyLoss(), None, optimizer, num_epochs=10, dataset=data,
                                   dummy_input=torch.randn(1, 3, 32, 32), latency_weight=0.1)
        arch = trainer.fit().export()
    """

    style = "sampled"
    logger_name = "nasforge.oneshot.proxyless"

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None,
        optimizer: torch.optim.Optimizer | None,
        num_epochs: int,
        dataset: Any,
        *,
        warmup_epochs: int = 0,
        arc_learning_rate: float = 1e-3,
        latency_table: Mapping[str, list[float]] | None = None,
        dummy_input: torch.Tensor | None = None,
        latency_weight: float = 0.0,
        ref_latency: float | None = None,
        latency_target: float | None = None,
        latency_beta: float = 0.6,
        **options: Unpack[TrainerOptions],
    ):
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, **options)
        if latency_target is not None and not latency_target > 0:
            raise ValueError(f"latency_target must be a positive number of milliseconds, got {latency_target!r}")
        self.latency_target = latency_target
        self.latency_beta = latency_beta
        self.warmup_epochs = warmup_epochs
        self.alpha_list = self.supernet.init_alphas(self.device, scale=0.0, generator=self.generator)
        self._exclude_from_weight_optimizer(self.alpha_list)
        self.arch_optimizer = torch.optim.Adam(self.alpha_list, arc_learning_rate, betas=(0.0, 0.999), eps=1e-8)
        self.latency_weight = latency_weight
        if latency_table is None and dummy_input is not None:  # the supernet stays installed
            latency_table = measure_latency_table(self.supernet, dummy_input.to(self.device))
        self.latency_table = self._check_cost_table(latency_table, "latency_table")
        if latency_target is not None and not self.latency_table:
            raise ValueError("latency_target needs a latency_table or a dummy_input to measure one")
        self._lat = {k: torch.tensor(v, device=self.device) for k, v in self.latency_table.items()}
        if ref_latency is None and self._lat:
            ref_latency = float(sum(t.mean() for t in self._lat.values()))
        self.ref_latency = ref_latency or 1.0

    def expected_latency(self) -> torch.Tensor:
        """E[latency] in ms under softmax(α), summed over the labels of the latency table."""
        return self.expected_cost(self._lat)

    def _sample_single(self) -> None:
        for slot in self.supernet.slots.values():
            slot.select(int(torch.multinomial(F.softmax(slot.logits().detach(), -1).cpu(), 1, generator=self.generator)))

    def _sample_two(self) -> dict[str, list[int]]:
        chosen = {}
        for label, slot in self.supernet.slots.items():
            alpha = slot.logits()
            p = F.softmax(alpha.detach(), -1).cpu()
            k = min(2, slot.n)
            paths = sorted(int(i) for i in torch.multinomial(p, k, replacement=False, generator=self.generator))
            sub = F.softmax(alpha[paths], -1)
            pick = int(torch.multinomial(sub.detach().cpu(), 1, generator=self.generator))
            hard = torch.zeros_like(sub)
            hard[pick] = 1.0
            gate_sub = hard - sub.detach() + sub
            gate = torch.zeros(slot.n, device=alpha.device).index_put((torch.tensor(paths, device=alpha.device),), gate_sub)
            slot.gate, slot.paths, slot.index = gate, paths, paths[pick]
            chosen[label] = paths
        return chosen

    def _arch_loss(self, vx: torch.Tensor, vy: torch.Tensor) -> torch.Tensor:
        loss = self.loss(self.model(vx), vy)
        if self._lat and self.latency_target is not None:
            ratio = self.expected_latency() / self.latency_target
            loss = loss * torch.clamp(ratio, min=1.0) ** self.latency_beta
        elif self.latency_weight and self._lat:
            loss = loss + self.latency_weight * self.expected_latency() / self.ref_latency
        return loss + self.cost_penalty()

    def _arch_step(self, vx: torch.Tensor, vy: torch.Tensor) -> None:
        paths = self._sample_two()
        old = {label: self.supernet.slots[label].logits().detach()[p].clone() for label, p in paths.items()}
        grads = torch.autograd.grad(self._arch_loss(vx, vy), self.alpha_list, allow_unused=True)
        self._arch_update(self.alpha_list, grads, self.arch_optimizer)
        with torch.no_grad():  # keep the unsampled candidates' probabilities unchanged
            for label, p in paths.items():
                a = self.supernet.slots[label].logits()
                new = a[p]
                a[p] = new + (torch.logsumexp(old[label], 0) - torch.logsumexp(new, 0))

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        arch = epoch >= self.warmup_epochs
        total = self._steps_per_epoch()
        meter = self._meter()
        for step, ((tx, ty), (vx, vy)) in enumerate(zip(self._batches("train"), self._batches("val")), 1):
            self._sample_single()
            self._weight_step(tx, ty, meter, (epoch, step, total))
            if arch:
                self._arch_step(vx, vy)
        record = meter.result()
        if self._lat:
            record["expected_latency_ms"] = float(self.expected_latency().detach())
        return record

    def _export(self) -> Arch:
        """The most probable candidate per label (argmax α)."""
        return self.supernet.export_from_alphas()
