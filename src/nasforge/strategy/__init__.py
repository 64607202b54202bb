"""Multi-trial search strategies (ask/tell).

Importing this package does not import torch: ``PolicyBasedRL`` imports it when it is set up.

Extension points: subclass :class:`Strategy` (or :class:`HistoryStrategy`), check it with
``nasforge.strategy.testing.StrategyConformance``; give :class:`PredictorBased` any
:class:`Surrogate`.

Example::

    from nasforge.strategy import RegularizedEvolution
    strategy = RegularizedEvolution(population_size=20, sample_size=5)
"""

from nasforge.strategy._surrogate import MLPEnsemble, Surrogate
from nasforge.strategy.base import HistoryStrategy, Strategy
from nasforge.strategy.evolution import RegularizedEvolution
from nasforge.strategy.grid import GridSearch
from nasforge.strategy.hyperband import Hyperband, SuccessiveHalving
from nasforge.strategy.local import LocalSearch
from nasforge.strategy.predictor import PredictorBased, Progressive
from nasforge.strategy.random import Random
from nasforge.strategy.rl import PolicyBasedRL
from nasforge.strategy.tpe import TPE
from nasforge.strategy.warmstart import ZeroCostWarmStart

__all__ = [
    "GridSearch",
    "HistoryStrategy",
    "Hyperband",
    "LocalSearch",
    "MLPEnsemble",
    "PolicyBasedRL",
    "PredictorBased",
    "Progressive",
    "Random",
    "RegularizedEvolution",
    "Strategy",
    "SuccessiveHalving",
    "Surrogate",
    "TPE",
    "ZeroCostWarmStart",
]
