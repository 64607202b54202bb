"""``ModelSpace``: a PyTorch module with choices in it, its ``Space`` and fast freezing.

Choices are discovered by walking the module tree once, when the outermost ``__init__`` of a
model space returns (never by tracing ``forward``). Unlabelled choices are named after their
attribute path (``conv1``, ``cells.0.op_1_0``), so the same code always gives the same labels.

Freezing builds the chosen network from the parts already constructed: each module is copied
shallowly (its own tensors cloned, children frozen recursively), a choice is replaced by its
chosen candidate, and a layer built with value choices is constructed anew with the chosen
values. No ``copy.deepcopy`` and no second run of the user's ``__init__``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch

from nasforge.errors import FrozenModelError, InvalidArchError
from nasforge.fixed import current_fixed_arch, fixed_arch
from nasforge.nn._context import init_depth, label_prefix, tracking_consumed, with_label_prefix
from nasforge.nn.choices import ChoiceModule
from nasforge.nn.layers import ValueAwareMeta, init_arg_names, record_init
from nasforge.nn.value import contains_value_choice, resolve_values, value_leaves
from nasforge.space import Arch, Space

__all__ = ["ModelSpace", "Module", "discover", "freeze_module", "activate"]


class ModelSpaceMeta(ValueAwareMeta):
    """Runs the user's ``__init__`` then, for the outermost space, discovers its choices."""

    def __call__(cls, *args: Any, **kwargs: Any):
        depth = init_depth.get()
        fixed = current_fixed_arch() if depth == 0 else None
        token = init_depth.set(depth + 1)
        try:
            if fixed is not None:
                with tracking_consumed() as consumed:
                    obj = type.__call__(cls, *args, **kwargs)
            else:
                consumed = set()
                obj = type.__call__(cls, *args, **kwargs)
        finally:
            init_depth.reset(token)
        if contains_value_choice(args) or contains_value_choice(kwargs):
            record_init(obj, args, kwargs)
        if depth == 0:
            space = discover(obj)
            if fixed is not None:
                return _freeze_under_fixed_arch(obj, space, fixed, consumed)
        return obj

    def __instancecheck__(cls, instance: Any) -> bool:
        if cls.__dict__.get("_nf_any_module"):
            return isinstance(instance, torch.nn.Module)
        return type.__instancecheck__(cls, instance)

    def __subclasscheck__(cls, subclass: type) -> bool:
        if cls.__dict__.get("_nf_any_module"):
            return issubclass(subclass, torch.nn.Module)
        return type.__subclasscheck__(cls, subclass)


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


class Module(ModelSpace):
    """``nasforge.nn.Module``: subclass it exactly like ``torch.nn.Module``; it is a ModelSpace.

    ``isinstance(x, nasforge.nn.Module)`` is true for every ``torch.nn.Module``.
    """

    _nf_any_module = True


# -- discovery ------------------------------------------------------------------------------

def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def discover(root: torch.nn.Module) -> Space:
    """Walk ``root`` once: label unlabelled choices after their path and collect the ``Space``.

    Works on any ``torch.nn.Module`` holding nasforge choices; the space is cached on it.
    """
    prefix = label_prefix.get()
    space = Space()
    seen: set[int] = set()

    def label_values(module: torch.nn.Module, path: str) -> None:
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
                space.add(leaf.to_categorical())

    def walk(module: torch.nn.Module, path: str) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        if isinstance(module, ChoiceModule):
            module._nf_assign_labels(prefix + path)
            for cat in module._nf_categoricals():
                space.add(cat)
        if "_nf_init" in module.__dict__:
            object.__setattr__(module, "_nf_path", path)
            label_values(module, path)
        for name, child in module._modules.items():
            if child is not None:
                walk(child, _join(path, name))

    walk(root, "")
    object.__setattr__(root, "_nf_space", space)
    return space


def _freeze_under_fixed_arch(obj: torch.nn.Module, space: Space, fixed: Mapping[str, Any], consumed: set[str]):
    missing = [label for label in space if label not in fixed]
    if missing:
        raise InvalidArchError(
            f"fixed arch is missing label(s) {missing[:8]}; e.g. {missing[0]!r} takes one of {space[missing[0]].values}"
        )
    if not label_prefix.get():
        unknown = [label for label in fixed if label not in space and label not in consumed]
        if unknown:
            raise InvalidArchError(
                f"fixed arch has unknown label(s) {unknown[:8]}; {type(obj).__name__}'s labels are {(space.labels + sorted(consumed))[:12]}"
            )
    arch = space.validate({label: fixed[label] for label in space})
    return freeze_module(obj, arch, inplace=True)  # the instance was built only for this


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
        params = state["_parameters"]
        for name, p in params.items():
            if p is not None:
                params[name] = param_copy(p)
        buffers = state["_buffers"]
        for name, b in buffers.items():
            if b is not None:
                buffers[name] = b.clone()
        children = state["_modules"]
        for name, child in children.items():
            if child is not None:
                children[name] = freeze_child(child)
        state.pop("_nf_space", None)
        object.__setattr__(new, "__dict__", state)
        if reinit and params and hasattr(new, "reset_parameters"):
            new.reset_parameters()
        return new

    def rebuild(module: torch.nn.Module) -> torch.nn.Module:
        args, kwargs = module.__dict__["_nf_init"]
        args, kwargs = resolve_values(args, arch), resolve_values(kwargs, arch)
        if isinstance(module, ModelSpace):
            path = module.__dict__.get("_nf_path", "")
            with fixed_arch(arch), with_label_prefix(label_prefix.get() + (path + "." if path else "")):
                return type(module)(*args, **kwargs)
        return type(module)(*args, **kwargs)

    def freeze_child(module: torch.nn.Module) -> torch.nn.Module:
        done = memo.get(id(module))
        if done is not None:
            return done
        if isinstance(module, ChoiceModule):
            out = module._nf_freeze(arch, freeze_child)
        elif "_nf_init" in module.__dict__:
            out = rebuild(module)
        else:
            out = copy_module(module)
        memo[id(module)] = out
        return out

    frozen = freeze_child(root)
    object.__setattr__(frozen, "_nf_frozen", True)
    return frozen


def activate(root: torch.nn.Module, arch: Mapping[str, Any]) -> None:
    """Make ``root``'s own forward compute ``arch``; value choices must stay at their defaults."""
    space = root.__dict__.get("_nf_space") or discover(root)
    arch = space.validate(arch)
    for module in root.modules():
        if isinstance(module, ChoiceModule):
            module._nf_activate(arch)
        elif "_nf_init" in module.__dict__:
            for leaf in value_leaves(module.__dict__["_nf_init"]):
                if arch[leaf.label] != leaf.candidates[0]:
                    raise InvalidArchError(
                        f"value choice {leaf.label!r} changes a layer's shape and cannot be activated in place; "
                        f"use freeze(arch) (activate needs it at {leaf.candidates[0]!r})"
                    )
