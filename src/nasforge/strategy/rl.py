"""Policy-based reinforcement learning: an LSTM controller (Zoph & Le 2017; ENAS-style
controller of Pham et al. 2018) trained by REINFORCE (Williams 1992) with a moving-average
baseline and an entropy bonus, or by PPO (Schulman et al. 2017).

torch is imported when the strategy is set up, never when :mod:`nasforge.strategy` is imported.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from nasforge.space import Arch, arch_key
from nasforge.strategy.base import HistoryStrategy, check_choice, check_positive_int
from nasforge.trial import Trial

__all__ = ["PolicyBasedRL"]

_log = logging.getLogger("nasforge.strategy.rl")


def _to_json(obj: Any, torch: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return {"__tensor__": obj.detach().cpu().tolist(), "dtype": str(obj.dtype).replace("torch.", "")}
    if isinstance(obj, dict):
        return {"__dict__": [[_to_json(k, torch), _to_json(v, torch)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v, torch) for v in obj]
    return obj


def _from_json(obj: Any, torch: Any) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return torch.tensor(obj["__tensor__"], dtype=getattr(torch, obj["dtype"]))
        if "__dict__" in obj:
            return {_from_json(k, torch): _from_json(v, torch) for k, v in obj["__dict__"]}
        return {k: _from_json(v, torch) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v, torch) for v in obj]
    return obj


class PolicyBasedRL(HistoryStrategy):
    """An LSTM controller samples one decision per label; policy gradient trains it.

    ``algorithm="reinforce"``: after every ``batch_size`` results, minimise
    ``-(R - b) · log π(arch) - entropy_weight · H(π)`` where ``b`` is an exponential moving
    average of past rewards (decay ``baseline_decay``). ``algorithm="ppo"``: collect
    ``batch_size`` results, then ``ppo_epochs`` passes of the clipped surrogate objective
    (``clip``) with the same advantages and entropy bonus; the old log-probabilities are those
    of the policy that sampled each arch. With ``normalize_advantage`` the advantage is divided
    by a running standard deviation of ``R - b`` (rewards of any scale then work with the same
    learning rate).

    The controller is an ``LSTMCell`` of width ``hidden``: the previous decision's embedding
    is the next input, a linear head per label gives the logits (squashed as
    ``tanh_constant · tanh(logits / temperature)`` as in ENAS). Weights are initialised and
    archs sampled from the strategy's numpy generator, so a seed fixes every proposal.

    With ``dedup=True`` (default) the strategy never proposes an arch twice: when the
    controller samples an arch already proposed it samples again (``max_resample`` times, then
    a random unseen arch is proposed); with ``learn_from_repeats`` a repeat with a known reward
    also updates the controller (no evaluation needed, but a gradient step per repeat). Failed
    trials are skipped (no reward). Works with concurrent asks: each result updates the
    controller when it arrives.

    Example::

        strategy = PolicyBasedRL(algorithm="ppo", learning_rate=0.01)
    """

    _state_attrs = ("_baseline", "_adv_var", "_buffer", "_old_logp", "_updates")
    _repr_attrs = ("algorithm", "learning_rate")

    def __init__(
        self,
        algorithm: str = "reinforce",
        hidden: int = 64,
        learning_rate: float = 0.01,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        batch_size: int | None = None,
        ppo_epochs: int = 4,
        clip: float = 0.2,
        tanh_constant: float | None = 1.5,
        temperature: float = 1.0,
        normalize_advantage: bool = True,
        dedup: bool = True,
        max_resample: int = 10,
        learn_from_repeats: bool = False,
    ):
        self.algorithm = check_choice("algorithm", algorithm, ("reinforce", "ppo"))
        self.hidden = check_positive_int("hidden", hidden)
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        if batch_size is None:
            batch_size = 1 if algorithm == "reinforce" else 8
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.ppo_epochs = check_positive_int("ppo_epochs", ppo_epochs)
        if not 0 < clip < 1:
            raise ValueError(f"clip must be in (0, 1), got {clip!r}")
        self.clip = float(clip)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.normalize_advantage = bool(normalize_advantage)
        self.dedup = bool(dedup)
        self.max_resample = check_positive_int("max_resample", max_resample)
        self.learn_from_repeats = bool(learn_from_repeats)

    def setup(self, space, seed=None) -> None:
        super().setup(space, seed)
        import torch

        from nasforge.controller import LstmController

        self._torch = torch
        self._sizes = [len(space[label]) for label in space.labels]
        self._controller = LstmController(self._sizes, self.hidden, self.temperature, self.tanh_constant)
        with torch.no_grad():  # initialise from our generator: uniform(-0.1, 0.1) as in ENAS
            for p in self._controller.parameters():
                p.copy_(torch.from_numpy(self.rng.uniform(-0.1, 0.1, size=tuple(p.shape))).to(p.dtype))
        self._optimizer = torch.optim.Adam(self._controller.parameters(), lr=self.learning_rate)
        self._baseline: float | None = None
        self._adv_var: float | None = None
        self._buffer: list[list[Any]] = []  # [indices, reward, old_logp]
        self._old_logp: dict[str, float] = {}  # key -> log-prob when sampled (PPO)
        self._updates = 0

    # -- policy -----------------------------------------------------------------------------------
    def _sample(self) -> tuple[list[int], float]:
        def choose(_step: int, p: Any) -> int:
            p = p.double().numpy()
            return int(self.rng.choice(len(p), p=p / p.sum()))

        with self._torch.no_grad():
            chosen, logp, _ = self._controller(choose=choose)
        return chosen[0], float(logp[0])

    def _logp(self, indices: list[int]) -> float:
        with self._torch.no_grad():
            _, logp, _ = self._controller(actions=[indices])
        return float(logp[0])

    def _advantage(self, reward: float) -> float:
        if self._baseline is None:
            self._baseline = reward
        adv = reward - self._baseline
        self._baseline = self.baseline_decay * self._baseline + (1 - self.baseline_decay) * reward
        if self.normalize_advantage:
            if self._adv_var is None:
                self._adv_var = adv * adv if adv else 0.0
                return 0.0 if not adv else math.copysign(1.0, adv)
            self._adv_var = self.baseline_decay * self._adv_var + (1 - self.baseline_decay) * adv * adv
            adv = adv / (math.sqrt(self._adv_var) + 1e-8)
        return adv

    def _learn(self, indices: list[int], reward: float, old_logp: float | None) -> None:
        adv = self._advantage(reward)
        if old_logp is None:
            old_logp = self._logp(indices)
        self._buffer.append([list(indices), adv, old_logp])
        if len(self._buffer) < self.batch_size:
            return
        torch = self._torch
        acts = [b[0] for b in self._buffer]
        advs = torch.tensor([b[1] for b in self._buffer], dtype=torch.float32)
        old = torch.tensor([b[2] for b in self._buffer], dtype=torch.float32)
        for _ in range(self.ppo_epochs if self.algorithm == "ppo" else 1):
            _, logp, ent = self._controller(actions=acts)
            if not logp.requires_grad:  # every choice has a single candidate: no decision to learn
                break
            if self.algorithm == "ppo":
                ratio = torch.exp(logp - old)
                surr = torch.minimum(ratio * advs, torch.clamp(ratio, 1 - self.clip, 1 + self.clip) * advs)
                loss = -(surr.mean() + self.entropy_weight * ent.mean())
            else:
                loss = -((advs * logp).mean() + self.entropy_weight * ent.mean())
            self._optimizer.zero_grad()
            loss.backward()
            self._optimizer.step()
        self._buffer = []
        self._updates += 1

    # -- ask/tell -----------------------------------------------------------------------------------
    def ask(self) -> Arch | None:
        if self.dedup and self._exhausted():
            return None
        for _ in range(self.max_resample):
            indices, logp = self._sample()
            arch = self.space.from_indices(indices)
            key = arch_key(arch)
            if not self.dedup or key not in self._asked:
                self._old_logp[key] = logp
                return self._propose(arch)
            if self.learn_from_repeats and key in self._scores:  # known reward: a free update
                self._learn(indices, self._scores[key], logp)
        fallback = self._random_unseen()
        if fallback is None:
            return None
        _log.debug("controller repeated known archs %d times; proposing a random unseen one", self.max_resample)
        return self._propose(fallback)

    def tell(self, trial: Trial) -> None:
        key, score = self._record(trial)
        old = self._old_logp.pop(key, None) if key not in self._pending else self._old_logp.get(key)
        if score is None:
            return
        if self.space.conditional:
            old = None  # the canonical arch's indices (inactive labels at 0) differ from what was sampled
        self._learn(self.space.to_indices(trial.arch), score, old)

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "controller": _to_json(self._controller.state_dict(), self._torch),
            "optimizer": _to_json(self._optimizer.state_dict(), self._torch),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._controller.load_state_dict(_from_json(state["controller"], self._torch))
        self._optimizer.load_state_dict(_from_json(state["optimizer"], self._torch))
