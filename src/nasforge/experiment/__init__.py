"""Multi-trial experiments: the loop, budgets, resume, results, final test evaluation."""

from nasforge.experiment.core import Experiment, ExperimentSummary, NoResultsError, TestResult
from nasforge.experiment.interrupt import ExperimentInterrupted

__all__ = ["Experiment", "ExperimentInterrupted", "ExperimentSummary", "NoResultsError", "TestResult"]
