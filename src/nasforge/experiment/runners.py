"""The callables shipped to executors: one trial evaluation, one final test evaluation.

They bundle the model space (only when the evaluator needs networks) and the evaluator, and
run wherever the executor runs them (this process or a worker), so they must stay picklable.
"""

from __future__ import annotations

import inspect
import io
import random
import sys
from typing import Any

from nasforge.evaluate.base import TrialContext, normalize_metrics

__all__ = ["FinalTestRunner", "MetricsWithWeights", "TrialRunner", "build_model", "test_seed", "trial_seed"]


def trial_seed(seed: int, trial_id: int) -> int:
    """A per-trial seed derived from the experiment's seed (same seed and id, same value)."""
    return (int(seed) * 1_000_003 + int(trial_id) * 7_919 + 17) % (2**31 - 1)


def test_seed(seed: int, trial_id: int, k: int = 0) -> int:
    """The seed of the ``k``-th final test run of a trial (``k = 0``: the one used before seeds existed)."""
    return trial_seed(int(seed) + 1 + 1_000_033 * int(k), trial_id)


class MetricsWithWeights(dict):
    """A trial's metrics (a plain dict to everyone) carrying the trained weights (``torch.save`` bytes)."""

    weights: bytes | None = None


def _state_bytes(model: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def _seed_everything(seed: int, with_torch: bool) -> None:
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if with_torch or "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def build_model(model_space: Any, arch: dict[str, Any]) -> Any:
    """The freshly initialised plain network of ``arch`` (``freeze(arch, reinit=True)`` where supported).

    Labels that are not the model's (an evaluator's hyper-parameter choices) are left out."""
    space = getattr(model_space, "space", None)
    if space is not None and any(label not in space for label in arch):
        arch = {label: value for label, value in arch.items() if label in space}
    freeze = model_space.freeze
    try:
        accepts_reinit = "reinit" in inspect.signature(freeze).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        accepts_reinit = False
    return freeze(arch, reinit=True) if accepts_reinit else freeze(arch)


class TrialRunner:
    """Evaluate one arch in a worker: seed, freeze (if the evaluator uses models), evaluate, check the result.

    With ``save_weights`` the result also carries the trained network's weights
    (:class:`MetricsWithWeights`), for ``Experiment(save_weights=...)``.
    """

    save_weights = False

    def __init__(self, model_space: Any, evaluator: Any, metric: str, seed: int):
        self.uses_model = bool(getattr(evaluator, "uses_model", True))
        self.model_space = model_space if self.uses_model else None  # the space only when networks are built
        self.evaluator = evaluator
        self.metric = metric
        self.seed = seed

    def _run(self, trial_id: int, arch: dict[str, Any], seed: int, channel: Any, **test: bool) -> tuple[Any, Any]:
        """``(model or None, the evaluator's result)`` of ``evaluate`` (or of ``test(..., retrain=)``)."""
        _seed_everything(seed, self.uses_model)
        ctx = TrialContext(trial_id, arch, channel, self.metric, getattr(channel, "worker", None), seed)
        model = build_model(self.model_space, arch) if self.uses_model else None
        method = self.evaluator.test if test else self.evaluator.evaluate
        return model, method(model if self.uses_model else arch, ctx, **test)

    def __call__(self, args: tuple, channel: Any) -> dict[str, Any]:
        trial_id, arch = args
        model, result = self._run(trial_id, arch, trial_seed(self.seed, trial_id), channel)
        metrics = normalize_metrics(result, self.metric)
        if "params" not in metrics and callable(getattr(model, "parameters", None)):
            from nasforge.profile import count_params

            metrics["params"] = float(count_params(model, trainable_only=False))
        if self.save_weights and callable(getattr(model, "state_dict", None)):
            out = MetricsWithWeights(metrics)
            out.weights = _state_bytes(model)
            return out
        return metrics


class FinalTestRunner(TrialRunner):
    """Retrain (or train) one chosen arch from scratch and measure it on the test set.

    Returns ``{"metrics": {...}, "weights": bytes | None}`` (the trained state dict, saved with
    ``torch.save``, when the evaluator uses a model).
    """

    def __call__(self, args: tuple, channel: Any) -> dict[str, Any]:
        trial_id, arch, retrain, *rest = args
        seed = int(rest[0]) if rest else test_seed(self.seed, trial_id)
        model, result = self._run(trial_id, arch, seed, channel, retrain=retrain)
        metrics = normalize_metrics(result, "test_" + self.metric, require_metric=False)
        return {"metrics": metrics, "weights": _state_bytes(model) if model is not None else None}
