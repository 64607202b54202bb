"""Value choices: a choice of a plain value (a width, a kernel size, a depth) with arithmetic.

``ValueChoice([16, 32], label="width")`` can be passed as a constructor argument of any
``nasforge.nn`` layer; ``w * 2`` builds an expression over the same decision. Values are
resolved when the space is frozen. No torch import here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nasforge.errors import ChoiceUsageError, InvalidSpaceError
from nasforge.fixed import current_fixed_arch
from nasforge.nn._context import consume_label
from nasforge.space import Categorical

__all__ = ["ValueChoice", "ValueExpr", "choice", "contains_value_choice", "resolve_values", "value_leaves"]


class ValueExpr:
    """An expression over one or more value choices; evaluate it with an arch."""

    __slots__ = ()

    def leaves(self) -> list[ValueChoice]:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, arch: Mapping[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def default(self) -> Any:
        """The value with every choice at its first candidate."""
        return self._eval_with({id(leaf): leaf.candidates[0] for leaf in self.leaves()})

    def all_values(self) -> list[Any]:
        """Every value the expression can take, in order of first appearance."""
        import itertools

        leaves = _unique(self.leaves())
        seen: list[Any] = []
        for combo in itertools.product(*(leaf.candidates for leaf in leaves)):
            value = self._eval_with({id(leaf): v for leaf, v in zip(leaves, combo)})
            if value not in seen:
                seen.append(value)
        return seen

    def _eval_with(self, values: dict[int, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # Arithmetic builds expressions.
    def __add__(self, other: Any) -> ValueExpr:
        return _Op(operator.add, "+", (self, other))

    def __radd__(self, other: Any) -> ValueExpr:
        return _Op(operator.add, "+", (other, self))

    def __sub__(self, other: Any) -> ValueExpr:
        return _Op(operator.sub, "-", (self, other))

    def __rsub__(self, other: Any) -> ValueExpr:
        return _Op(operator.sub, "-", (other, self))

    def __mul__(self, other: Any) -> ValueExpr:
        return _Op(operator.mul, "*", (self, other))

    def __rmul__(self, other: Any) -> ValueExpr:
        return _Op(operator.mul, "*", (other, self))

    def __truediv__(self, other: Any) -> ValueExpr:
        return _Op(operator.truediv, "/", (self, other))

    def __rtruediv__(self, other: Any) -> ValueExpr:
        return _Op(operator.truediv, "/", (other, self))

    def __floordiv__(self, other: Any) -> ValueExpr:
        return _Op(operator.floordiv, "//", (self, other))

    def __rfloordiv__(self, other: Any) -> ValueExpr:
        return _Op(operator.floordiv, "//", (other, self))

    def __mod__(self, other: Any) -> ValueExpr:
        return _Op(operator.mod, "%", (self, other))

    def __pow__(self, other: Any) -> ValueExpr:
        return _Op(operator.pow, "**", (self, other))

    def __neg__(self) -> ValueExpr:
        return _Op(operator.neg, "-", (self,))

    def __abs__(self) -> ValueExpr:
        return _Op(abs, "abs", (self,))

    def __round__(self, ndigits: int | None = None) -> ValueExpr:
        return _Op(lambda x: round(x, ndigits), "round", (self,))

    # A value choice is not a concrete value: using it as one is a mistake we name.
    def _concrete(self, what: str) -> Any:
        raise ChoiceUsageError(
            f"{self!r} was used as a concrete {what}; a value choice is only known once an arch is chosen. "
            f"Pass it as a constructor argument of a nasforge.nn layer (or Repeat depth), or build the "
            f"model under nasforge.fixed_arch(arch) where labelled value choices are plain values"
        )

    def __bool__(self) -> bool:
        return self._concrete("bool (e.g. in an if)")

    def __int__(self) -> int:
        return self._concrete("int")

    def __index__(self) -> int:
        return self._concrete("int")

    def __float__(self) -> float:
        return self._concrete("float")

    def __iter__(self):
        return self._concrete("iterable")

    __hash__ = object.__hash__


class ValueChoice(ValueExpr):
    """A labelled choice of a plain value, usable as a layer constructor argument.

    Example::

        width = nn.ValueChoice([16, 32, 64], label="width")
        conv1 = nn.Conv2d(3, width, 3)
        conv2 = nn.Conv2d(width, width * 2, 3)   # one decision fixes both layers

    Under :func:`nasforge.fixed_arch`, a labelled value choice is simply its chosen value.
    """

    __slots__ = ("candidates", "label")

    def __new__(cls, candidates: Sequence[Any], label: str | None = None):
        fixed = current_fixed_arch()
        if fixed is not None and label is not None and label in fixed:
            value = fixed[label]
            _check_value(label, value, list(candidates))
            consume_label(label)
            return value
        return super().__new__(cls)

    def __init__(self, candidates: Sequence[Any], label: str | None = None):
        candidates = list(candidates)
        if not candidates:
            raise InvalidSpaceError(
                f"ValueChoice {label if label else '(unlabelled)'!r} has an empty candidate list; give at least one value"
            )
        if label is not None and (not isinstance(label, str) or not label):
            raise InvalidSpaceError(f"a ValueChoice label must be a non-empty string, got {label!r}")
        self.candidates = candidates
        self.label = label

    def leaves(self) -> list[ValueChoice]:
        return [self]

    def evaluate(self, arch: Mapping[str, Any]) -> Any:
        return arch[self.label]

    def _eval_with(self, values: dict[int, Any]) -> Any:
        return values[id(self)]

    def to_categorical(self) -> Categorical:
        if self.label is None:
            raise InvalidSpaceError(f"{self!r} has no label yet; it gets one when its model space is built")
        return Categorical(self.candidates, self.label)

    def __repr__(self) -> str:
        return f"ValueChoice({self.candidates!r}, label={self.label!r})"

    def __reduce__(self):
        # Unpickling must not consult fixed_arch (which __new__ does).
        return (_restore_value_choice, (self.candidates, self.label))


def _restore_value_choice(candidates: list[Any], label: str | None) -> ValueChoice:
    obj = object.__new__(ValueChoice)
    obj.candidates = candidates
    obj.label = label
    return obj


def _check_value(label: str, value: Any, candidates: list[Any]) -> None:
    cat = Categorical(candidates, label)
    cat.index(value)  # raises InvalidArchError naming the label and valid values


choice = ValueChoice


class _Op(ValueExpr):
    __slots__ = ("fn", "symbol", "args")

    def __init__(self, fn: Callable[..., Any], symbol: str, args: tuple[Any, ...]):
        self.fn = fn
        self.symbol = symbol
        self.args = args

    def leaves(self) -> list[ValueChoice]:
        out: list[ValueChoice] = []
        for a in self.args:
            if isinstance(a, ValueExpr):
                out.extend(a.leaves())
        return out

    def evaluate(self, arch: Mapping[str, Any]) -> Any:
        return self.fn(*(a.evaluate(arch) if isinstance(a, ValueExpr) else a for a in self.args))

    def _eval_with(self, values: dict[int, Any]) -> Any:
        return self.fn(*(a._eval_with(values) if isinstance(a, ValueExpr) else a for a in self.args))

    def __repr__(self) -> str:
        if len(self.args) == 1:
            return f"{self.symbol}({self.args[0]!r})"
        return f"({self.args[0]!r} {self.symbol} {self.args[1]!r})"


def _unique(leaves: list[ValueChoice]) -> list[ValueChoice]:
    seen: dict[int, ValueChoice] = {}
    for leaf in leaves:
        seen.setdefault(id(leaf), leaf)
    return list(seen.values())


# -- helpers over nested constructor arguments ---------------------------------------------

def contains_value_choice(obj: Any) -> bool:
    """Whether a value (possibly a list / tuple / dict of values) holds a value choice."""
    if isinstance(obj, ValueExpr):
        return True
    if isinstance(obj, (list, tuple)):
        return any(contains_value_choice(o) for o in obj)
    if isinstance(obj, dict):
        return any(contains_value_choice(o) for o in obj.values())
    return False


def value_leaves(obj: Any) -> list[ValueChoice]:
    if isinstance(obj, ValueExpr):
        return obj.leaves()
    if isinstance(obj, (list, tuple)):
        return [leaf for o in obj for leaf in value_leaves(o)]
    if isinstance(obj, dict):
        return [leaf for o in obj.values() for leaf in value_leaves(o)]
    return []


def resolve_values(obj: Any, arch: Mapping[str, Any] | None) -> Any:
    """Replace every value choice in ``obj`` by its value in ``arch`` (its default when None)."""
    if isinstance(obj, ValueExpr):
        value = obj.default() if arch is None else obj.evaluate(arch)
        if isinstance(value, float) and value.is_integer() and all(
            isinstance(c, int) for leaf in obj.leaves() for c in leaf.candidates
        ) and not math.isinf(value):
            value = int(value)  # w / 2 of integer widths stays usable as a channel count
        return value
    if isinstance(obj, list):
        return [resolve_values(o, arch) for o in obj]
    if isinstance(obj, tuple):
        return tuple(resolve_values(o, arch) for o in obj)
    if isinstance(obj, dict):
        return {k: resolve_values(o, arch) for k, o in obj.items()}
    return obj
