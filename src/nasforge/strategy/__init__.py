"""Multi-trial search strategies (ask/tell)."""

from nasforge.strategy.base import Strategy
from nasforge.strategy.random import Random

__all__ = ["Strategy", "Random"]
