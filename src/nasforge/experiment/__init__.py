"""Multi-trial experiments: the loop, budgets, resume, results, final test evaluation."""

from nasforge.experiment.core import Experiment, ExperimentSummary, NoResultsError, TestResult
from nasforge.experiment.objectives import Constraints

__all__ = ["Constraints", "Experiment", "ExperimentSummary", "NoResultsError", "TestResult"]
