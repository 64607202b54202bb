"""ENAS (Pham et al., ICML 2018) and SPOS (Guo et al., ECCV 2020): sampled single paths, shared weights."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from nasforge.controller import LstmController
from nasforge.oneshot.base import (
    Batch,
    OneShotTrainer,
    TrainerOptions,
    _plain_key,
    accuracy_metrics,
    batchnorms,
    clip,
)
from nasforge.oneshot.parallel import allreduce_mean_
from nasforge.space import Arch
from nasforge.strategy.evolution import RegularizedEvolution
from nasforge.strategy.testing import run_ask_tell

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["EnasController", "EnasTrainer", "RandomOneShotTrainer"]


#: ENAS' LSTM policy: the library's one controller (the RL strategy's too)
EnasController = LstmController


class EnasTrainer(OneShotTrainer):
    """ENAS: an LSTM controller samples paths of a weight-sharing supernet, trained by REINFORCE.

    Each epoch first trains the shared weights on the training half, one controller-sampled path
    per batch; then trains the controller on the validation half. As in the ENAS reference code,
    the reward of a sampled path is ``reward_function(output, target)`` on a validation batch
    (accuracy by default) **plus** ``entropy_weight · H(path)`` (the entropy bonus; minus
    ``cost_weight · cost(path) / ref_cost`` with a cost table); the baseline is a moving average
    ``b ← baseline_decay · b + (1 - baseline_decay) · reward`` (started at the first reward); the loss
    is ``-(reward - b) · log p(path) + skip_weight · KL(q_skip ‖ skip_target)``, where ``q_skip`` is
    the controller's mean probability of a parameter-free, non-zero candidate (skip / pooling) over
    the layer choices that have one (ENAS' skip penalty; 0 = off). Gradients are summed over
    ``ctrl_steps_aggregate`` samples before an Adam step (``ctrl_lr``); ``ctrl_train_steps`` such
    steps per epoch (None: one sample per validation batch, one pass). :meth:`export` decodes the
    controller greedily. Data-parallel: every rank samples the same path; rewards are averaged.

    Example::

        trainer = EnasTrainer(model, nn.CrossEntropyLoss(), None, None, optimizer, num_epochs=10, dataset=data)
        arch = trainer.fit().export()
    """

    style = "sampled"
    logger_name = "nasforge.oneshot.enas"

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None,
        reward_function: Callable[[torch.Tensor, torch.Tensor], float] | None,
        optimizer: torch.optim.Optimizer | None,
        num_epochs: int,
        dataset: Any,
        *,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
        ctrl_lr: float = 3.5e-4,
        ctrl_steps_aggregate: int = 4,
        ctrl_kwargs: dict[str, Any] | None = None,
        ctrl_train_steps: int | None = None,
        skip_weight: float = 0.0,
        skip_target: float = 0.4,
        **options: Unpack[TrainerOptions],
    ):
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, **options)
        if not 0.0 < skip_target < 1.0:
            raise ValueError(f"skip_target must be a probability in (0, 1), got {skip_target!r}")
        if ctrl_train_steps is not None and (not isinstance(ctrl_train_steps, int) or ctrl_train_steps < 1):
            raise ValueError(f"ctrl_train_steps must be None or an int >= 1, got {ctrl_train_steps!r}")
        self.reward_function = reward_function or (lambda out, y: accuracy_metrics(out, y)["acc"])
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.ctrl_steps_aggregate = ctrl_steps_aggregate
        self.ctrl_train_steps = ctrl_train_steps
        self.skip_weight = skip_weight
        self.skip_target = skip_target
        self.labels = list(self.supernet.slots)
        # the controller's initial weights come from the trainer's generator, not the global RNG
        init = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=self.generator)))
        self.controller = LstmController([s.n for s in self.supernet.slots.values()], **(ctrl_kwargs or {}), generator=init)
        self.controller.to(self.device)
        self.ctrl_optimizer = torch.optim.Adam(self.controller.parameters(), ctrl_lr)
        self.baseline: float | None = None
        self._skip_mask = [
            [free and not zero for free, zero in zip(s.param_free, s.zero)] if s.kind == "layer" else [False] * s.n
            for s in self.supernet.slots.values()
        ]

    def _arch_tensors(self) -> list[torch.Tensor]:
        return list(self.controller.parameters())

    def _skip_penalty(self) -> torch.Tensor | float:
        """KL(Bernoulli(q) ‖ Bernoulli(skip_target)), q the mean skip probability of the last sample's decisions."""
        probs = [p[torch.tensor(m, device=p.device)].sum() for p, m in zip(self.controller.last_probs, self._skip_mask)
                 if any(m) and not all(m)]
        if not probs or not self.skip_weight:
            return 0.0
        q = torch.stack(probs).mean().clamp(1e-6, 1 - 1e-6)
        t = self.skip_target
        return q * torch.log(q / t) + (1 - q) * torch.log((1 - q) / (1 - t))

    def _val_stream(self) -> Iterator[Batch]:
        """Validation batches for the controller: one pass, or cycled for ``ctrl_train_steps``
        updates (a new epoch of the validation half is drawn only when the last is used up)."""
        if self.ctrl_train_steps is None:
            return self._batches("val")
        epochs = (batch for _ in itertools.count() for batch in self._batches("val"))
        return itertools.islice(epochs, self.ctrl_train_steps * self.ctrl_steps_aggregate)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        n = self._steps_per_epoch(len(self.train_data))
        meter = self._meter()
        for step, (x, y) in enumerate(self._batches("train"), 1):
            with torch.no_grad():
                indices, _, _ = self.controller.sample(self.generator)
            self.supernet.select(indices)
            self._weight_step(x, y, meter, (epoch, step, n))
        rewards = []
        ctrl_params = list(self.controller.parameters())
        self.ctrl_optimizer.zero_grad(set_to_none=True)
        k = 0
        for k, (x, y) in enumerate(self._val_stream(), 1):
            indices, log_prob, entropy = self.controller.sample(self.generator)
            self.supernet.select(indices)
            with torch.no_grad():
                acc = float(self.reward_function(self.model(x), y))
            acc = self._sum_over_ranks([acc])[0] / self.dist.world_size
            reward = acc + self.entropy_weight * float(entropy.detach())
            if self._cost and self.cost_weight:
                reward -= self.cost_weight * self.path_cost(dict(zip(self.labels, indices))) / self.ref_cost
            rewards.append(acc)
            self.baseline = reward if self.baseline is None else self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
            ctrl_loss = -(reward - self.baseline) * log_prob + self.skip_weight * self._skip_penalty()
            (ctrl_loss / self.ctrl_steps_aggregate).backward()
            if k % self.ctrl_steps_aggregate == 0:
                self._sync_grads(ctrl_params)
                clip(ctrl_params, self.grad_clip)
                self.ctrl_optimizer.step()
                self.ctrl_optimizer.zero_grad(set_to_none=True)
        if k % self.ctrl_steps_aggregate:
            self._sync_grads(ctrl_params)
            self.ctrl_optimizer.step()
            self.ctrl_optimizer.zero_grad(set_to_none=True)
        record = meter.result()
        record["reward"] = sum(rewards) / max(len(rewards), 1)
        return record

    def arch_probabilities(self) -> dict[str, dict[Any, float]]:
        """Label -> {candidate: probability} of each decision along the controller's greedy path (conditional)."""
        with torch.no_grad():
            self.controller.sample(greedy=True)
            probs = [p.cpu().tolist() for p in self.controller.last_probs]
        return {label: {_plain_key(self.supernet.slots[label].key(i)): v for i, v in enumerate(p)}
                for label, p in zip(self.labels, probs)}

    def _export(self) -> Arch:
        """The controller's most probable path (greedy decoding)."""
        with torch.no_grad():
            indices, _, _ = self.controller.sample(greedy=True)
        return {label: self.supernet.slots[label].key(i) for label, i in zip(self.labels, indices)}


class RandomOneShotTrainer(OneShotTrainer):
    """SPOS: uniform single-path supernet training, then an evolutionary search over sub-networks.

    Training: each batch runs one path drawn uniformly at random per label. Search (run when
    :meth:`fit` ends, or by :meth:`search`): the library's
    :class:`~nasforge.strategy.RegularizedEvolution` over archs of the space whose weights are
    inherited from the supernet (``population_size`` random archs, then tournaments of ``top_k``
    and mutations with per-label probability ``mutation_prob``), until ``search_samples`` distinct
    archs have been scored.
    Before each arch is scored its batch-norm statistics are recalibrated: running statistics are
    reset and re-estimated (cumulative average) on ``calib_batches`` training batches; the score
    is the accuracy on ``eval_batches`` validation batches (the same batches for every arch;
    ``eval_batches=None``: the whole validation half). ``score="loss"`` ranks by the negative
    validation loss instead of accuracy: finer-grained when accuracy is near its ceiling and many
    sub-networks tie (the score in ``search_history`` is then ``-loss``).

    Example::

        trainer = RandomOneShotTrainer(model, nn.CrossEntropyLoss(), None, optimizer, num_epochs=10, dataset=data)
        arch = trainer.fit().export()
        trainer.search_history[:3]     # [(arch, accuracy), ...]
    """

    style = "sampled"
    logger_name = "nasforge.oneshot.spos"

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None,
        optimizer: torch.optim.Optimizer | None,
        num_epochs: int,
        dataset: Any,
        *,
        search_samples: int = 50,
        population_size: int = 16,
        top_k: int = 6,
        mutation_prob: float = 0.2,
        calib_batches: int = 4,
        eval_batches: int | None = 4,
        score: str = "accuracy",
        **options: Unpack[TrainerOptions],
    ):
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, **options)
        # the calibration / evaluation batches of the sub-network search: fixed per trainer, from its seed
        self._eval_seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        for name, value in (("search_samples", search_samples), ("population_size", population_size), ("top_k", top_k)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.search_samples = search_samples
        self.population_size = population_size
        self.top_k = top_k
        self.mutation_prob = mutation_prob
        self._evolution()  # invalid evolution settings fail here, not after training
        self.calib_batches = calib_batches
        self.eval_batches = eval_batches
        if score not in ("accuracy", "loss"):
            raise ValueError(f"score must be 'accuracy' or 'loss', got {score!r}")
        self.score = score
        self.search_history: list[tuple[Arch, float]] = []
        self._best: Arch | None = None

    def _evolution(self) -> RegularizedEvolution:
        population = min(self.population_size, self.search_samples)
        return RegularizedEvolution(population_size=population, sample_size=min(self.top_k, population), mutation_prob=self.mutation_prob)

    def _sample_uniform(self) -> list[int]:
        return [int(torch.randint(s.n, (), generator=self.generator)) for s in self.supernet.slots.values()]

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        n = self._steps_per_epoch(len(self.train_data))
        meter = self._meter()
        for step, (x, y) in enumerate(self._batches("train"), 1):
            self.supernet.select(self._sample_uniform())
            self._weight_step(x, y, meter, (epoch, step, n))
        return meter.result()

    # -- sub-network evaluation ---------------------------------------------------------------
    def _fixed_batches(self) -> tuple[list[Batch], list[Batch]]:
        gen = torch.Generator().manual_seed(self._eval_seed)
        calib = list(itertools.islice(self._batches("train", gen), self.calib_batches))
        evals = list(itertools.islice(self._batches("val", gen), self.eval_batches))
        return calib, evals

    def _score(self, indices: list[int], calib: list, evals: list) -> float:
        self.supernet.select(indices)
        model = self.model
        bns = batchnorms(model)
        momenta = [bn.momentum for bn in bns]
        with torch.no_grad():
            if bns and calib:
                for bn in bns:
                    bn.reset_running_stats()
                    bn.momentum = None
                model.train()
                for x, _ in calib:
                    model(x)
                for bn, m in zip(bns, momenta):
                    bn.momentum = m
                if self.dist.enabled:  # every rank scores with the statistics of all ranks' batches
                    allreduce_mean_([t for bn in bns for t in (bn.running_mean, bn.running_var) if t is not None])
        model.eval()
        correct, loss_sum, total = self._eval_sums(evals, self.score == "loss")
        model.train()
        penalty = 0.0
        if self._cost and self.cost_weight:
            penalty = self.cost_weight * self.path_cost(dict(zip(self.supernet.slots, indices))) / self.ref_cost
        if self.score == "loss":
            return -loss_sum / max(total, 1) - penalty
        return correct / max(total, 1) - penalty

    def evaluate_arch(self, arch: Arch) -> float:
        """Validation accuracy of ``arch`` with inherited supernet weights (batch norm recalibrated)."""
        with self._supernet_installed():
            return self._score(self.supernet.indices(arch), *self._fixed_batches())

    def search(self) -> Arch:
        """Run the evolutionary search over sub-networks; returns (and keeps) the best arch.

        The library's :class:`~nasforge.strategy.RegularizedEvolution` proposes archs of the supernet's space
        through its ask/tell interface (seeded from the trainer's generator), ``population_size`` and
        ``top_k`` (its tournament size) capped by ``search_samples``; each proposal is scored by
        :meth:`evaluate_arch`'s procedure on the same fixed batches.
        """
        seed = int(torch.randint(0, 2**31 - 1, (), generator=self.generator))
        scored: list[tuple[Arch, float]] = []
        errors: list[Exception] = []
        with self._supernet_installed():
            calib, evals = self._fixed_batches()

            def objective(arch: Arch) -> float:
                try:
                    value = self._score(self.supernet.indices(arch), calib, evals)
                except Exception as exc:  # a failing sub-network is a bug to report, not a failed trial
                    errors.append(exc)
                    raise
                scored.append((dict(arch), value))
                self.logger.debug("sub-network %s: %.4f", arch, value)
                return value

            def reraise(_trial: Any) -> None:
                if errors:
                    raise errors[0]

            run_ask_tell(self._evolution(), self.supernet.space, objective, self.search_samples, seed=seed, on_tell=reraise)
        self.search_history.extend(scored)
        best, value = max(scored, key=lambda item: item[1] if math.isfinite(item[1]) else -math.inf)
        self.logger.info("SPOS search: %d sub-networks scored, best score %.4f", len(scored), value)
        self._best = best
        return dict(best)

    def _after_fit(self) -> None:
        self.search()

    def _export(self) -> Arch:
        """The best arch of the sub-network search (run now if :meth:`fit` has not run it)."""
        return dict(self._best) if self._best is not None else self.search()
