"""Supernet conversion: swap a model space's choices for weight-sharing one-shot modules.

The user's model space is converted *in place*: every ``LayerChoice``, ``InputChoice``,
``Repeat`` and ``Cell`` is replaced in its parent by a supernet module that holds the **same**
candidate module objects (so an optimizer built over ``model.parameters()`` before the
conversion still covers them) and reads its architecture decision from an :class:`ArchSlot`.
Choices with the same label share one slot (they are one decision). :meth:`Supernet.restore`
puts the original choice modules back, so ``model.freeze(arch)`` works on the user's object
and copies the weights the supernet trained.

Two families of modules:

* **mixed** (DARTS): the output is the softmax(α)-weighted sum of every candidate's output;
* **sampled** (ENAS, SPOS, GDAS, ProxylessNAS): only the candidate(s) of the slot's current
  decision run. With ``slot.gate`` set (a length-``n`` tensor carrying gradients to α, e.g.
  a straight-through Gumbel or binary gate) the output is ``Σ_{k in slot.paths} gate[k] · out_k``.

Value choices of layer arguments (widths, kernel sizes) are not supported in one-shot mode:
:class:`UnsupportedOneShotError` names their labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F

from nasforge.errors import NasforgeError
from nasforge.nn.choices import (
    Cell,
    ChoiceModule,
    InputChoice,
    LayerChoice,
    Repeat,
    cell_output_nodes,
)
from nasforge.nn.frozen import merge_cell_output, reduce_tensors
from nasforge.nn.modelspace import discover
from nasforge.nn.value import value_leaves
from nasforge.space import Arch, Categorical, Space

__all__ = [
    "ArchSlot",
    "Supernet",
    "UnsupportedOneShotError",
    "MixedLayerChoice",
    "MixedInputChoice",
    "MixedRepeat",
    "SampledLayerChoice",
    "SampledInputChoice",
    "SampledRepeat",
    "SupernetCell",
]


class UnsupportedOneShotError(NasforgeError, ValueError):
    """The model space uses something a one-shot method cannot share weights over."""


class ArchSlot:
    """One architecture decision (one label) of a supernet.

    ``kind``: ``"layer"``, ``"input"`` or ``"repeat"``; ``categorical``: the label's choice in the
    space (its keys are what export writes). ``n``: the number of architecture weights (for a
    DARTS input choice with ``n_chosen > 1``: one per candidate input, else one per key).

    State read by the supernet modules on every forward:

    * ``alpha``: the architecture logits (a ``Parameter`` of length ``n``) or None;
    * ``index``: the sampled candidate (sampled modules);
    * ``gate`` / ``paths``: an optional length-``n`` gate tensor and the candidate indices to run;
      ``gate_all``: layer choices also add the gates of the candidates not run (as GDAS' reference
      code does: their value is 0 with a straight-through gate, but α gets their gradient);
    * ``fixed``: mixed modules use these weights instead of softmax(α) when set (perturbation-based
      selection masks or fixes a choice through it).
    """

    __slots__ = ("label", "kind", "categorical", "n", "n_chosen", "alpha", "index", "gate", "paths", "gate_all", "param_free", "zero", "fixed")

    def __init__(self, label: str, kind: str, categorical: Categorical, n: int, n_chosen: int = 1):
        self.label = label
        self.kind = kind
        self.categorical = categorical
        self.n = n
        self.n_chosen = n_chosen
        self.alpha: torch.nn.Parameter | None = None
        self.index = 0
        self.gate: torch.Tensor | None = None
        self.paths: list[int] | None = None
        self.gate_all = False
        self.param_free: list[bool] = [False] * n
        self.zero: list[bool] = [False] * n
        self.fixed: torch.Tensor | None = None

    def key(self, index: int) -> Any:
        return self.categorical.key_at(index)

    def logits(self) -> torch.Tensor:
        """α (a clear error for a slot whose trainer samples without architecture weights)."""
        if self.alpha is None:
            raise RuntimeError(f"label {self.label!r} has no architecture weights α: its trainer has not set them")
        return self.alpha

    def weights(self) -> torch.Tensor:
        """The mixture weights of a mixed module: ``fixed`` when set (DrNAS samples, DARTS-PT masks), else softmax(α)."""
        return F.softmax(self.logits(), -1) if self.fixed is None else self.fixed

    def select(self, index: int) -> None:
        """Run exactly the candidate ``index`` (no gates): one sampled path."""
        self.index, self.gate, self.paths, self.gate_all = index, None, None, False

    def export_from_alpha(self, exclude_zero: bool = False, scores: torch.Tensor | None = None,
                          allowed: list[int] | None = None) -> Any:
        """Argmax of α, or of ``scores``, among the ``allowed`` candidates (top-``n_chosen`` inputs, sorted,
        for a multi-input DARTS choice).

        ``exclude_zero``: DARTS' derivation rule ("retain the strongest non-zero operation"):
        a zero candidate (see :func:`is_zero_op`) is never exported unless it is the only one allowed.
        """
        a = (self.logits() if scores is None else scores).detach().clone()
        allowed = list(range(self.n)) if allowed is None else allowed
        if len(allowed) < self.n:
            a[[k for k in range(self.n) if k not in allowed]] = float("-inf")
        zero = [self.zero[k] for k in allowed]
        if exclude_zero and any(zero) and not all(zero):
            a = a.masked_fill(torch.tensor(self.zero, device=a.device), float("-inf"))
        if self.kind == "input" and self.n_chosen > 1 and self.n != len(self.categorical):
            return sorted(int(i) for i in torch.topk(a, self.n_chosen).indices)
        return self.key(int(torch.argmax(a)))

    def __repr__(self) -> str:
        return f"ArchSlot({self.label!r}, kind={self.kind!r}, n={self.n})"


def _mix(terms: list[tuple[int, torch.Tensor | None]], value: Callable[[int], Any]) -> Any:
    """``Σ w · value(k)`` over the ``(k, w)`` terms, in their order (``w`` None: ``value(k)`` unscaled)."""
    out = None
    for k, w in terms:
        y = value(k) if w is None else value(k) * w
        out = y if out is None else out + y
    return out


class _SupernetModule(torch.nn.Module):
    """A supernet module reads its decision from its slot: all candidates weighted by the mixture
    (``mixes``, DARTS) or the sampled candidate, or the gated sampled ``paths``."""

    mixes: bool = False
    slot: ArchSlot
    label: str | None

    def _terms(self) -> list[tuple[int, torch.Tensor | None]]:
        slot = self.slot
        if self.mixes:
            w = slot.weights()
            return [(k, w[k]) for k in range(slot.n)]
        if slot.gate is None:
            return [(slot.index, None)]
        return [(k, slot.gate[k]) for k in slot.paths or []]


class _LayerChoiceWrapper(_SupernetModule):
    """Holds a layer choice's own candidate modules (same objects, same names) and its slot.

    Output: ``Σ_k w_k · op_k(x)`` (mixed: ``w = softmax(α)``; sampled: the slot's candidate, or
    ``Σ_{k in paths} gate[k] · op_k(x)`` with a gate, plus the other candidates' gates with ``slot.gate_all``).
    """

    ops: list[torch.nn.Module]

    def __init__(self, original: LayerChoice, slot: ArchSlot):
        super().__init__()
        for name in original.names:
            self.add_module(str(name), original._modules[str(name)])
        self.__dict__["ops"] = [original._modules[str(n)] for n in original.names]
        self.__dict__["slot"] = slot
        self.label = original.label

    def forward(self, *args: Any, **kwargs: Any):
        out = _mix(self._terms(), lambda k: self.ops[k](*args, **kwargs))
        slot = self.slot
        if slot.gate_all and slot.gate is not None and not self.mixes:
            rest = [slot.gate[k] for k in range(len(self.ops)) if k not in (slot.paths or [])]
            if rest:
                out = out + torch.stack(rest).sum()
        return out


class _InputChoiceWrapper(_SupernetModule):
    """An input choice over the slot's keys: an input index, or a combination for ``n_chosen > 1``
    (reduced by the choice's reduction). A DARTS multi-input choice weighs each candidate input
    instead (one α per input; ``reduction="sum"`` scales by ``n_chosen``; top-k exported)."""

    combos: list[list[int]]

    def __init__(self, original: InputChoice, slot: ArchSlot):
        super().__init__()
        per_input = self.mixes and original.n_chosen > 1
        if per_input and original.reduction not in ("sum", "mean"):
            raise UnsupportedOneShotError(
                f"InputChoice {original.label!r}: DARTS mixes inputs by a weighted sum, which cannot stand for "
                f"reduction={original.reduction!r} with n_chosen={original.n_chosen}; use reduction 'sum' or 'mean'"
            )
        self.__dict__["slot"] = slot
        self.label = original.label
        self.n_candidates = original.n_candidates
        self.n_chosen = original.n_chosen
        self.reduction = original.reduction
        keys = range(slot.n) if per_input else slot.categorical.values
        self.__dict__["combos"] = [[k] if isinstance(k, int) else list(k) for k in keys]
        self.scale = original.n_chosen if per_input and original.reduction == "sum" else 1

    def _pick(self, inputs: Sequence[torch.Tensor], k: int) -> torch.Tensor:
        chosen = self.combos[k]
        if len(chosen) == 1:
            return inputs[chosen[0]]
        return reduce_tensors([inputs[i] for i in chosen], "sum" if self.reduction == "none" else self.reduction)

    def forward(self, inputs: Sequence[torch.Tensor]):
        out = _mix(self._terms(), lambda k: self._pick(inputs, k))
        if self.scale != 1:
            out = out * self.scale
        return [out] if self.reduction == "none" else out

    def cell_slot(self, states: list[torch.Tensor], op_for: Callable[[int | None], torch.nn.Module], per_input: bool):
        """A cell's op slot: the op(s) applied to the chosen state(s); DARTS with one op for every input mixes the states first."""
        if self.mixes and not per_input:
            return op_for(None)(_mix(self._terms(), lambda k: states[k]))
        return _mix(self._terms(), lambda k: op_for(k if per_input else None)(states[k]))

    def representative(self) -> int:
        return int(torch.argmax(self.slot.logits().detach())) if self.mixes else self.slot.index


class _RepeatWrapper(_SupernetModule):
    """Holds a Repeat's own blocks (same objects, same names), its depths and its slot; outputs
    ``Σ_d w_d · x_d`` over the chosen depths ``d`` (``x_d``: the output after ``d`` blocks)."""

    def __init__(self, original: Repeat, slot: ArchSlot):
        super().__init__()
        for name, m in original._modules.items():
            self.add_module(name, m)
        self.__dict__["slot"] = slot
        self.depth_values = list(original.depth_values)
        self.label = original.label

    def forward(self, x):
        terms = self._terms()
        outs = {0: x}
        for i in range(max(self.depth_values[k] for k, _ in terms)):
            x = self._modules[str(i)](x)
            outs[i + 1] = x
        return _mix(terms, lambda k: outs[self.depth_values[k]])


class MixedLayerChoice(_LayerChoiceWrapper):
    """DARTS mixed op: ``Σ_k softmax(α)_k · op_k(x)`` over the same candidate modules."""

    mixes = True


class MixedInputChoice(_InputChoiceWrapper):
    """DARTS input choice: softmax(α)-weighted sum of the candidate inputs (top-k exported)."""

    mixes = True


class MixedRepeat(_RepeatWrapper):
    """DARTS over a depth: ``Σ_d softmax(α)_d · x_d``."""

    mixes = True


class SampledLayerChoice(_LayerChoiceWrapper):
    """Runs the slot's sampled candidate; with a gate, ``Σ_{k in paths} gate[k] · op_k(x)``."""


class SampledInputChoice(_InputChoiceWrapper):
    """Picks the slot's sampled key (an index, or a combination for ``n_chosen > 1``), or gates the ``paths``."""


class SampledRepeat(_RepeatWrapper):
    """Runs the sampled depth; with a gate, the gated sum of the outputs at the depths in ``paths``."""


# -- cells ---------------------------------------------------------------------------------------

class SupernetCell(torch.nn.Module):
    """A ``Cell`` whose edges and input choices are supernet modules.

    With ``num_ops_per_node='all'`` (NAS-Bench-201) each edge is a converted layer choice. Otherwise
    each op slot ``(i, j)`` asks its converted input choice to combine the states: DARTS mixes
    them (``Σ_inp w_inp · op(state_inp)`` when ops depend on the input, else ``op(Σ_inp w_inp · state_inp)``),
    sampled methods run the sampled input.
    """

    def __init__(self, cell: Cell, edges: Mapping[str, torch.nn.Module], inputs: Mapping[str, torch.nn.Module]):
        super().__init__()
        self.label = cell.label
        self.edges = torch.nn.ModuleDict(edges)
        self.input_choices = torch.nn.ModuleDict(inputs)
        self.preprocessor = cell.preprocessor
        self.postprocessor = cell.postprocessor
        self._slots = list(cell._slots)
        self.all_inputs = cell.all_inputs
        self.per_input = cell._per_input
        self.num_predecessors = cell.num_predecessors
        self.num_nodes = cell.num_nodes
        self.merge_op = cell.merge_op
        self.concat_dim = cell.concat_dim

    def forward(self, *inputs):
        if len(inputs) == 1 and not isinstance(inputs[0], torch.Tensor):
            inputs = inputs[0]  # a list of the predecessors' outputs (NNI's other calling form)
        states = list(inputs)
        original = states
        if self.preprocessor is not None:
            states = list(self.preprocessor(states))
        edges = self.edges
        used: set[int] = set()
        out = None
        for i, j in self._slots:
            if j == 0 and out is not None:
                states.append(out)
                out = None
            if self.all_inputs:
                used.add(j)
                y = edges[f"{i}_{j}"](states[j])
            else:
                ic = self.input_choices[f"{i}_{j}"]
                if self.merge_op == "loose_end":
                    used.add(ic.representative())
                if self.per_input:
                    y = ic.cell_slot(states, lambda inp, i=i, j=j: edges[f"{i}_{j}_{inp}"], True)
                else:
                    y = ic.cell_slot(states, lambda _inp, i=i, j=j: edges[f"{i}_{j}"], False)
            out = y if out is None else out + y
        states.append(out)
        outputs = cell_output_nodes(self.num_predecessors, self.num_nodes, self.merge_op, used)
        return merge_cell_output(states, outputs, self.concat_dim, self.postprocessor, original)


# -- the styles --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SupernetFamily:
    """What a supernet style swaps in for each kind of choice.

    ``mixes``: every candidate runs and the outputs are mixed by weights (DARTS); a multi-input choice
    (``n_chosen > 1``) then has one weight per candidate input rather than one per combination. Otherwise
    only sampled paths run, so a step may leave candidates' parameters unused.
    """

    layer: type[_LayerChoiceWrapper]
    input: type[_InputChoiceWrapper]
    repeat: type[_RepeatWrapper]
    mixes: bool


#: style name -> the modules of that style (a trainer's ``style`` is one of these keys)
STYLES: dict[str, SupernetFamily] = {
    "mixed": SupernetFamily(MixedLayerChoice, MixedInputChoice, MixedRepeat, mixes=True),
    "sampled": SupernetFamily(SampledLayerChoice, SampledInputChoice, SampledRepeat, mixes=False),
}


# -- the conversion ------------------------------------------------------------------------------

ZERO_NAMES = frozenset({"none", "zero", "Zero"})


def is_zero_op(name: Any, module: torch.nn.Module) -> bool:
    """A candidate that stands for "no edge": named ``none``/``zero`` or a module class called ``Zero``."""
    return (isinstance(name, str) and name in ZERO_NAMES) or type(module).__name__ == "Zero"


class Supernet:
    """The in-place conversion of a model space into a supernet, and its undoing.

    ``style`` is a key of :data:`STYLES`: ``"mixed"`` (DARTS) or ``"sampled"``. ``slots`` maps each label to its
    :class:`ArchSlot`; trainers set α, indices and gates there. Example::

        net = Supernet(model, "mixed")        # model's choices are now DARTS mixed ops
        net.init_alphas(torch.device("cpu"))
        model(x)                               # runs the supernet
        net.restore()                          # the original choices are back
    """

    def __init__(self, model: torch.nn.Module, style: str):
        if style not in STYLES:
            raise ValueError(f"style must be one of {sorted(STYLES)}, got {style!r}")
        self.model = model
        self.style = style
        self.family = STYLES[style]
        self.space: Space = model.__dict__.get("_nf_space") or discover(model)
        _check_value_choices(model)
        self.slots: dict[str, ArchSlot] = {}
        self._replaced: list[tuple[torch.nn.Module, str, torch.nn.Module, torch.nn.Module]] = []
        self.installed = False
        self._convert(model)
        self.installed = True
        missing = [label for label in self.space if label not in self.slots]
        if missing:
            self.restore()
            raise UnsupportedOneShotError(
                f"one-shot conversion found no module for label(s) {missing[:6]}; only LayerChoice, InputChoice, "
                f"Repeat and Cell choices can be shared in a supernet"
            )

    # -- slots ------------------------------------------------------------------------------
    def _slot(self, label: str | None, kind: str, n: int, n_chosen: int = 1) -> ArchSlot:
        if label is None:
            raise UnsupportedOneShotError(f"a {kind} choice without a label cannot be converted to a supernet module")
        slot = self.slots.get(label)
        if slot is None:
            slot = ArchSlot(label, kind, self.space[label], n, n_chosen)
            self.slots[label] = slot
        elif slot.n != n or slot.kind != kind:
            raise UnsupportedOneShotError(
                f"label {label!r} ties a {slot.kind} choice of {slot.n} candidates to a {kind} choice of {n}; "
                f"a supernet cannot share one decision between them"
            )
        return slot

    def _layer(self, lc: LayerChoice) -> torch.nn.Module:
        slot = self._slot(lc.label, "layer", len(lc.names))
        for k, (name, op) in enumerate(zip(lc.names, lc.candidates)):  # tied labels: any module's
            slot.param_free[k] = slot.param_free[k] or next(op.parameters(), None) is None
            slot.zero[k] = slot.zero[k] or is_zero_op(name, op)
        for cand in lc.candidates:
            self._convert(cand)
        return self.family.layer(lc, slot)

    def _input(self, ic: InputChoice) -> torch.nn.Module:
        n = ic.n_candidates if self.family.mixes and ic.n_chosen > 1 else len(self.space[str(ic.label)])
        return self.family.input(ic, self._slot(ic.label, "input", n, ic.n_chosen))

    def _repeat(self, rep: Repeat) -> torch.nn.Module:
        slot = self._slot(rep.label, "repeat", len(rep.depth_values))
        for m in rep.children():
            self._convert(m)
        return self.family.repeat(rep, slot)

    def _cell(self, cell: Cell) -> torch.nn.Module:
        edges = {key: self._layer(cast(LayerChoice, lc)) for key, lc in cell.edges.items()}
        inputs = {key: self._input(cast(InputChoice, ic)) for key, ic in cell.input_choices.items()}
        for m in (cell.preprocessor, cell.postprocessor):
            if m is not None:
                self._convert(m)
        return SupernetCell(cell, edges, inputs)

    def _replacement(self, module: ChoiceModule) -> torch.nn.Module:
        if isinstance(module, LayerChoice):
            return self._layer(module)
        if isinstance(module, InputChoice):
            return self._input(module)
        if isinstance(module, Repeat):
            return self._repeat(module)
        if isinstance(module, Cell):
            return self._cell(module)
        raise UnsupportedOneShotError(f"choice {module.label!r} ({type(module).__name__}) has no one-shot counterpart")

    def _convert(self, module: torch.nn.Module) -> None:
        for name, child in list(module._modules.items()):
            if child is None:
                continue
            if isinstance(child, ChoiceModule):
                new = self._replacement(child)
                module._modules[name] = new
                self._replaced.append((module, name, child, new))
            else:
                self._convert(child)

    # -- install / restore ------------------------------------------------------------------
    def restore(self) -> None:
        """Put the original choice modules back (the candidates keep their trained weights)."""
        if not self.installed:
            return
        for parent, name, original, _ in reversed(self._replaced):
            parent._modules[name] = original
        self.installed = False

    def install(self) -> None:
        """Swap the supernet modules in again after :meth:`restore`."""
        if self.installed:
            return
        for parent, name, _, new in self._replaced:
            parent._modules[name] = new
        self.installed = True

    # -- architecture weights -----------------------------------------------------------------
    def init_alphas(self, device: torch.device | str | None = None, scale: float = 1e-3, generator: torch.Generator | None = None) -> list[torch.nn.Parameter]:
        """Give every slot its α (``scale``-sized random logits); returns them in label order."""
        out = []
        for slot in self.slots.values():
            init = torch.randn(slot.n, generator=generator) * scale
            slot.alpha = torch.nn.Parameter(init.to(device) if device is not None else init)
            out.append(slot.alpha)
        return out

    def alphas(self) -> dict[str, torch.Tensor]:
        """Label -> a detached copy of α."""
        return {label: s.alpha.detach().clone() for label, s in self.slots.items() if s.alpha is not None}

    def probabilities(self) -> dict[str, list[float]]:
        """Label -> softmax(α) as a list (what DARTS' mixture currently weighs each candidate by)."""
        return {label: F.softmax(s.alpha.detach(), -1).tolist() for label, s in self.slots.items() if s.alpha is not None}

    def export_from_alphas(self, exclude_zero: bool = False) -> Arch:
        return {label: slot.export_from_alpha(exclude_zero) for label, slot in self.slots.items()}

    def set_arch(self, arch: Mapping[str, Any]) -> None:
        """Sampled modules: make every slot run the candidate ``arch`` chooses (no gates)."""
        self.select(self.indices(arch))

    def indices(self, arch: Mapping[str, Any]) -> list[int]:
        """The candidate index of each slot under ``arch``; labels it leaves out (inactive: unused) take 0."""
        return [slot.categorical.index(arch[label]) if label in arch else 0 for label, slot in self.slots.items()]

    def select(self, indices: Sequence[int]) -> None:
        """Make every slot run exactly its candidate at ``indices`` (in slot order, no gates): one path."""
        for slot, index in zip(self.slots.values(), indices):
            slot.select(index)

    def arch_of_indices(self, indices: Mapping[str, int]) -> Arch:
        return {label: self.slots[label].key(int(indices[label])) for label in self.slots}

    def __iter__(self) -> Iterator[ArchSlot]:
        return iter(self.slots.values())


def _check_value_choices(model: torch.nn.Module) -> None:
    labels: list[str | None] = []
    for m in model.modules():
        init = m.__dict__.get("_nf_init")
        if init is not None:
            labels += [leaf.label for leaf in value_leaves(init) if leaf.label not in labels]
    if labels:
        raise UnsupportedOneShotError(
            f"value choice(s) {labels[:6]} set layer arguments (e.g. widths or kernel sizes); one-shot methods in "
            f"nasforge share weights over LayerChoice / InputChoice / Repeat / Cell only. Write such a choice as a "
            f"LayerChoice of the candidate layers, or search it with a multi-trial strategy"
        )
