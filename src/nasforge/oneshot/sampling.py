"""ENAS (Pham et al., ICML 2018) and SPOS (Guo et al., ECCV 2020): sampled single paths, shared weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from nasforge.oneshot.base import OneShotTrainer, _plain_key, accuracy_metrics, clip
from nasforge.oneshot.parallel import allreduce_mean_
from nasforge.oneshot.supernet import Supernet
from nasforge.space import Arch

__all__ = ["EnasController", "EnasTrainer", "RandomOneShotTrainer"]


def apply_single_path(supernet: Supernet, indices: list[int]) -> None:
    """Make every slot run exactly its candidate at ``indices`` (no gates): one sampled path."""
    for slot, idx in zip(supernet.slots.values(), indices):
        slot.index, slot.gate, slot.paths = idx, None, None


class EnasController(torch.nn.Module):
    """ENAS' LSTM policy: one decision per label, in order, each fed the previous decision's embedding.

    Logits are squashed as in the paper: ``tanh_constant · tanh(logits / temperature)``.
    """

    def __init__(self, sizes: list[int], hidden: int = 64, temperature: float = 5.0, tanh_constant: float = 2.5):
        super().__init__()
        self.sizes = list(sizes)
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.lstm = torch.nn.LSTMCell(hidden, hidden)
        self.start = torch.nn.Parameter(torch.zeros(1, hidden))
        self.embeddings = torch.nn.ModuleList(torch.nn.Embedding(n, hidden) for n in sizes)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(hidden, n) for n in sizes)

    def sample(self, generator: torch.Generator | None = None, greedy: bool = False) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Indices per label, the summed log-probability and the summed entropy.

        ``self.last_probs`` keeps each decision's probability vector (with gradients) for penalties.
        """
        h = torch.zeros(1, self.hidden, device=self.start.device)
        c = torch.zeros_like(h)
        inp = self.start
        log_probs, entropies, indices = [], [], []
        self.last_probs: list[torch.Tensor] = []
        for k in range(len(self.sizes)):
            h, c = self.lstm(inp, (h, c))
            logits = self.tanh_constant * torch.tanh(self.heads[k](h) / self.temperature)
            logp = F.log_softmax(logits, -1)[0]
            p = logp.exp()
            self.last_probs.append(p)
            if greedy:
                idx = int(torch.argmax(p))
            else:
                idx = int(torch.multinomial(p.detach().cpu(), 1, generator=generator))
            indices.append(idx)
            log_probs.append(logp[idx])
            entropies.append(-(p * logp).sum())
            inp = self.embeddings[k](torch.tensor([idx], device=h.device))
        return indices, torch.stack(log_probs).sum(), torch.stack(entropies).sum()


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
        batch_size: int = 64,
        workers: int = 0,
        device: str | torch.device | None = None,
        log_frequency: int | None = None,
        grad_clip: float | None = 5.0,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
        ctrl_lr: float = 3.5e-4,
        ctrl_steps_aggregate: int = 4,
        ctrl_kwargs: dict[str, Any] | None = None,
        *,
        ctrl_train_steps: int | None = None,
        skip_weight: float = 0.0,
        skip_target: float = 0.4,
        seed: int | None = None,
        lr_scheduler: Any = None,
        threads: int | None = None,
        distributed: bool | None = None,
        cost_table: Mapping[str, list[float]] | None = None,
        cost_weight: float = 0.0,
    ):
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, batch_size, workers, device,
                         log_frequency, grad_clip, seed, lr_scheduler, threads=threads, distributed=distributed,
                         cost_table=cost_table, cost_weight=cost_weight)
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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (), generator=self.generator)))
            self.controller = EnasController([s.n for s in self.supernet.slots.values()], **(ctrl_kwargs or {}))
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

    def _val_stream(self):
        """Validation batches for the controller: one pass, or cycled for ``ctrl_train_steps`` updates."""
        if self.ctrl_train_steps is None:
            yield from self._batches("val")
            return
        needed = self.ctrl_train_steps * self.ctrl_steps_aggregate
        while needed > 0:
            for b in self._batches("val"):
                yield b
                needed -= 1
                if needed == 0:
                    return

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        model, loss_fn, optimizer = self.model, self.loss, self.optimizer
        params = self._weight_params()
        n = -(-len(self.train_data) // (self.batch_size * self.dist.world_size))
        meter = self._meter()
        for step, (x, y) in enumerate(self._batches("train"), 1):
            with torch.no_grad():
                indices, _, _ = self.controller.sample(self.generator)
            apply_single_path(self.supernet, indices)
            optimizer.zero_grad(set_to_none=True)
            out = self._train_forward(x)
            loss = loss_fn(out, y)
            loss.backward()
            clip(params, self.grad_clip)
            optimizer.step()
            values = meter.add(loss, out, y)
            if self.log_frequency:
                self._log_step(epoch, step, n, {"loss": float(loss.detach()), **values})
        rewards = []
        ctrl_params = list(self.controller.parameters())
        self.ctrl_optimizer.zero_grad(set_to_none=True)
        k = 0
        for k, (x, y) in enumerate(self._val_stream(), 1):
            indices, log_prob, entropy = self.controller.sample(self.generator)
            apply_single_path(self.supernet, indices)
            with torch.no_grad():
                acc = float(self.reward_function(model(x), y))
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
        out = {}
        for label, p in zip(self.labels, probs):
            slot = self.supernet.slots[label]
            out[label] = {_plain_key(slot.key(i)): v for i, v in enumerate(p)}
        return out

    def _export(self) -> Arch:
        """The controller's most probable path (greedy decoding)."""
        with torch.no_grad():
            indices, _, _ = self.controller.sample(greedy=True)
        return {label: self.supernet.slots[label].key(i) for label, i in zip(self.labels, indices)}


def _batchnorms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


class RandomOneShotTrainer(OneShotTrainer):
    """SPOS: uniform single-path supernet training, then an evolutionary search over sub-networks.

    Training: each batch runs one path drawn uniformly at random per label. Search (run when
    :meth:`fit` ends, or by :meth:`search`): an evolution over archs whose weights are inherited
    from the supernet — a population of ``population_size`` random archs, then generations of
    children (half mutation with per-label probability ``mutation_prob``, half uniform
    crossover of two of the ``top_k`` best), until ``search_samples`` archs have been scored.
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
        batch_size: int = 64,
        workers: int = 0,
        device: str | torch.device | None = None,
        log_frequency: int | None = None,
        grad_clip: float | None = 5.0,
        *,
        search_samples: int = 50,
        population_size: int = 16,
        top_k: int = 6,
        mutation_prob: float = 0.2,
        calib_batches: int = 4,
        eval_batches: int | None = 4,
        score: str = "accuracy",
        seed: int | None = None,
        lr_scheduler: Any = None,
        threads: int | None = None,
        distributed: bool | None = None,
        cost_table: Mapping[str, list[float]] | None = None,
        cost_weight: float = 0.0,
    ):
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, batch_size, workers, device,
                         log_frequency, grad_clip, seed, lr_scheduler, threads=threads, distributed=distributed,
                         cost_table=cost_table, cost_weight=cost_weight)
        # the calibration / evaluation batches of the sub-network search: fixed per trainer, from its seed
        self._eval_seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        self.search_samples = search_samples
        self.population_size = population_size
        self.top_k = top_k
        self.mutation_prob = mutation_prob
        self.calib_batches = calib_batches
        self.eval_batches = eval_batches
        if score not in ("accuracy", "loss"):
            raise ValueError(f"score must be 'accuracy' or 'loss', got {score!r}")
        self.score = score
        self.search_history: list[tuple[Arch, float]] = []
        self._best: Arch | None = None

    def _sample_uniform(self) -> list[int]:
        return [int(torch.randint(s.n, (), generator=self.generator)) for s in self.supernet.slots.values()]

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        loss_fn, optimizer = self.loss, self.optimizer
        params = self._weight_params()
        n = -(-len(self.train_data) // (self.batch_size * self.dist.world_size))
        meter = self._meter()
        for step, (x, y) in enumerate(self._batches("train"), 1):
            apply_single_path(self.supernet, self._sample_uniform())
            optimizer.zero_grad(set_to_none=True)
            out = self._train_forward(x)
            loss = loss_fn(out, y)
            loss.backward()
            clip(params, self.grad_clip)
            optimizer.step()
            values = meter.add(loss, out, y)
            if self.log_frequency:
                self._log_step(epoch, step, n, {"loss": float(loss.detach()), **values})
        return meter.result()

    # -- sub-network evaluation ---------------------------------------------------------------
    def _fixed_batches(self) -> tuple[list, list]:
        gen = torch.Generator()
        gen.manual_seed(self._eval_seed)
        rank, world = self.dist.rank, self.dist.world_size
        calib = []
        for i, b in enumerate(self.train_data.batches(self.batch_size, gen, self.device, rank, world)):
            if i >= self.calib_batches:
                break
            calib.append(b)
        evals = []
        for i, b in enumerate(self.val_data.batches(self.batch_size, gen, self.device, rank, world)):
            if self.eval_batches is not None and i >= self.eval_batches:
                break
            evals.append(b)
        return calib, evals

    def _score(self, indices: list[int], calib: list, evals: list) -> float:
        apply_single_path(self.supernet, indices)
        model = self.model
        bns = _batchnorms(model)
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
                    allreduce_mean_([t for bn in bns for t in (bn.running_mean, bn.running_var)])
            model.eval()
            correct = total = 0
            loss_sum = 0.0
            for x, y in evals:
                out = model(x)
                correct += int((out.argmax(1) == y).sum())
                if self.score == "loss":
                    loss_sum += float(self.loss(out, y)) * len(y)
                total += len(y)
        model.train()
        correct, loss_sum, total = self._sum_over_ranks([correct, loss_sum, total])
        penalty = 0.0
        if self._cost and self.cost_weight:
            penalty = self.cost_weight * self.path_cost(dict(zip(self.supernet.slots, indices))) / self.ref_cost
        if self.score == "loss":
            return -loss_sum / max(total, 1) - penalty
        return correct / max(total, 1) - penalty

    def evaluate_arch(self, arch: Arch) -> float:
        """Validation accuracy of ``arch`` with inherited supernet weights (batch norm recalibrated)."""
        # a canonical arch omits inactive labels: their (unused) paths stay at the first candidate
        indices = [s.categorical.index(arch[label]) if label in arch else 0 for label, s in self.supernet.slots.items()]
        was = self.supernet.installed
        self.supernet.install()
        state = {id(bn): (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in _batchnorms(self.model)}
        try:
            return self._score(indices, *self._fixed_batches())
        finally:
            for bn in _batchnorms(self.model):
                bn.running_mean.copy_(state[id(bn)][0])
                bn.running_var.copy_(state[id(bn)][1])
                bn.num_batches_tracked.copy_(state[id(bn)][2])
            if not was:
                self.supernet.restore()

    def search(self) -> Arch:
        """Run the evolutionary search over sub-networks; returns (and keeps) the best arch."""
        was = self.supernet.installed
        self.supernet.install()
        bns = _batchnorms(self.model)
        saved = [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in bns]
        try:
            best = self._evolve()
        finally:
            for bn, (m, v, t) in zip(bns, saved):
                bn.running_mean.copy_(m)
                bn.running_var.copy_(v)
                bn.num_batches_tracked.copy_(t)
            if not was:
                self.supernet.restore()
        self._best = self.supernet.arch_of_indices(dict(zip(self.supernet.slots, best)))
        return dict(self._best)

    def _evolve(self) -> list[int]:
        sizes = [s.n for s in self.supernet.slots.values()]
        calib, evals = self._fixed_batches()
        scored: dict[tuple[int, ...], float] = {}
        budget = max(self.search_samples, 1)
        total_space = 1
        for n in sizes:
            total_space *= n
        budget = min(budget, total_space)

        def rand_int(n: int) -> int:
            return int(torch.randint(n, (), generator=self.generator))

        def score(cand: tuple[int, ...]) -> None:
            if cand not in scored and len(scored) < budget:
                scored[cand] = self._score(list(cand), calib, evals)
                self.search_history.append((self.supernet.arch_of_indices(dict(zip(self.supernet.slots, cand))), scored[cand]))
                self.logger.debug("sub-network %s: %.4f", cand, scored[cand])

        tries = 0
        while len(scored) < min(self.population_size, budget) and tries < 100 * budget:
            score(tuple(rand_int(n) for n in sizes))
            tries += 1
        population = sorted(scored, key=scored.get, reverse=True)[: self.population_size]
        while len(scored) < budget and tries < 100 * budget:
            parents = population[: self.top_k]
            tries += 1
            if rand_int(2) == 0:
                p = parents[rand_int(len(parents))]
                child = tuple(rand_int(n) if float(torch.rand((), generator=self.generator)) < self.mutation_prob else v
                              for v, n in zip(p, sizes))
            else:
                a, b = parents[rand_int(len(parents))], parents[rand_int(len(parents))]
                child = tuple(x if rand_int(2) == 0 else y for x, y in zip(a, b))
            score(child)
            population = sorted(set(population) | ({child} if child in scored else set()), key=scored.get, reverse=True)[: self.population_size]
        best = max(scored, key=scored.get)
        self.logger.info("SPOS search: %d sub-networks scored, best validation accuracy %.4f", len(scored), scored[best])
        return list(best)

    def _after_fit(self) -> None:
        self.search()

    def _export(self) -> Arch:
        """The best arch of the sub-network search (run now if :meth:`fit` has not run it)."""
        if self._best is None:
            self.search()
        return dict(self._best)
