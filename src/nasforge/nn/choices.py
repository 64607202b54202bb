"""Choice modules: ``LayerChoice``, ``InputChoice``, ``Repeat`` and ``Cell``.

Each choice module speaks a small protocol used by :mod:`nasforge.nn.modelspace`:

* ``_nf_assign_labels(path)``: give itself (and the choices it owns) a label when it has none;
* ``_nf_categoricals()``: the ``Categorical`` decisions it contributes to the space;
* ``_nf_freeze(arch, freeze_child)``: the plain module of the chosen candidate(s);
* ``_nf_activate(arch)``: make the space instance's own forward use ``arch``.

The space instance itself is runnable: every choice starts at its first candidate.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch

from nasforge.errors import InvalidArchError, InvalidSpaceError
from nasforge.nn.frozen import ChosenInputs, FrozenCell, merge_cell_output, reduce_tensors
from nasforge.nn.value import ValueChoice, ValueExpr
from nasforge.space import Categorical, candidate_signature

__all__ = ["LayerChoice", "InputChoice", "Repeat", "Cell", "ChoiceModule", "REDUCTIONS", "module_signature"]

REDUCTIONS = ("sum", "mean", "concat", "none")
FreezeChild = Callable[[torch.nn.Module], torch.nn.Module]


def module_signature(module: torch.nn.Module) -> str:
    """What a module *is*, stably: every sub-module's type and settings, every tensor's shape.

    Used by the space fingerprint so that a space whose candidates changed (a conv replaced by
    a pooling layer, another width) is not mistaken for the same space.
    """
    parts = []
    for name, m in module.named_modules():
        extra = m.extra_repr() if not isinstance(m, ChoiceModule) else ""
        parts.append(f"{name}:{type(m).__module__}.{type(m).__qualname__}({extra})")
        for pname, p in itertools.chain(m._parameters.items(), m._buffers.items()):
            if p is not None:
                parts.append(f"{name}.{pname}:{tuple(p.shape)}")
        init = m.__dict__.get("_nf_init")
        if init is not None:
            parts.append(f"{name}:init={_args_signature(init)}")
    return ";".join(parts)


def _args_signature(obj: Any) -> Any:
    if isinstance(obj, ValueExpr):
        return repr(obj)
    if isinstance(obj, (list, tuple)):
        return [_args_signature(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _args_signature(v) for k, v in obj.items()}
    if isinstance(obj, torch.nn.Module):
        return module_signature(obj)
    return candidate_signature(obj)


def _name(label: str | None, kind: str) -> str:
    return repr(label) if label else f"(unlabelled {kind}; its label will be its attribute path)"


class ChoiceModule(torch.nn.Module):
    """Base class of choice modules (see the module docstring for the protocol)."""

    label: str | None

    def _nf_assign_labels(self, path: str) -> None:
        if self.label is None:
            self.label = path or type(self).__name__.lower()

    def _required_label(self) -> str:
        if not self.label:  # set by the space at the latest (its attribute path)
            raise InvalidSpaceError(f"{type(self).__name__} has no label yet; it gets one when its model space is built")
        return self.label

    def _sub(self, name: str) -> torch.nn.Module:
        module = self._modules[name]
        if module is None:
            raise InvalidSpaceError(f"{type(self).__name__} {self.label!r}: its sub-module {name!r} was set to None")
        return module

    def _nf_categoricals(self) -> list[Categorical]:
        return [self._categorical()]

    def _categorical(self) -> Categorical:
        """The decision of a one-decision choice (cached until its label or candidates change)."""
        cat = self.__dict__.get("_nf_cat")
        if cat is None or cat.label != self.label:
            cat = self._new_categorical()
            self.__dict__["_nf_cat"] = cat
        return cat

    def _new_categorical(self) -> Categorical:  # pragma: no cover - abstract
        raise NotImplementedError

    def _nf_freeze(self, arch: Mapping[str, Any], freeze_child: FreezeChild) -> torch.nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _nf_activate(self, arch: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _nf_branches(self) -> dict[str, list[tuple[str, list[Any]]]]:
        """Child name -> the atoms ``(label, keys)`` under which that child is used (absent: always)."""
        return {}


# -- LayerChoice ----------------------------------------------------------------------------

def _layer_candidates(candidates: Any, label: str | None) -> tuple[list[Any], list[torch.nn.Module]]:
    who = f"LayerChoice {_name(label, 'LayerChoice')}"
    if isinstance(candidates, Mapping):
        keys, modules = list(candidates.keys()), list(candidates.values())
        for k in keys:
            if not isinstance(k, str) or not k or "." in k:
                raise InvalidSpaceError(
                    f"{who}: candidate name {k!r} must be a non-empty string without '.'"
                )
    elif isinstance(candidates, Sequence) and not isinstance(candidates, (str, bytes)):
        modules = list(candidates)
        keys = list(range(len(modules)))
    else:
        raise InvalidSpaceError(
            f"{who}: candidates must be a list or an ordered dict of name -> module, "
            f"got {type(candidates).__name__}"
        )
    if not modules:
        raise InvalidSpaceError(f"{who} has an empty candidate list; give at least one module")
    for k, m in zip(keys, modules):
        if not isinstance(m, torch.nn.Module):
            raise InvalidSpaceError(
                f"{who}: candidate {k!r} is a {type(m).__name__}, expected a torch.nn.Module"
            )
    return keys, modules


class LayerChoice(ChoiceModule):
    """Choose one module among candidates.

    The arch value is the candidate's index (list) or name (ordered dict). Example::

        self.conv = nn.LayerChoice([nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(3, 16, 5, padding=2)])
        self.act = nn.LayerChoice(OrderedDict(relu=nn.ReLU(), gelu=nn.GELU()), label="act")
    """

    def __init__(self, candidates: Any, label: str | None = None):
        super().__init__()
        keys, modules = _layer_candidates(candidates, label)
        self.label = label
        self.names = keys
        for k, m in zip(keys, modules):
            self.add_module(str(k), m)
        self._active = 0

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: int | str) -> torch.nn.Module:
        if str(key) not in self._modules:
            raise KeyError(f"LayerChoice {self.label!r} has no candidate {key!r}; its candidates are {self.names}")
        return self._sub(str(key))

    def __setitem__(self, key: int | str, module: torch.nn.Module) -> None:
        """Replace a candidate (``lc[0] = nn.GELU()``); a key that is not a candidate is a KeyError."""
        if key not in self.names:
            raise KeyError(
                f"LayerChoice {self.label!r} has no candidate {key!r} to replace; its candidates are {self.names} "
                f"(the candidate list is fixed when the choice is made)"
            )
        if not isinstance(module, torch.nn.Module):
            raise InvalidSpaceError(f"LayerChoice {self.label!r}: candidate {key!r} must be a torch.nn.Module, got {type(module).__name__}")
        self._modules[str(key)] = module
        self.__dict__.pop("_nf_cat", None)  # its candidates changed

    def __iter__(self):
        return iter(self.candidates)

    @property
    def candidates(self) -> list[torch.nn.Module]:
        return [self._sub(str(k)) for k in self.names]

    def _new_categorical(self) -> Categorical:
        return Categorical(self.candidates, self._required_label(), keys=self.names, signature=module_signature)

    def _nf_branches(self) -> dict[str, list[tuple[str, list[Any]]]]:
        return {str(k): [(self._required_label(), [k])] for k in self.names}

    def _index(self, arch: Mapping[str, Any]) -> int:
        cat = self._categorical()
        return cat.index(arch[cat.label])

    def _nf_freeze(self, arch: Mapping[str, Any], freeze_child: FreezeChild) -> torch.nn.Module:
        return freeze_child(self._sub(str(self.names[self._index(arch)])))

    def _nf_activate(self, arch: Mapping[str, Any]) -> None:
        self._active = self._index(arch)

    def forward(self, *args: Any, **kwargs: Any):
        return self._sub(str(self.names[self._active]))(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"label={self.label!r}"


# -- InputChoice ----------------------------------------------------------------------------

class InputChoice(ChoiceModule):
    """Choose ``n_chosen`` of ``n_candidates`` input tensors and reduce them.

    Called on a list of exactly ``n_candidates`` tensors. The arch value is the chosen index
    (``n_chosen=1``; ``[i]``, as NNI 3.0 writes it, is accepted too) or the sorted list of
    chosen indices. Example::

        self.skip = nn.InputChoice(n_candidates=2)
        out = self.skip([x1, x1 + x0])
    """

    def __init__(self, n_candidates: int, n_chosen: int = 1, reduction: str = "sum", label: str | None = None):
        super().__init__()
        who = f"InputChoice {_name(label, 'InputChoice')}"
        for name, value in (("n_candidates", n_candidates), ("n_chosen", n_chosen)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidSpaceError(f"{who}: {name} must be an int >= 1, got {value!r}")
        if n_chosen > n_candidates:
            raise InvalidSpaceError(
                f"{who}: n_chosen={n_chosen} is larger than n_candidates={n_candidates}; "
                f"valid n_chosen: 1..{n_candidates}"
            )
        if reduction not in REDUCTIONS:
            valid = ", ".join(map(repr, REDUCTIONS))
            raise InvalidSpaceError(f"{who}: unknown reduction {reduction!r}; valid: {valid}")
        self.n_candidates = n_candidates
        self.n_chosen = n_chosen
        self.reduction = reduction
        self.label = label
        self._keys: list[Any] = list(range(n_candidates)) if n_chosen == 1 else [
            list(c) for c in itertools.combinations(range(n_candidates), n_chosen)
        ]
        self._active: Any = self._keys[0]

    def _new_categorical(self) -> Categorical:
        return Categorical(self._keys, self._required_label(), singleton_lists=self.n_chosen == 1)

    def _key(self, arch: Mapping[str, Any]) -> Any:
        cat = self._categorical()
        return cat.key_at(cat.index(arch[cat.label]))

    def _nf_freeze(self, arch: Mapping[str, Any], freeze_child: FreezeChild) -> torch.nn.Module:
        return ChosenInputs(self._key(arch), self.reduction)

    def _nf_activate(self, arch: Mapping[str, Any]) -> None:
        self._active = self._key(arch)

    def forward(self, inputs: Sequence[torch.Tensor]):
        if len(inputs) != self.n_candidates:
            raise InvalidArchError(
                f"InputChoice {self.label!r} expects a list of {self.n_candidates} tensors, got {len(inputs)}"
            )
        chosen = [self._active] if isinstance(self._active, int) else self._active
        return reduce_tensors([inputs[i] for i in chosen], self.reduction)

    def extra_repr(self) -> str:
        return f"label={self.label!r}, n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, reduction={self.reduction!r}"


# -- Repeat -----------------------------------------------------------------------------------

def _positional_arity(factory: Any) -> int | None:
    """How many positional arguments ``factory`` takes; None: any number (``*args``, or no signature)."""
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _call_factory(factory: Callable[..., Any], *args: Any) -> Any:
    """Call ``factory`` with as many leading ``args`` as it accepts positionally."""
    n = _positional_arity(factory)
    return factory(*args) if n is None else factory(*args[:n])


def _depth_expr(depth: Any, label: str | None) -> tuple[ValueExpr, ValueChoice]:
    """The depth as an expression over one value choice (a plain list / range becomes one)."""
    who = f"Repeat {_name(label, 'Repeat')}"
    if isinstance(depth, ValueExpr):
        leaves = {id(leaf): leaf for leaf in depth.leaves()}
        if len(leaves) != 1:
            raise InvalidSpaceError(
                f"{who}: a depth expression must depend on exactly one value choice, got {len(leaves)} ({depth!r})"
            )
        leaf = next(iter(leaves.values()))
        if label is not None and leaf.label is not None and leaf.label != label:
            raise InvalidSpaceError(
                f"Repeat: label {label!r} differs from its depth ValueChoice's label {leaf.label!r}; give only one"
            )
        if label is not None:
            leaf.label = label
        return depth, leaf
    if isinstance(depth, tuple) and len(depth) == 2 and all(isinstance(d, int) and not isinstance(d, bool) for d in depth):
        if depth[0] > depth[1]:
            raise InvalidSpaceError(f"{who}: depth range {depth!r} is empty (min > max); give (min, max) with min <= max")
        values = list(range(depth[0], depth[1] + 1))
    elif isinstance(depth, (Sequence, range)) and not isinstance(depth, (str, bytes)):
        values = list(depth)
    else:
        raise InvalidSpaceError(
            f"{who}: depth must be an int, a list of ints, a (min, max) tuple or a value choice, got {depth!r}"
        )
    if not values:
        raise InvalidSpaceError(f"{who}: the depth candidate list is empty; give at least one depth")
    _check_depths(values, who)
    leaf = ValueChoice(values, label)
    return leaf, leaf


def _blocks_signature(candidate: Any, blocks: str) -> list[Any]:
    """A depth candidate's signature with the repeated blocks' (given by ``functools.partial``:
    picklable, unlike a lambda)."""
    return [candidate_signature(candidate), blocks]


def _check_depths(values: list[Any], who: str) -> None:
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise InvalidSpaceError(f"{who}: depths must be ints >= 0, got {bad!r}")


def _make_blocks(blocks: Any, count: int) -> list[torch.nn.Module]:
    if isinstance(blocks, torch.nn.Module):
        return [blocks] + [copy.deepcopy(blocks) for _ in range(count - 1)] if count else []
    if isinstance(blocks, Sequence) and not isinstance(blocks, (str, bytes)):
        if len(blocks) < count:
            raise InvalidSpaceError(f"Repeat: {len(blocks)} blocks given for a depth of up to {count}")
        return list(blocks[:count])
    if callable(blocks):
        return [_call_factory(blocks, i) for i in range(count)]
    raise InvalidSpaceError(f"Repeat: blocks must be a module, a list of modules or a factory(index), got {type(blocks).__name__}")


class Repeat(ChoiceModule):
    """A block repeated a chosen number of times.

    ``blocks``: a module (deep-copied per repeat), a list of modules, or a factory called with the
    repeat index. ``depth``: an int (gives a plain ``nn.Sequential``), a list of ints, a
    ``(min, max)`` tuple, a ``ValueChoice`` or an expression over one (``nn.choice([0, 2, 4]) + 1``).
    The arch value is the depth (for an expression: the value of its choice). Choices inside
    block ``i`` are active only when the depth exceeds ``i``. Example::

        self.blocks = nn.Repeat(lambda i: Block(64), depth=(1, 4))
    """

    def __new__(cls, blocks: Any = None, depth: Any = None, label: str | None = None):
        if blocks is not None and isinstance(depth, int):
            if isinstance(depth, bool) or depth < 0:
                raise InvalidSpaceError(
                    f"Repeat {_name(label, 'Repeat')}: depth must be an int >= 0, a list of them, a (min, max) tuple "
                    f"or a value choice, got {depth!r}"
                )
            return torch.nn.Sequential(*_make_blocks(blocks, depth))
        return super().__new__(cls)

    def __init__(self, blocks: Any, depth: Any, label: str | None = None):
        super().__init__()
        expr, leaf = _depth_expr(depth, label)
        who = f"Repeat {_name(label or leaf.label, 'Repeat')}"
        values = [expr._eval_with({id(leaf): c}) for c in leaf.candidates]
        _check_depths(values, who)
        self.depth_values = values  # the depth of each candidate of the depth choice, in order
        self._depth_expr = expr
        self._depth_leaf = leaf
        self.label = label if label is not None else leaf.label
        for i, block in enumerate(_make_blocks(blocks, max(values))):
            self.add_module(str(i), block)
        self._active = values[0]

    def _nf_assign_labels(self, path: str) -> None:
        super()._nf_assign_labels(path)
        if self._depth_leaf.label is None:
            self._depth_leaf.label = self.label
        self.label = self._depth_leaf.label

    def _nf_categoricals(self) -> list[Categorical]:
        cat = self._depth_leaf.categorical()
        blocks = [m for m in self._modules.values() if m is not None]
        if blocks:
            sig = ";".join(module_signature(b) for b in blocks)
            signature = functools.partial(_blocks_signature, blocks=sig)
            cat = Categorical(cat.candidates, cat.label, keys=cat.keys, signature=signature)
        return [cat]

    def _nf_branches(self) -> dict[str, list[tuple[str, list[Any]]]]:
        keys = self._depth_leaf.categorical().values
        return {
            str(i): [(self._required_label(), [k for k, d in zip(keys, self.depth_values) if d > i])]
            for i in range(len(self._modules))
        }

    def _depth(self, arch: Mapping[str, Any]) -> int:
        return self.depth_values[self._depth_leaf.categorical().index(arch[self._required_label()])]

    def _nf_freeze(self, arch: Mapping[str, Any], freeze_child: FreezeChild) -> torch.nn.Module:
        return torch.nn.Sequential(*(freeze_child(self._sub(str(i))) for i in range(self._depth(arch))))

    def _nf_activate(self, arch: Mapping[str, Any]) -> None:
        self._active = self._depth(arch)

    def forward(self, x):
        for i in range(self._active):
            x = self._modules[str(i)](x)
        return x

    def extra_repr(self) -> str:
        return f"label={self.label!r}, depth={self.depth_values}"


# -- Cell ---------------------------------------------------------------------------------------

MERGE_OPS = ("all", "loose_end", "last")


def cell_output_nodes(num_predecessors: int, num_nodes: int, merge_op: str, used: set[int]) -> list[int]:
    """The states a cell merges into its output, given the states its ops read (``used``)."""
    nodes = list(range(num_predecessors, num_predecessors + num_nodes))
    if merge_op == "last":
        return nodes[-1:]
    if merge_op == "loose_end":
        loose = [n for n in nodes if n not in used]
        return loose or nodes[-1:]
    return nodes


class Cell(ChoiceModule):
    """A DAG cell (DARTS / NAS-Bench-201 style).

    The cell has ``num_predecessors`` input states and ``num_nodes`` nodes, numbered from
    ``num_predecessors``. Node ``i`` sums ``num_ops_per_node`` ops; each op reads one earlier state
    (an input choice labelled ``<label>.input_<i>_<j>``) through a chosen op (a layer choice
    labelled ``<label>.op_<i>_<j>``). With ``num_ops_per_node='all'`` node ``i`` reads *every*
    earlier state, each edge through its own op choice ``<label>.op_<i>_<input>`` (the
    NAS-Bench-201 form; include a zero op to let an edge vanish).

    ``op_candidates`` is a list or ordered dict of factories; each is called with as many of
    ``(node_index, op_index, input_index)`` as it takes positionally, so ``lambda: nn.Identity()``
    and ``lambda node, op, inp: SepConv(C, stride=2 if inp < 2 else 1)`` both work. (Module
    instances are deep-copied per edge.) ``merge_op``: ``'all'`` concatenates every node,
    ``'loose_end'`` the nodes no op reads, ``'last'`` returns the last node alone.

    Example::

        cell = nn.Cell({"conv": lambda: nn.Conv2d(16, 16, 3, padding=1), "skip": lambda: nn.Identity()},
                       num_nodes=3, num_ops_per_node="all", merge_op="last")
    """

    def __init__(
        self,
        op_candidates: Any,
        num_nodes: int,
        num_ops_per_node: int | str = 1,
        num_predecessors: int = 1,
        merge_op: str = "all",
        preprocessor: torch.nn.Module | None = None,
        postprocessor: torch.nn.Module | None = None,
        concat_dim: int = 1,
        label: str | None = None,
    ):
        super().__init__()
        who = f"Cell {_name(label, 'Cell')}"
        if isinstance(op_candidates, Mapping):
            names, factories = list(op_candidates.keys()), list(op_candidates.values())
        elif isinstance(op_candidates, Sequence) and not isinstance(op_candidates, (str, bytes)):
            names, factories = list(range(len(op_candidates))), list(op_candidates)
        else:
            raise InvalidSpaceError(f"{who}: op_candidates must be a list or an ordered dict of factories")
        if not factories:
            raise InvalidSpaceError(f"{who} has an empty op candidate list; give at least one op")
        if not isinstance(num_nodes, int) or num_nodes < 1:
            raise InvalidSpaceError(f"{who}: num_nodes must be an int >= 1, got {num_nodes!r}")
        if not isinstance(num_predecessors, int) or num_predecessors < 1:
            raise InvalidSpaceError(f"{who}: num_predecessors must be an int >= 1, got {num_predecessors!r}")
        if num_ops_per_node != "all" and (not isinstance(num_ops_per_node, int) or num_ops_per_node < 1):
            raise InvalidSpaceError(f"{who}: num_ops_per_node must be an int >= 1 or 'all', got {num_ops_per_node!r}")
        if merge_op not in MERGE_OPS:
            raise InvalidSpaceError(f"{who}: unknown merge_op {merge_op!r}; valid: {', '.join(map(repr, MERGE_OPS))}")
        self.label = label
        self.op_names = names
        self.num_nodes = num_nodes
        self.num_ops_per_node = num_ops_per_node
        self.num_predecessors = num_predecessors
        self.merge_op = merge_op
        self.concat_dim = concat_dim
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.all_inputs = num_ops_per_node == "all"
        # a factory taking (node, op, input) positionally gets one candidate per input
        per_input = self.all_inputs or any(
            (_positional_arity(f) or 0) >= 3
            for f in factories if not isinstance(f, torch.nn.Module)
        )

        def build(node: int, op: int, inp: int | None) -> LayerChoice:
            mods = OrderedDict()
            for name, f in zip(names, factories):
                mod = copy.deepcopy(f) if isinstance(f, torch.nn.Module) else _call_factory(f, node, op, inp)
                if not isinstance(mod, torch.nn.Module):
                    raise InvalidSpaceError(f"{who}: op factory {name!r} returned {type(mod).__name__}, expected a module")
                mods[str(name)] = mod
            return LayerChoice(mods if isinstance(op_candidates, Mapping) else list(mods.values()))

        self.edges = torch.nn.ModuleDict()  # "i_j" or "i_j_input" -> LayerChoice
        self.input_choices = torch.nn.ModuleDict()  # "i_j" -> InputChoice
        self._slots: list[tuple[int, int]] = []
        for i in range(num_predecessors, num_predecessors + num_nodes):
            n_ops = num_ops_per_node if isinstance(num_ops_per_node, int) else i  # 'all': every earlier state
            for j in range(n_ops):
                self._slots.append((i, j))
                if self.all_inputs:
                    self.edges[f"{i}_{j}"] = build(i, j, j)
                    continue
                self.input_choices[f"{i}_{j}"] = InputChoice(i, 1, reduction="none")
                if per_input:
                    for inp in range(i):
                        self.edges[f"{i}_{j}_{inp}"] = build(i, j, inp)
                else:
                    self.edges[f"{i}_{j}"] = build(i, j, None)
        self._per_input = per_input and not self.all_inputs

    # labels -----------------------------------------------------------------------------
    def _nf_assign_labels(self, path: str) -> None:
        super()._nf_assign_labels(path)
        for key in self.edges:
            i, j = key.split("_")[:2]
            self._op(key).label = f"{self.label}.op_{i}_{j}"
        for key in self.input_choices:
            self._ic(key).label = f"{self.label}.input_{key}"

    def _nf_branches(self) -> dict[str, list[tuple[str, list[Any]]]]:
        """A per-input edge ``edges.i_j_inp`` is used when ``input_i_j`` is ``inp``."""
        if not self._per_input:
            return {}
        out: dict[str, list[tuple[str, list[Any]]]] = {}
        for key in self.edges:
            i, j, inp = key.split("_")
            out[f"edges.{key}"] = [(self._ic(f"{i}_{j}")._required_label(), [int(inp)])]
        return out

    def _nf_categoricals(self) -> list[Categorical]:
        cats: dict[str, Categorical] = {}
        for i, j in self._slots:
            found = self._edge(i, j, 0 if self._per_input else None)._nf_categoricals()
            if not self.all_inputs:
                found += self._ic(f"{i}_{j}")._nf_categoricals()
            cats.update((cat.label, cat) for cat in found)
        return list(cats.values())

    # structure ----------------------------------------------------------------------------
    # (the cell fills ``edges`` with LayerChoices and ``input_choices`` with InputChoices only)
    def _op(self, key: str) -> LayerChoice:
        return cast(LayerChoice, self.edges[key])

    def _ic(self, key: str) -> InputChoice:
        return cast(InputChoice, self.input_choices[key])

    def _edge(self, i: int, j: int, inp: int | None) -> LayerChoice:
        return self._op(f"{i}_{j}_{inp}" if self._per_input else f"{i}_{j}")

    def _input_of(self, i: int, j: int, arch: Mapping[str, Any] | None) -> int:
        if self.all_inputs:
            return j
        ic = self._ic(f"{i}_{j}")
        return ic._active if arch is None else ic._key(arch)

    def _output_nodes(self, used: set[int]) -> list[int]:
        return cell_output_nodes(self.num_predecessors, self.num_nodes, self.merge_op, used)

    def _nf_freeze(self, arch: Mapping[str, Any], freeze_child: FreezeChild) -> torch.nn.Module:
        ops: list[list[torch.nn.Module]] = [[] for _ in range(self.num_nodes)]
        inputs: list[list[int]] = [[] for _ in range(self.num_nodes)]
        used: set[int] = set()
        for i, j in self._slots:
            inp = self._input_of(i, j, arch)
            used.add(inp)
            ops[i - self.num_predecessors].append(self._edge(i, j, inp)._nf_freeze(arch, freeze_child))
            inputs[i - self.num_predecessors].append(inp)
        pre = freeze_child(self.preprocessor) if self.preprocessor is not None else None
        post = freeze_child(self.postprocessor) if self.postprocessor is not None else None
        return FrozenCell(ops, inputs, self.num_predecessors, self._output_nodes(used), self.concat_dim, pre, post)

    def _nf_activate(self, arch: Mapping[str, Any]) -> None:
        for key in self.input_choices:
            self._ic(key)._nf_activate(arch)
        for key in self.edges:
            self._op(key)._nf_activate(arch)

    def forward(self, *inputs):
        if len(inputs) == 1 and not isinstance(inputs[0], torch.Tensor):
            inputs = inputs[0]  # a list of the predecessors' outputs
        states = list(inputs)
        if len(states) != self.num_predecessors:
            raise InvalidArchError(f"Cell {self.label!r} expects {self.num_predecessors} input tensor(s), got {len(states)}")
        original = states
        if self.preprocessor is not None:
            states = list(self.preprocessor(states))
        used: set[int] = set()
        out = None
        for i, j in self._slots:  # ordered by node, then op
            if j == 0 and out is not None:
                states.append(out)
                out = None
            inp = self._input_of(i, j, None)
            used.add(inp)
            y = self._edge(i, j, inp)(states[inp])
            out = y if out is None else out + y
        states.append(out)
        return merge_cell_output(states, self._output_nodes(used), self.concat_dim, self.postprocessor, original)

    def extra_repr(self) -> str:
        return (
            f"label={self.label!r}, num_nodes={self.num_nodes}, num_ops_per_node={self.num_ops_per_node!r}, "
            f"num_predecessors={self.num_predecessors}, merge_op={self.merge_op!r}"
        )
