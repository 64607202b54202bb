"""Multi-trial experiments: the loop, budgets, resume, results, final test evaluation."""

from nasforge.experiment.core import Experiment, ExperimentSummary, NoResultsError, TestResult

__all__ = ["Experiment", "ExperimentSummary", "NoResultsError", "TestResult"]
