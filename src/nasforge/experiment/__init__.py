"""Multi-trial experiments: the loop, budgets, resume, results, final test evaluation."""

from nasforge.experiment.core import Experiment, ExperimentSummary, NoResultsError, TestResult
from nasforge.experiment.interrupt import ExperimentInterrupted
from nasforge.experiment.objectives import Constraints
from nasforge.experiment.results import ExperimentResults

__all__ = [
    "Constraints",
    "Experiment",
    "ExperimentInterrupted",
    "ExperimentResults",
    "ExperimentSummary",
    "NoResultsError",
    "TestResult",
]
