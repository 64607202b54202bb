"""One-shot and gradient-based NAS over the same model spaces as multi-trial search.

The trainers convert a model space's choices in place into weight-sharing supernet modules
(:mod:`nasforge.oneshot.supernet`), train, restore the original choices, and :meth:`export` an
arch dict valid for ``model.space``::

    from nasforge.oneshot import DartsTrainer

    trainer = DartsTrainer(model, loss, metrics, optimizer, num_epochs=5, dataset=data)
    trainer.fit()
    net = model.freeze(trainer.export())

* :class:`DartsTrainer`: DARTS (softmax mixtures; first or second order); collapse remedies
  ``regularization="beta"`` (β-DARTS) and ``max_param_free`` (DARTS+ early stopping).
* :class:`DrNasTrainer`: DrNAS (Dirichlet-distributed mixture weights, KL anchor, progressive pruning).
* :class:`GumbelDartsTrainer`: GDAS (Gumbel-softmax hard samples, temperature annealing).
* :class:`EnasTrainer`: ENAS (LSTM controller, REINFORCE, shared weights).
* :class:`ProxylessTrainer`: ProxylessNAS (binary gates, two-path sampling, latency loss).
* :class:`RandomOneShotTrainer`: SPOS (uniform single-path training, evolution over
  sub-networks with batch-norm recalibration).
* :class:`OneShotStrategy`: run any of them inside an ``Experiment``.

Every trainer trains data-parallel when built inside a ``torch.distributed`` process group of
more than one rank (``torchrun``; Ray Train's ``TorchTrainer``: :func:`nasforge.oneshot.ray.fit_on_ray`);
see :mod:`nasforge.oneshot.parallel`.
"""

from nasforge.oneshot.base import OneShotTrainer, TrainerOptions, accuracy_metrics
from nasforge.oneshot.darts import DartsTrainer, GumbelDartsTrainer
from nasforge.oneshot.drnas import DrNasTrainer
from nasforge.oneshot.parallel import default_threads
from nasforge.oneshot.proxyless import ProxylessTrainer, measure_cost_table, measure_latency_table
from nasforge.oneshot.sampling import EnasController, EnasTrainer, RandomOneShotTrainer
from nasforge.oneshot.strategy import OneShotStrategy
from nasforge.oneshot.supernet import ArchSlot, Supernet, UnsupportedOneShotError

__all__ = [
    "ArchSlot",
    "DartsTrainer",
    "DrNasTrainer",
    "EnasController",
    "EnasTrainer",
    "GumbelDartsTrainer",
    "OneShotStrategy",
    "OneShotTrainer",
    "ProxylessTrainer",
    "RandomOneShotTrainer",
    "Supernet",
    "TrainerOptions",
    "UnsupportedOneShotError",
    "accuracy_metrics",
    "default_threads",
    "measure_cost_table",
    "measure_latency_table",
]
