"""Value choices: a choice of a plain value (a width, a kernel size, a depth, a function) with arithmetic.

``ValueChoice([16, 32], label="width")`` can be passed as a constructor argument of any
``nasforge.nn`` layer; ``w * 2`` builds an expression over the same decision. Values are
resolved when the space is frozen. No torch import here.

Whatever the candidates are (numbers, tuples, dicts, functions, modules), a layer always
receives the candidate itself: the arch stores the candidate's JSON key (the value for
distinct JSON values, otherwise the index), and resolving goes through that key.

A *free-standing* choice is one used as a concrete value while a model space's ``__init__``
runs (``if self.use_bn:``, ``range(depth)``, ``torch.zeros(n)``), like NNI 3.0's
``ensure_frozen``: it joins the space under its label, the space instance is built with its
first candidate, and freezing builds the network again for the chosen value.
"""

from __future__ import annotations

import itertools
import math
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nasforge.errors import ChoiceUsageError, InvalidArchError, InvalidSpaceError
from nasforge.fixed import current_fixed_arch
from nasforge.nn._context import register_free_choice
from nasforge.space import Categorical, candidate_signature

__all__ = [
    "ValueChoice",
    "ValueExpr",
    "choice",
    "contains_value_choice",
    "ensure_frozen",
    "resolve_values",
    "value_leaves",
]


