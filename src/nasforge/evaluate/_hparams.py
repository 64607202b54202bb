"""Hyper-parameter choices in evaluators: joint architecture and training-recipe search.

An evaluator argument given as a value choice (``lr=nn.choice([1e-3, 3e-3], label="lr")``)
becomes a labelled decision of the experiment's space (an unlabelled one is named after the
argument: ``batch_size``); each trial's evaluator runs with the values its arch chooses.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from typing import Any

from nasforge.errors import InvalidSpaceError
from nasforge.space import Space

__all__ = ["HyperParameters"]


class HyperParameters:
    """The value-choice arguments of one evaluator: ``name -> expression``."""

    def __init__(self, owner: str, values: Mapping[str, Any], allowed: tuple[str, ...] | None = None):
        self.choices: dict[str, Any] = {}
        # Torch-free: value choices exist only if nasforge.nn.value was imported (by the user).
        value_mod = sys.modules.get("nasforge.nn.value")
        for name, value in values.items():
            if value_mod is None or not isinstance(value, value_mod.ValueExpr):
                continue
            if allowed is not None and name not in allowed:
                raise InvalidSpaceError(
                    f"{owner}: argument {name!r} cannot be a choice; arguments that can: {', '.join(allowed)}"
                )
            unlabelled = [leaf for leaf in value.leaves() if leaf.label is None]
            for k, leaf in enumerate(unlabelled):
                leaf.label = name if len(unlabelled) == 1 else f"{name}_{k}"
            self.choices[name] = value
        self.space = Space()
        for value in self.choices.values():
            for leaf in value.leaves():
                self.space.add(leaf.categorical())

    def __bool__(self) -> bool:
        return bool(self.choices)

    def candidates(self, name: str) -> list[Any]:
        """Every value argument ``name`` can take."""
        return self.choices[name].all_values()

    def defaults(self) -> dict[str, Any]:
        return {name: expr.default() for name, expr in self.choices.items()}

    def values(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The argument values ``arch`` chooses (defaults for labels it does not hold)."""
        return {
            name: expr.evaluate(arch) if all(leaf.label in arch for leaf in expr.leaves())
            else expr.default()
            for name, expr in self.choices.items()
        }

    def resolved(self, evaluator: Any, arch: Mapping[str, Any], normalise: Any = None) -> Any:
        """A shallow copy of ``evaluator`` whose attributes hold ``arch``'s values."""
        if not self.choices:
            return evaluator
        ev = copy.copy(evaluator)
        for name, value in self.values(arch).items():
            setattr(ev, name, normalise(name, value) if normalise is not None else value)
        return ev
