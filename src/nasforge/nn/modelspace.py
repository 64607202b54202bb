"""``ModelSpace``: a PyTorch module with choices in it, its ``Space`` and fast freezing.

Choices are discovered by walking the module tree once, when the outermost ``__init__`` of a
model space returns (never by tracing ``forward``). Unlabelled choices are named after their
attribute path (``conv1``, ``cells.0.op_1_0``), so the same code always gives the same labels.

Freezing builds the chosen network from the parts already constructed: each module is copied
shallowly (its own tensors cloned, children frozen recursively), a choice is replaced by its
chosen candidate, and a layer built with value choices is constructed anew with the chosen
values. No ``copy.deepcopy`` and no second run of the user's ``__init__`` — except for a
module whose ``__init__`` used a free-standing choice as a concrete value (``if self.use_bn``)
at another value than the arch's: that module is constructed again under the arch.

One path: ``fixed_arch(arch)`` / ``Space.build(arch)`` construct the space (free-standing
choices at their chosen values), then freeze it with the same :func:`freeze_module` that
``model.freeze(arch)`` uses, after the same validation (``Space.validate``: full or canonical
arch). So both give the same network.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch

from nasforge.errors import FrozenModelError, InvalidArchError
from nasforge.fixed import current_fixed_arch, fixed_arch
from nasforge.nn._context import (
    collecting_free_choices,
    init_depth,
    label_prefix,
    rebuilding,
    setting,
)
from nasforge.nn.choices import ChoiceModule
from nasforge.nn.layers import ValueAwareMeta, init_arg_names, record_init
from nasforge.nn.value import ValueExpr, contains_value_choice, resolve_values, value_leaves
from nasforge.space import Arch, Space, _hashable_repr

__all__ = ["ModelSpace", "Module", "discover", "freeze_module", "activate"]


class ModelSpaceMeta(ValueAwareMeta):
    """Runs the user's ``__init__`` then, for the outermost space, discovers its choices."""

    def __call__(cls, *args: Any, **kwargs: Any):
        depth = init_depth.get()
        fixed = current_fixed_arch() if depth == 0 else None
        with setting(init_depth, depth + 1), collecting_free_choices() as free:
            obj = type.__call__(cls, *args, **kwargs)
        if contains_value_choice(args) or contains_value_choice(kwargs):
            record_init(obj, args, kwargs)
        if free:
            _settle_free_choices(obj, free, args, kwargs)
        if depth == 0:
            space = discover(obj)
            if fixed is not None:
                if rebuilding.get() or label_prefix.get():
                    # rebuilt while freezing a larger space: the arch also holds the outer labels
                    fixed = {label: fixed[label] for label in space if label in fixed}
                return freeze_module(obj, space.validate(fixed), inplace=True)  # built just for this
        return obj


