"""Multi-trial experiments: the loop, budgets, resume, results, final test evaluation."""

from nasforge.experiment.core import Experiment, ExperimentSummary, NoResultsError, TestResult
from nasforge.experiment.results import ExperimentResults

__all__ = ["Experiment", "ExperimentResults", "ExperimentSummary", "NoResultsError", "TestResult"]