def _same_candidate(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays, tensors: never merged
        return False


def _and(a: Any, b: Any) -> Any:
    return a and b


def _or(a: Any, b: Any) -> Any:
    return a or b


_Method = Callable[["ValueExpr", Any], "ValueExpr"]


def _binary(fn: Callable[[Any, Any], Any], symbol: str) -> tuple[_Method, _Method]:
    """The methods building ``self <symbol> other`` and the reflected ``other <symbol> self``."""
    return (lambda self, other: _Op(fn, symbol, (self, other)),
            lambda self, other: _Op(fn, symbol, (other, self)))


def _unary(fn: Callable[[Any], Any], symbol: str) -> Callable[[ValueExpr], ValueExpr]:
    return lambda self: _Op(fn, symbol, (self,))


class ValueExpr:
    """An expression over one or more value choices; evaluate it with an arch."""

    __slots__ = ()

    def leaves(self) -> list[ValueChoice]:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, arch: Mapping[str, Any]) -> Any:
        """The value under ``arch`` (each leaf's key is checked against its candidates)."""
        return self._eval_with({id(leaf): leaf.value_in(arch) for leaf in _unique(self.leaves())})

    def default(self) -> Any:
        """The value with every choice at its first candidate."""
        return self._eval_with({id(leaf): leaf.candidates[0] for leaf in self.leaves()})

    def all_values(self) -> list[Any]:
        """Every value the expression can take, in order of first appearance."""
        leaves = _unique(self.leaves())
        seen: list[Any] = []
        for combo in itertools.product(*(leaf.candidates for leaf in leaves)):
            value = self._eval_with({id(leaf): v for leaf, v in zip(leaves, combo)})
            if not any(_same_candidate(value, s) for s in seen):
                seen.append(value)
        return seen

    def _eval_with(self, values: dict[int, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # Arithmetic (also reflected: ``2 * w``), comparisons, & and | and indexing build expressions.
    __add__, __radd__ = _binary(operator.add, "+")
    __sub__, __rsub__ = _binary(operator.sub, "-")
    __mul__, __rmul__ = _binary(operator.mul, "*")
    __truediv__, __rtruediv__ = _binary(operator.truediv, "/")
    __floordiv__, __rfloordiv__ = _binary(operator.floordiv, "//")
    __mod__, __rmod__ = _binary(operator.mod, "%")
    __pow__, __rpow__ = _binary(operator.pow, "**")
    __lt__ = _binary(operator.lt, "<")[0]
    __le__ = _binary(operator.le, "<=")[0]
    __gt__ = _binary(operator.gt, ">")[0]
    __ge__ = _binary(operator.ge, ">=")[0]
    __and__ = _binary(_and, "and")[0]
    __or__ = _binary(_or, "or")[0]
    __neg__ = _unary(operator.neg, "-")
    __pos__ = _unary(operator.pos, "+")
    __abs__ = _unary(abs, "abs")
    __invert__ = _unary(operator.not_, "not")

    def __round__(self, ndigits: int | None = None) -> ValueExpr:
        return _Op(round, "round", (self,) if ndigits is None else (self, ndigits))

    def __getitem__(self, key: Any) -> ValueExpr:
        """``vc[0]`` of tuple candidates, ``vc["key"]`` of dict candidates."""
        return _Op(operator.getitem, "[]", (self, key))

    # NNI's helpers, as static methods: nn.ValueChoice.max(a, b), .min, .condition, .to_int, .to_float
    @staticmethod
    def max(arg0: Any, *args: Any) -> Any:
        """The largest of the arguments (or of one list argument), as an expression."""
        items = tuple(arg0) if not args and isinstance(arg0, (list, tuple)) else (arg0, *args)
        return _lift(_max, "max", items)

    @staticmethod
    def min(arg0: Any, *args: Any) -> Any:
        """The smallest of the arguments (or of one list argument), as an expression."""
        items = tuple(arg0) if not args and isinstance(arg0, (list, tuple)) else (arg0, *args)
        return _lift(_min, "min", items)

    @staticmethod
    def condition(pred: Any, true: Any, false: Any) -> Any:
        """``true if pred else false``, evaluated per arch: ``ValueChoice.condition(w > 32, 2, 1)``."""
        return _lift(_cond, "condition", (pred, true, false))

    @staticmethod
    def to_int(obj: Any) -> Any:
        return _lift(int, "int", (obj,))

    @staticmethod
    def to_float(obj: Any) -> Any:
        return _lift(float, "float", (obj,))

    # A value choice is not a concrete value outside a model space's construction.
    def __bool__(self) -> bool:
        return bool(_resolve_concrete(self, "bool (e.g. in an if)"))

    def __int__(self) -> int:
        return int(_resolve_concrete(self, "int"))

    def __index__(self) -> int:
        return operator.index(_resolve_concrete(self, "int"))

    def __float__(self) -> float:
        return float(_resolve_concrete(self, "float"))

    def __iter__(self):
        return iter(_resolve_concrete(self, "iterable"))

    def __len__(self) -> int:
        return len(_resolve_concrete(self, "sized value (len)"))

    __hash__ = object.__hash__


def _max(*items: Any) -> Any:
    return max(items)


def _min(*items: Any) -> Any:
    return min(items)


def _cond(pred: Any, true: Any, false: Any) -> Any:
    return true if pred else false


def _lift(fn: Callable[..., Any], symbol: str, args: tuple[Any, ...]) -> Any:
    """An expression when an argument is a value choice, else the plain result."""
    if any(isinstance(a, ValueExpr) for a in args):
        return _Op(fn, symbol, args)
    return fn(*args)


class ValueChoice(ValueExpr):
    """A labelled choice of a plain value, usable as a layer constructor argument.

    Example::

        width = nn.ValueChoice([16, 32, 64], label="width")
        conv1 = nn.Conv2d(3, width, 3)
        conv2 = nn.Conv2d(width, width * 2, 3)   # one decision fixes both layers
        act = nn.ValueChoice([F.relu, F.gelu], label="act")   # the arch holds 0 / 1, the layer gets the function

    Candidates may be anything; duplicates are merged (with a warning). In ``__init__`` of a
    model space a labelled choice may also be used as a concrete value (``if``, ``range``, a
    tensor shape): see the module docstring.
    """

    __slots__ = ("candidates", "label", "_cat")

    def __init__(self, candidates: Sequence[Any], label: str | None = None):
        who = f"ValueChoice {label if label else '(unlabelled)'!r}"
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, (Sequence, range)):
            raise InvalidSpaceError(
                f"{who}: candidates must be a list, got {type(candidates).__name__}"
            )
        candidates = list(candidates)
        if not candidates:
            raise InvalidSpaceError(f"{who} has an empty candidate list; give at least one value")
        if label is not None and (not isinstance(label, str) or not label):
            raise InvalidSpaceError(f"a ValueChoice label must be a non-empty string, got {label!r}")
        unique: list[Any] = []
        for c in candidates:
            if not any(_same_candidate(c, u) for u in unique):
                unique.append(c)
        if len(unique) != len(candidates):
            warnings.warn(
                f"{who}: duplicate candidates merged: {candidates!r} -> {unique!r}",
                UserWarning,
                stacklevel=2,
            )
        self.candidates = unique
        self.label = label
        self._cat: Categorical | None = None

    def leaves(self) -> list[ValueChoice]:
        return [self]

    def categorical(self) -> Categorical:
        """This choice as plain data (cached; keys are the values or their indices)."""
        cat = self._cat
        if cat is None or cat.label != self.label:
            cat = self.to_categorical()
            self._cat = cat
        return cat

    def value_in(self, arch: Mapping[str, Any]) -> Any:
        """The candidate ``arch`` chooses for this label (a clear error when it has none or a bad key)."""
        cat = self.categorical()  # an error for a choice with no label yet
        try:
            key = arch[cat.label]
        except KeyError:
            raise InvalidArchError(
                f"arch has no value for label {cat.label!r}; it takes one of {cat.values}"
            ) from None
        return cat.resolve(key)

    def evaluate(self, arch: Mapping[str, Any]) -> Any:
        return self.value_in(arch)

    def _eval_with(self, values: dict[int, Any]) -> Any:
        return values[id(self)]

    def to_categorical(self) -> Categorical:
        if self.label is None:
            raise InvalidSpaceError(f"{self!r} has no label yet; it gets one when its model space is built")
        return Categorical(self.candidates, self.label, signature=_value_signature, values_tie=True)

    def __repr__(self) -> str:
        return f"ValueChoice({self.candidates!r}, label={self.label!r})"

    def __reduce__(self):
        return (_restore_value_choice, (self.candidates, self.label))


def _value_signature(candidate: Any) -> Any:
    import sys

    nn_sig = sys.modules.get("nasforge.nn.choices")
    if nn_sig is not None and hasattr(candidate, "state_dict") and hasattr(candidate, "named_modules"):
        return nn_sig.module_signature(candidate)
    return candidate_signature(candidate)


def _restore_value_choice(candidates: list[Any], label: str | None) -> ValueChoice:
    obj = object.__new__(ValueChoice)
    obj.candidates = candidates
    obj.label = label
    obj._cat = None
    return obj


choice = ValueChoice


def _resolve_concrete(expr: ValueExpr, what: str) -> Any:
    """The concrete value of ``expr`` where one is known: the fixed arch's, or (while a model
    space's ``__init__`` runs) the first candidates', recording the free-standing choice."""
    from nasforge.nn._context import init_depth

    fixed = current_fixed_arch()
    constructing = init_depth.get() > 0
    leaves = _unique(expr.leaves())
    if not constructing and (fixed is None or any(leaf.label is None or leaf.label not in fixed for leaf in leaves)):
        raise ChoiceUsageError(
            f"{expr!r} was used as a concrete {what}; a value choice is only known once an arch is chosen. "
            f"Pass it as a constructor argument of a nasforge.nn layer (or Repeat depth), use it in a model "
            f"space's __init__ (a free-standing choice), or build the model under nasforge.fixed_arch(arch)"
        )
    unlabelled = [leaf for leaf in leaves if leaf.label is None]
    if unlabelled:
        raise ChoiceUsageError(
            f"{unlabelled[0]!r} was used as a concrete {what} in __init__ (a free-standing choice) but has no label; "
            f"give it one, e.g. nn.choice({unlabelled[0].candidates!r}, label='my_choice'), so an arch can name it"
        )
    values = {}
    for leaf in leaves:
        cat = leaf.categorical()
        i = cat.index(fixed[leaf.label]) if fixed is not None and leaf.label in fixed else 0
        values[id(leaf)] = leaf.candidates[i]
        if constructing:
            register_free_choice(leaf, cat.key_at(i))
    return expr._eval_with(values)


def ensure_frozen(value: Any) -> Any:
    """A concrete value for ``value`` (NNI 3.0's ``ensure_frozen``): a plain value as is; a value
    choice's chosen value under ``fixed_arch``, or its first candidate while a model space is
    built (the choice joins the space and freezing rebuilds the module for the chosen value)."""
    if isinstance(value, ValueExpr):
        return _resolve_concrete(value, "value (ensure_frozen)")
    return value


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

    def _eval_with(self, values: dict[int, Any]) -> Any:
        return self.fn(*(a._eval_with(values) if isinstance(a, ValueExpr) else a for a in self.args))

    def __repr__(self) -> str:
        if self.symbol == "[]":
            return f"{self.args[0]!r}[{self.args[1]!r}]"
        if len(self.args) == 2 and not self.symbol.isalpha():
            return f"({self.args[0]!r} {self.symbol} {self.args[1]!r})"
        return f"{self.symbol}({', '.join(map(repr, self.args))})"


def _unique(leaves: list[ValueChoice]) -> list[ValueChoice]:
    return list({id(leaf): leaf for leaf in leaves}.values())


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
