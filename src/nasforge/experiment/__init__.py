"""Multi-trial experiments: the loop, budgets, resume, results, final test evaluation."""

from nasforge.experiment.core import Experiment, ExperimentSummary, NoResultsError, TestResult
from nasforge.experiment.interrupt import ExperimentInterrupted
from nasforge.experiment.results import ExperimentResults

__all__ = ["Experiment", "ExperimentInterrupted", "ExperimentResults", "ExperimentSummary", "NoResultsError", "TestResult"]