class ModelSpace(torch.nn.Module, metaclass=ModelSpaceMeta):
    """Base class of a model space: an ordinary ``torch.nn.Module`` with choices in it.

    Example::

        import nasforge.nn as nn

        class Net(nn.ModelSpace):
            def __init__(self):
                super().__init__()
                self.conv = nn.LayerChoice([nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 5, padding=2)])
                self.fc = nn.Linear(8, 10)

            def forward(self, x):
                return self.fc(self.conv(x).mean((2, 3)))

        model = Net()
        arch = model.space.sample(0)       # {"conv": 1}
        net = model.freeze(arch)           # a plain network, no choice left

    ``nasforge.nn.Module`` is this class too, so NNI-style code that subclasses ``nn.Module``
    works unchanged.
    """

    @property
    def space(self) -> Space:
        """The ``Space`` of this model space's choices (label -> ``Categorical``)."""
        if self.__dict__.get("_nf_frozen"):
            raise FrozenModelError(f"{type(self).__name__} is a frozen network; it has no choices left (no space)")
        space = self.__dict__.get("_nf_space")
        if space is None:
            space = discover(self)
        return space

    def freeze(self, arch: Mapping[str, Any], reinit: bool = False) -> torch.nn.Module:
        """The plain network of ``arch``: no choice module left, no per-call choice overhead.

        Weights of the kept parts are copies of this instance's (its initialisation, or what a
        supernet learned); ``reinit=True`` draws fresh ones with each layer's ``reset_parameters``.
        """
        return freeze_module(self, self.space.validate(arch), reinit=reinit)

    def activate(self, arch: Mapping[str, Any]) -> None:
        """Make this instance's own forward compute ``arch`` (weights stay shared)."""
        activate(self, arch)

    @classmethod
    def build(cls, arch: Mapping[str, Any] | str, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Construct the frozen network of ``arch`` directly: ``with fixed_arch(arch): cls(...)``."""
        with fixed_arch(arch):
            return cls(*args, **kwargs)

    def add_mutable(self, choice: Any) -> Any:
        """Register a labelled value choice as part of this space (NNI 3.0's ``add_mutable``);
        returns it. Use :func:`nasforge.nn.ensure_frozen` (or the choice itself in ``__init__``)
        to get its concrete value."""
        from nasforge.nn.value import ValueChoice

        if not isinstance(choice, ValueChoice) or choice.label is None:
            raise TypeError(f"add_mutable takes a labelled nn.ValueChoice, got {choice!r}")
        self.__dict__.setdefault("_nf_mutables", []).append(choice)
        self.__dict__.pop("_nf_space", None)
        return choice


class Module(ModelSpace):
    """``nasforge.nn.Module``: subclass it exactly like ``torch.nn.Module``; it is a ModelSpace.

    ``isinstance(x, nasforge.nn.Module)`` is true for every ``torch.nn.Module``.
    """

    _nf_base = torch.nn.Module  # what ValueAwareMeta's isinstance / issubclass checks test against


# -- discovery ------------------------------------------------------------------------------

def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _settle_free_choices(obj: torch.nn.Module, free: dict[str, tuple[Any, Any]], args: tuple, kwargs: dict) -> None:
    """Remember the free-standing choices ``obj``'s ``__init__`` used (and how to run it again);
    attributes holding only such choices become the values the instance was built with."""
    object.__setattr__(obj, "_nf_free", dict(free))
    if "_nf_init" not in obj.__dict__:
        object.__setattr__(obj, "_nf_reinit", (args, kwargs))
    built = {label: key for label, (_, key) in free.items()}
    for name, value in list(obj.__dict__.items()):
        if isinstance(value, ValueExpr) and all(leaf.label in built for leaf in value.leaves()):
            object.__setattr__(obj, name, value.evaluate(built))


def discover(root: torch.nn.Module) -> Space:
    """Walk ``root`` once: label unlabelled choices after their path and collect the ``Space``,
    with the condition under which each label is active (the branches that hold it).

    Works on any ``torch.nn.Module`` holding nasforge choices; the space is cached on it.
    """
    prefix = label_prefix.get()
    space = Space()
    seen: dict[int, set[tuple]] = {}

    def label_values(module: torch.nn.Module, path: str, conds: list) -> None:
        args, kwargs = module.__dict__["_nf_init"]
        names = init_arg_names(type(module))
        named = [(names[i] if i < len(names) else f"arg{i}", a) for i, a in enumerate(args)]
        named += list(kwargs.items())
        for argname, value in named:
            leaves = value_leaves(value)
            unlabelled = [leaf for leaf in leaves if leaf.label is None]
            for k, leaf in enumerate(unlabelled):
                suffix = f"_{k}" if len(unlabelled) > 1 else ""
                leaf.label = prefix + _join(path, argname) + suffix
            for leaf in leaves:
                space.add(leaf.categorical(), conds)

    def walk(module: torch.nn.Module, path: str, conds: list, pending: dict[str, list]) -> None:
        key = tuple((lab, tuple(map(repr, keys))) for lab, keys in conds)
        visits = seen.setdefault(id(module), set())
        if key in visits:
            return
        first_visit = not visits
        visits.add(key)  # a module shared by several branches is walked once per condition
        branches = dict(pending)
        if isinstance(module, ChoiceModule):
            module._nf_assign_labels(prefix + path)
            for cat in module._nf_categoricals():
                space.add(cat, conds)
            for rel, atoms in module._nf_branches().items():
                branches[rel] = branches.get(rel, []) + atoms
        free = module.__dict__.get("_nf_free")
        if first_visit and ("_nf_init" in module.__dict__ or free):
            object.__setattr__(module, "_nf_path", path)
        if "_nf_init" in module.__dict__:
            label_values(module, path, conds)
        if free:
            for leaf, _ in free.values():
                space.add(leaf.categorical(), conds)
        for leaf in module.__dict__.get("_nf_mutables", ()):
            space.add(leaf.categorical(), conds)
        for name, child in module._modules.items():
            if child is not None:
                atoms = branches.get(name, [])
                nested = {rel[len(name) + 1 :]: a for rel, a in branches.items() if rel.startswith(name + ".")}
                walk(child, _join(path, name), conds + atoms, nested)

    walk(root, "", [], {})
    object.__setattr__(root, "_nf_space", space)
    return space


# -- freezing ------------------------------------------------------------------------------------

_COPIED_CONTAINERS = (dict, OrderedDict, set)


def freeze_module(root: torch.nn.Module, arch: Arch, reinit: bool = False, inplace: bool = False) -> torch.nn.Module:
    """The plain network of ``arch`` built from ``root``'s parts (see the module docstring).

    ``inplace=True`` replaces the choices inside ``root`` itself instead of copying (for an
    instance built only to be frozen, as under ``fixed_arch``).
    """
    memo: dict[int, Any] = {}

    def param_copy(p: torch.nn.Parameter) -> torch.nn.Parameter:
        new = memo.get(id(p))
        if new is None:
            new = torch.nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
            memo[id(p)] = new
        return new

    def replace_children(module: torch.nn.Module) -> torch.nn.Module:
        children = module._modules
        for name, child in children.items():
            if child is not None:
                children[name] = freeze_child(child)
        module.__dict__.pop("_nf_space", None)
        return module

    def copy_module(module: torch.nn.Module) -> torch.nn.Module:
        if inplace:
            return replace_children(module)
        new = object.__new__(type(module))
        state = module.__dict__.copy()
        for key, value in state.items():
            if type(value) in _COPIED_CONTAINERS:
                state[key] = value.copy()
            elif isinstance(value, ValueExpr) and all(leaf.label in arch for leaf in value.leaves()):
                state[key] = resolve_values(value, arch)  # an attribute holding a value choice
        params = state["_parameters"]
        for name, p in params.items():
            if p is not None:
                params[name] = param_copy(p)
        buffers = state["_buffers"]
        for name, b in buffers.items():
            if b is not None:
                buffers[name] = b.clone()
        object.__setattr__(new, "__dict__", state)
        replace_children(new)
        reset = getattr(new, "reset_parameters", None) if reinit and params else None
        if callable(reset):
            reset()
        return new

    def rebuild(module: torch.nn.Module) -> torch.nn.Module:
        args, kwargs = module.__dict__.get("_nf_init") or module.__dict__["_nf_reinit"]
        # module arguments (a ValueChoice over modules, a block passed in) are frozen copies:
        # the frozen network shares no parameter with the space
        args, kwargs = own_modules(resolve_values(args, arch)), own_modules(resolve_values(kwargs, arch))
        if isinstance(module, ModelSpace):
            path = module.__dict__.get("_nf_path", "")
            prefix = label_prefix.get() + (path + "." if path else "")
            with fixed_arch(arch), setting(rebuilding, True), setting(label_prefix, prefix):
                return type(module)(*args, **kwargs)
        return type(module)(*args, **kwargs)

    def own_modules(obj: Any) -> Any:
        if isinstance(obj, torch.nn.Module):
            return freeze_child(obj)
        if isinstance(obj, list):
            return [own_modules(o) for o in obj]
        if isinstance(obj, tuple):
            return tuple(own_modules(o) for o in obj)
        if isinstance(obj, dict):
            return {k: own_modules(o) for k, o in obj.items()}
        return obj

    def freeze_child(module: torch.nn.Module) -> torch.nn.Module:
        done = memo.get(id(module))
        if done is not None:
            return done
        if isinstance(module, ChoiceModule):
            out = module._nf_freeze(arch, freeze_child)
        elif "_nf_init" in module.__dict__ or _free_changed(module, arch):
            out = rebuild(module)
        else:
            out = copy_module(module)
        memo[id(module)] = out
        return out

    frozen = freeze_child(root)
    object.__setattr__(frozen, "_nf_frozen", True)
    return frozen


def _free_changed(module: torch.nn.Module, arch: Mapping[str, Any]) -> list[str]:
    """The free-standing choices of ``module`` that ``arch`` sets to another value than its own."""
    free = module.__dict__.get("_nf_free")
    if not free:
        return []
    return [label for label, (_, key) in free.items()
            if label in arch and _hashable_repr(arch[label]) != _hashable_repr(key)]


def activate(root: torch.nn.Module, arch: Mapping[str, Any]) -> None:
    """Make ``root``'s own forward compute ``arch``; value choices must stay at their defaults."""
    space = root.__dict__.get("_nf_space") or discover(root)
    arch = space.validate(arch)
    for module in root.modules():
        for label in _free_changed(module, arch):
            raise InvalidArchError(
                f"free-standing choice {label!r} decided how {type(module).__name__} was built; it cannot be "
                f"activated in place at another value ({arch[label]!r}); use freeze(arch)"
            )
        if isinstance(module, ChoiceModule):
            if all(cat.label in arch for cat in module._nf_categoricals()):  # skip choices of unused branches
                module._nf_activate(arch)
        elif "_nf_init" in module.__dict__:
            for leaf in value_leaves(module.__dict__["_nf_init"]):
                if leaf.label in arch and leaf.value_in(arch) is not leaf.candidates[0]:
                    raise InvalidArchError(
                        f"value choice {leaf.label!r} changes a layer's shape and cannot be activated in place; "
                        f"use freeze(arch) (activate needs it at {leaf.candidates[0]!r})"
                    )
