"""Search spaces as plain data: labelled categorical choices and the product space over them.

This module never imports torch, so strategies, the store and the CLI can use it cheaply.

An *arch* is a plain ``dict[str, value]`` mapping each label to the JSON-friendly *key* of the
chosen candidate, so it round-trips through ``json.dumps`` / ``json.loads``.

A label may be active only under some values of other labels (its *condition*, plain data);
the *canonical* arch of a network leaves the inactive labels out (:meth:`Space.canonical`), so
one network has one arch. ``sample``, ``grid``, ``mutate`` and ``neighbors`` give canonical
archs; ``validate`` accepts the canonical or the full form and returns the canonical one.

Example::

    >>> from nasforge.space import Categorical, Space
    >>> space = Space([Categorical([16, 32, 64], label="width"), Categorical(["relu", "gelu"], label="act")])
    >>> space.size
    6
    >>> arch = space.sample(0)
    >>> space.validate(arch) == arch
    True
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.errors import InvalidArchError, InvalidSpaceError

Arch = dict[str, Any]

__all__ = ["Arch", "Categorical", "Space", "arch_key", "as_rng"]

_JSON_SCALARS = (bool, int, float, str, type(None))


def as_rng(seed_or_rng: int | np.random.Generator | np.random.SeedSequence | None = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a seed sequence, a generator (returned as is) or None."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if seed_or_rng is None or isinstance(seed_or_rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(seed_or_rng)
    raise TypeError(
        f"expected an int seed, a numpy Generator, a SeedSequence or None, got {type(seed_or_rng).__name__}"
    )


def arch_key(arch: Mapping[str, Any]) -> str:
    """The one string key of an arch (sorted-key compact JSON): equal archs, equal keys. Strategies,
    the experiment and one-shot code recognise repeats by it; apply :meth:`Space.canonical` first
    in a conditional space so that one network has one key."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def _canonical(value: Any) -> Any:
    """A hashable form of a key: lists become tuples, recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    """The JSON form of a canonical key: tuples become lists, recursively."""
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _is_json_key(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return not (isinstance(value, float) and not math.isfinite(value))
    if isinstance(value, (list, tuple)):
        return all(_is_json_key(v) for v in value)
    return False


def _short(values: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"


def candidate_signature(candidate: Any) -> Any:
    """A stable description of a candidate: JSON values as they are, callables by qualified name."""
    if _is_json_key(candidate):
        return _jsonable(_canonical(candidate))
    if isinstance(candidate, Mapping):
        return {str(k): candidate_signature(v) for k, v in candidate.items()}
    if isinstance(candidate, (list, tuple)):
        return [candidate_signature(v) for v in candidate]
    qualname = getattr(candidate, "__qualname__", None)
    if qualname is not None:
        return f"{getattr(candidate, '__module__', '')}.{qualname}"
    text = repr(candidate)
    if " at 0x" in text or " object at " in text:
        text = ""
    return f"{type(candidate).__module__}.{type(candidate).__qualname__}{'(' + text + ')' if text else ''}"


class Categorical:
    """A labelled choice among a finite list of candidates.

    ``candidates`` may be any Python objects. The arch stores a JSON-friendly *key* per choice:
    the candidate itself when every candidate is a JSON scalar (number, string, bool, None, or a
    list of them) and they are distinct, otherwise the candidate's index. ``keys`` overrides that
    (e.g. the names of an ordered dict of modules).
    """

    __slots__ = ("label", "candidates", "keys", "_index", "_json_keys", "_signature", "_sigs", "singleton_lists", "values_tie")

    def __init__(
        self,
        candidates: Sequence[Any],
        label: str,
        keys: Sequence[Any] | None = None,
        signature: Callable[[Any], Any] | None = None,
        singleton_lists: bool = False,
        values_tie: bool = False,
    ):
        if not isinstance(label, str) or not label:
            raise InvalidSpaceError(f"a choice needs a non-empty string label, got {label!r}")
        candidates = list(candidates)
        if not candidates:
            raise InvalidSpaceError(f"choice {label!r} has an empty candidate list; give at least one candidate")
        if keys is None:
            canon = [_canonical(c) for c in candidates]
            if all(_is_json_key(c) for c in candidates) and len(set(map(_hashable_repr, canon))) == len(canon):
                keys = canon
            else:
                keys = list(range(len(candidates)))
        else:
            keys = [_canonical(k) for k in keys]
            if len(keys) != len(candidates):
                raise InvalidSpaceError(
                    f"choice {label!r}: {len(keys)} keys given for {len(candidates)} candidates"
                )
            if not all(_is_json_key(k) for k in keys):
                raise InvalidSpaceError(f"choice {label!r}: keys must be JSON scalars, got {_short(keys)}")
        index = {_hashable_repr(k): i for i, k in enumerate(keys)}
        if len(index) != len(keys):
            raise InvalidSpaceError(f"choice {label!r} has duplicate keys {_short(keys)}")
        self.label = label
        self.candidates = candidates
        self.keys = keys
        self._index = index
        self._json_keys = [_jsonable(k) for k in keys]
        self._signature = signature
        self._sigs: list[Any] | None = None
        # InputChoice(n_chosen=1): NNI 3.0 archs write ``[i]`` for ``i``; accept both.
        self.singleton_lists = bool(singleton_lists)
        # Value choices tie only when their candidates are the same values (not just as many).
        self.values_tie = bool(values_tie)

    # -- basic queries -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"Categorical({_short(self._json_keys)}, label={self.label!r})"

    @property
    def values(self) -> list[Any]:
        """The JSON-friendly keys an arch may hold for this choice, in order."""
        return list(self._json_keys)

    @property
    def default(self) -> Any:
        return self._json_keys[0]

    def index(self, key: Any) -> int:
        """Position of ``key`` among the candidates; a clear error when it is not one of them."""
        if self.singleton_lists and isinstance(key, (list, tuple)) and len(key) == 1:
            key = key[0]
        try:
            return self._index[_hashable_repr(_canonical(key))]
        except (KeyError, TypeError):
            raise InvalidArchError(
                f"value {key!r} for label {self.label!r} is not a candidate; valid values: {_short(self._json_keys)}"
            ) from None

    def contains(self, key: Any) -> bool:
        try:
            self.index(key)
        except InvalidArchError:
            return False
        return True

    def key_at(self, i: int) -> Any:
        return self._json_keys[i]

    def resolve(self, key: Any) -> Any:
        """The candidate object that ``key`` stands for."""
        return self.candidates[self.index(key)]

    def sample(self, rng: np.random.Generator) -> Any:
        return self._json_keys[int(rng.integers(len(self._json_keys)))]

    def same_decision_as(self, other: Categorical) -> bool:
        """Whether two choices with the same label can be tied (their keys agree, in order; for
        value choices stored by index, their candidates too)."""
        if [_hashable_repr(k) for k in self.keys] != [_hashable_repr(k) for k in other.keys]:
            return False
        if self.values_tie and other.values_tie and self.candidates is not other.candidates:
            return self.signatures() == other.signatures()
        return True

    def signatures(self) -> list[Any]:
        """A stable, JSON-friendly description of what each candidate *is* (for the fingerprint).

        The keys of JSON candidates are the candidates themselves; other candidates (modules,
        functions, objects) are described by the ``signature`` function given at construction
        (``nasforge.nn`` gives module types, constructor arguments and parameter shapes) or by
        their type and qualified name.
        """
        if self._sigs is None:
            fn = self._signature or candidate_signature
            self._sigs = [fn(c) for c in self.candidates]
        return self._sigs

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "values": self.values}


def _hashable_repr(key: Any) -> Any:
    # 1 and True and 1.0 are equal in Python but distinct candidates here (also inside lists).
    if isinstance(key, (list, tuple)):
        return ("t",) + tuple(_hashable_repr(k) for k in key)
    return (type(key).__name__, key)


def _implies(strong: Conjunction, weak: Conjunction) -> bool:
    """Whether every arch satisfying ``strong`` satisfies ``weak`` (atom-wise key subsets)."""
    atoms = {label: {_hashable_repr(k) for k in keys} for label, keys in strong}
    for label, keys in weak:
        have = atoms.get(label)
        if have is None or not have <= {_hashable_repr(k) for k in keys}:
            return False
    return True


# A condition atom: (label, keys) — "``label``'s value is one of ``keys``" (keys hashable-repr'd).
Atom = tuple[str, tuple[Any, ...]]
Conjunction = tuple[Atom, ...]


class Space(Mapping[str, Categorical]):
    """The product of labelled choices; a mapping ``label -> Categorical`` in a stable order.

    Two choices added under the same label are one decision (tied), provided their candidates
    agree; otherwise :class:`~nasforge.errors.InvalidSpaceError` names the label.

    **Conditions.** A label may be *active* only under some values of other labels (a choice
    inside candidate ``cnn`` of a ``family`` choice; inside block 3 of a ``Repeat``). Its
    condition is plain data: a list of alternatives, each a conjunction of atoms
    ``(label, values)`` meaning "``label`` is one of ``values``"; a label with no condition is
    always active. :meth:`canonical` drops the inactive labels, so an arch stands for exactly
    one network; :meth:`validate` accepts an arch with or without its inactive labels and
    returns the canonical form. Example::

        >>> space = Space([Categorical(["cnn", "mlp"], label="family"), Categorical([3, 5], label="kernel")],
        ...               conditions={"kernel": [[("family", ["cnn"])]]})
        >>> space.canonical({"family": "mlp", "kernel": 5})
        {'family': 'mlp'}
        >>> space.size
        3
    """

    def __init__(
        self,
        choices: Iterable[Categorical] | Mapping[str, Categorical] = (),
        conditions: Mapping[str, Iterable[Iterable[tuple[str, Iterable[Any]]]] | None] | None = None,
    ):
        self._choices: dict[str, Categorical] = {}
        # label -> None (always active) or a list of conjunctions (active when any holds)
        self._conditions: dict[str, list[Conjunction] | None] = {}
        self._cache: dict[str, Any] = {}
        if isinstance(choices, Mapping):
            choices = choices.values()
        for choice in choices:
            cond = None if conditions is None else conditions.get(choice.label)
            if cond is None:
                self.add(choice)
            else:
                for conj in cond:
                    self.add(choice, [(lab, list(keys)) for lab, keys in conj])

    # -- construction --------------------------------------------------------------------
    def add(self, choice: Categorical, when: Iterable[tuple[str, Iterable[Any]]] | None = None) -> Categorical:
        """Add a choice; returns the choice now registered under its label (tied if it existed).

        ``when``: the conjunction of ``(label, values)`` atoms under which this occurrence of the
        choice is active (None: always). A tied label is active when any occurrence is.
        """
        existing = self._choices.get(choice.label)
        if existing is None:
            self._choices[choice.label] = choice
            registered = choice
        elif existing is choice or existing.same_decision_as(choice):
            registered = existing
        else:
            mine, theirs = existing.values, choice.values
            if mine == theirs:  # same keys (indices): show what the candidates are
                mine, theirs = existing.signatures(), choice.signatures()
            raise InvalidSpaceError(
                f"label {choice.label!r} is used by two choices with different candidates: "
                f"{_short(mine)} and {_short(theirs)}; give them distinct labels, "
                f"or the same candidates to tie them into one decision"
            )
        self._add_condition(choice.label, when, first=existing is None)
        self._cache.clear()
        return registered

    def _add_condition(self, label: str, when: Iterable[tuple[str, Iterable[Any]]] | None, first: bool) -> None:
        conj = self._conjunction(when) if when is not None else ()
        if conj is None:  # contradictory: this occurrence is never active
            if first:
                self._conditions[label] = []
            return
        if not conj:
            self._conditions[label] = None
            return
        current = self._conditions.get(label, [] if first else None)
        if current is None and not first:
            return  # already always active
        current = list(current or [])
        if any(_implies(conj, other) for other in current):
            return  # already covered by a weaker alternative
        current = [other for other in current if not _implies(other, conj)]
        current.append(conj)
        self._conditions[label] = current

    def _conjunction(self, atoms: Iterable[tuple[str, Iterable[Any]]]) -> Conjunction | None:
        """Normalise atoms: merge repeated labels, drop atoms allowing every value; None if impossible."""
        merged: dict[str, set[Any]] = {}
        for label, keys in atoms:
            choice = self._choices.get(label)
            if choice is None:
                raise InvalidSpaceError(f"a condition refers to label {label!r}, which is not (yet) in the space")
            reprs = {_hashable_repr(choice.keys[choice.index(k)]) for k in keys}
            merged[label] = merged[label] & reprs if label in merged else reprs
        out = []
        for label, reprs in merged.items():
            if not reprs:
                return None
            choice = self._choices[label]
            if len(reprs) == len(choice):
                continue
            keys = tuple(k for k in choice.keys if _hashable_repr(k) in reprs)  # candidate order
            out.append((label, keys))
        return tuple(out)

    def merged(self, other: Space, what: str = "the other space") -> Space:
        """A new space with this space's choices then ``other``'s (conditions kept); a label in
        both is an error naming it (e.g. an evaluator's hyper-parameter clashing with the model)."""
        clash = [label for label in other if label in self._choices]
        if clash:
            raise InvalidSpaceError(
                f"label(s) {_short(clash)} of {what} are also labels of the model space; give them other labels"
            )
        out = Space()
        for src in (self, other):
            out._choices.update(src._choices)
            out._conditions.update({k: (None if v is None else list(v)) for k, v in src._conditions.items()})
        return out

    # -- Mapping protocol ----------------------------------------------------------------
    def __getitem__(self, label: str) -> Categorical:
        try:
            return self._choices[label]
        except KeyError:
            raise InvalidArchError(
                f"unknown label {label!r}; the space's labels are {_short(self.labels)}"
            ) from None

    def __contains__(self, label: object) -> bool:
        return label in self._choices

    def get(self, label: str, default: Any = None) -> Any:
        return self._choices.get(label, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __len__(self) -> int:
        return len(self._choices)

    def __repr__(self) -> str:
        inner = ", ".join(f"{label}: {len(c)}" for label, c in self._choices.items())
        return f"Space({{{inner}}}, size={self.size})"

    @property
    def labels(self) -> list[str]:
        return list(self._choices)

    # -- conditions ------------------------------------------------------------------------
    @property
    def conditional(self) -> bool:
        """Whether some label is active only under some values of other labels."""
        return any(c is not None for c in self._conditions.values())

    def condition(self, label: str) -> list[list[tuple[str, list[Any]]]] | None:
        """When ``label`` is active: None (always) or a list of alternatives, each a list of
        ``(label, values)`` atoms that must all hold."""
        self[label]
        cond = self._conditions.get(label)
        if cond is None:
            return None
        return [[(lab, [_jsonable(k) for k in keys]) for lab, keys in conj] for conj in cond]

    def _order(self) -> list[str]:
        """Labels ordered so that every label comes after the labels its condition reads."""
        cached = self._cache.get("order")
        if cached is not None:
            return cached
        deps = {
            label: {lab for conj in (cond or []) for lab, _ in conj if lab != label}
            for label, cond in self._conditions.items()
        }
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(label: str, stack: tuple[str, ...]) -> None:
            if state.get(label) == 2:
                return
            if state.get(label) == 1:
                raise InvalidSpaceError(f"labels {list(stack)} make a cycle of conditions (each is active only under the next)")
            state[label] = 1
            for dep in deps.get(label, ()):
                visit(dep, stack + (dep,))
            state[label] = 2
            order.append(label)

        for label in self._choices:
            visit(label, (label,))
        self._cache["order"] = order
        return order

    def _active(self, label: str, arch: Mapping[str, Any], memo: dict[str, bool]) -> bool:
        done = memo.get(label)
        if done is not None:
            return done
        cond = self._conditions.get(label)
        if cond is None:
            memo[label] = True
            return True
        memo[label] = False  # cycle guard (cycles are refused by _order anyway); kept if none holds
        for conj in cond:
            for lab, keys in conj:
                if lab not in arch or not self._active(lab, arch, memo):
                    break
                choice = self._choices[lab]
                try:
                    value = choice.keys[choice.index(arch[lab])]
                except InvalidArchError:
                    break
                if _hashable_repr(value) not in {_hashable_repr(k) for k in keys}:
                    break
            else:  # every atom of this alternative holds
                memo[label] = True
                return True
        return False

    def is_active(self, label: str, arch: Mapping[str, Any]) -> bool:
        """Whether ``label`` matters for ``arch`` (its condition holds under ``arch``'s values)."""
        self[label]
        return self._active(label, arch, {})

    def active_labels(self, arch: Mapping[str, Any]) -> list[str]:
        """The labels that matter for ``arch``, in the space's order."""
        if not self.conditional:
            return self.labels
        memo: dict[str, bool] = {}
        return [label for label in self._choices if self._active(label, arch, memo)]

    def canonical(self, arch: Mapping[str, Any]) -> Arch:
        """The one normal form of ``arch``'s network: inactive labels dropped, labels in the
        space's order, values as JSON keys. Validates like :meth:`validate`."""
        return self.validate(arch)

    # -- sizes ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of distinct networks: canonical archs (the product of the choices' sizes when
        no label is conditional; 1 for an empty space)."""
        if "size" not in self._cache:
            self._cache["size"] = self._count()
        return self._cache["size"]

    @property
    def full_size(self) -> int:
        """Number of full label assignments (the product of every choice's size)."""
        return math.prod(len(c) for c in self._choices.values())

    def _components(self) -> list[list[str]]:
        """Groups of labels whose activity depends only on each other (independent factors)."""
        parent = {label: label for label in self._choices}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for label, cond in self._conditions.items():
            for conj in cond or []:
                for lab, _ in conj:
                    parent[find(lab)] = find(label)
        groups: dict[str, list[str]] = {}
        for label in self._order():
            groups.setdefault(find(label), []).append(label)
        return list(groups.values())

    def _count(self) -> int:
        if not self.conditional:
            return self.full_size
        used = {lab for cond in self._conditions.values() for conj in (cond or []) for lab, _ in conj}
        total = 1
        for group in self._components():  # independent factors multiply
            controlling = [label for label in group if label in used]
            free = [label for label in group if label not in used]
            if not controlling:
                total *= math.prod(len(self._choices[lab]) for lab in free if self._conditions.get(lab) is None) or 1
                continue
            count = 0
            for partial in self._assignments(controlling):
                memo: dict[str, bool] = {}
                count += math.prod(len(self._choices[lab]) for lab in free if self._active(lab, partial, memo))
            total *= count
        return total

    def _assignments(self, labels: list[str]) -> Iterator[dict[str, Any]]:
        """Every assignment of values to the labels of ``labels`` that are active under it
        (``labels`` in condition order); one dict, updated in place between yields."""

        def rec(i: int, partial: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(labels):
                yield partial
                return
            label = labels[i]
            if not self._active(label, partial, {}):
                yield from rec(i + 1, partial)
                return
            for key in self._choices[label].values:
                partial[label] = key
                yield from rec(i + 1, partial)
            del partial[label]

        return rec(0, {})

    # -- archs ---------------------------------------------------------------------------
    def default(self) -> Arch:
        """The arch made of every choice's first candidate (canonical)."""
        return self._canon_unchecked({label: c.default for label, c in self._choices.items()})

    def _canon_unchecked(self, full: Mapping[str, Any]) -> Arch:
        if not self.conditional:
            return dict(full)
        memo: dict[str, bool] = {}
        return {label: full[label] for label in self._choices if self._active(label, full, memo)}

    def sample_full(self, seed_or_rng: int | np.random.Generator | None = None) -> Arch:
        """A value for every label, each uniform and independent (inactive labels included)."""
        rng = as_rng(seed_or_rng)
        return {label: c.sample(rng) for label, c in self._choices.items()}

    def sample(self, seed_or_rng: int | np.random.Generator | None = None) -> Arch:
        """A random canonical arch: every label drawn uniformly, then inactive labels dropped.
        The same seed gives the same arch."""
        return self._canon_unchecked(self.sample_full(seed_or_rng))

    def complete(self, arch: Mapping[str, Any], seed_or_rng: Any = None) -> Arch:
        """``arch`` with every label it lacks drawn at random (a full arch; see :meth:`canonical`)."""
        rng = as_rng(seed_or_rng)
        return {label: arch[label] if label in arch else c.sample(rng) for label, c in self._choices.items()}

    def grid(self) -> Iterator[Arch]:
        """Every canonical arch exactly once, in a stable order (the last label varies fastest)."""
        labels = self.labels
        if not self.conditional:
            keys = [self._choices[label].values for label in labels]
            for combo in itertools.product(*keys):
                yield dict(zip(labels, combo))
            return
        order = self._order()
        position = {label: i for i, label in enumerate(labels)}
        archs = (
            {label: partial[label] for label in sorted(partial, key=position.__getitem__)}
            for partial in self._assignments(order)
        )
        # Enumerate in the space's order when it respects the conditions (the usual case).
        if order == labels:
            yield from archs
            return
        yield from sorted(archs, key=lambda a: [self._choices[lab].index(a[lab]) if lab in a else -1 for lab in labels])

    def validate(self, arch: Mapping[str, Any]) -> Arch:
        """Check an arch against the space and return its canonical JSON form.

        The arch may hold or omit inactive labels (they are dropped). Raises
        :class:`~nasforge.errors.InvalidArchError` naming the missing (active) label, the
        unknown label or the value that is not a candidate, with what would be valid.
        """
        if not isinstance(arch, Mapping):
            raise InvalidArchError(f"an arch must be a dict of label -> value, got {type(arch).__name__}")
        unknown = [label for label in arch if label not in self._choices]
        if unknown:
            raise InvalidArchError(
                f"arch has unknown label(s) {_short(unknown)}; the space's labels are {_short(self.labels)}"
            )
        keys = {label: self._choices[label].key_at(self._choices[label].index(value)) for label, value in arch.items()}
        if not self.conditional:
            missing = [label for label in self._choices if label not in keys]
            if missing:
                first = self._choices[missing[0]]
                raise InvalidArchError(
                    f"arch is missing label(s) {_short(missing)}; e.g. {first.label!r} takes one of {_short(first.values)}"
                )
            return {label: keys[label] for label in self._choices}
        memo: dict[str, bool] = {}
        missing = [label for label in self._order() if label not in keys and self._active(label, keys, memo)]
        if missing:
            missing.sort(key=self.labels.index)
            first = self._choices[missing[0]]
            raise InvalidArchError(
                f"arch is missing label(s) {_short(missing)}; e.g. {first.label!r} takes one of {_short(first.values)} "
                f"(it is active for this arch)"
            )
        return {label: keys[label] for label in self._choices if label in keys and self._active(label, keys, memo)}

    def contains(self, arch: Mapping[str, Any]) -> bool:
        try:
            self.validate(arch)
        except InvalidArchError:
            return False
        return True

    def to_indices(self, arch: Mapping[str, Any]) -> list[int]:
        """The candidate index of each label, in label order (0 for an inactive label the arch omits)."""
        out = []
        for label, c in self._choices.items():
            if label in arch:
                out.append(c.index(arch[label]))
            elif self.conditional and not self.is_active(label, arch):
                out.append(0)
            else:
                raise InvalidArchError(
                    f"arch is missing label {label!r}; it takes one of {_short(c.values)}"
                )
        return out

    def from_indices(self, indices: Sequence[int]) -> Arch:
        """The canonical arch of one candidate index per label (in label order)."""
        if len(indices) != len(self._choices):
            raise InvalidArchError(f"expected {len(self._choices)} indices (one per label), got {len(indices)}")
        return self._canon_unchecked({label: c.key_at(int(i)) for (label, c), i in zip(self._choices.items(), indices)})

    # -- neighbourhoods (used by evolution and local search) ---------------------------
    def mutate(self, arch: Mapping[str, Any], seed_or_rng: Any = None, n: int = 1, prob: float = 0.0) -> Arch:
        """A canonical copy of ``arch`` with ``n`` distinct *active* choices changed to another of
        their values, and (``prob > 0``, evolution's mutation rate) every other active choice changed
        with probability ``prob``; labels that become active are drawn at random."""
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"mutate: prob must be a probability in [0, 1], got {prob!r}")
        rng = as_rng(seed_or_rng)
        mutable = [label for label in self.active_labels(arch) if len(self._choices[label]) > 1]
        if not mutable:
            return self._canon_unchecked(dict(arch)) if not self.conditional else self.validate(arch)
        child = self.complete(arch, rng) if self.conditional else dict(arch)
        n = min(max(int(n), 1), len(mutable))  # integers(k) draws what choice(k, size=1, replace=False) does, 5x faster
        forced = [int(rng.integers(len(mutable)))] if n == 1 else [int(i) for i in rng.choice(len(mutable), size=n, replace=False)]
        # lazily, so each coin flip is drawn right before that label's new value (a stable stream)
        changed = forced if not prob else (i for i in range(len(mutable)) if i in forced or rng.random() < prob)
        for i in changed:
            c = self._choices[mutable[i]]
            child[c.label] = c.key_at((c.index(arch[c.label]) + int(rng.integers(1, len(c)))) % len(c))
        return self._canon_unchecked(child)

    def neighbors(self, arch: Mapping[str, Any]) -> list[Arch]:
        """Every canonical arch that differs from ``arch`` in exactly one active choice, in a
        stable order (labels that become active take their first value)."""
        out = []
        base = {label: arch[label] if label in arch else c.default for label, c in self._choices.items()}
        for label in self.active_labels(arch):
            c = self._choices[label]
            current = c.index(arch[label])
            for i in range(len(c)):
                if i != current:
                    out.append(self._canon_unchecked({**base, label: c.key_at(i)}))
        return out

    # -- numeric encodings ----------------------------------------------------------------
    def encoding_size(self, kind: str = "onehot") -> int:
        self._check_kind(kind)
        if kind == "onehot":
            return sum(len(c) for c in self._choices.values())
        return len(self._choices)

    def encode(self, arch: Mapping[str, Any], kind: str = "onehot") -> np.ndarray:
        """A float vector for learned strategies.

        ``onehot``: one block per label, 1 at the chosen candidate. ``ordinal``: per label the
        candidate's index scaled to [0, 1] (0 for single-candidate choices). An inactive label
        contributes nothing (an all-zero block; ordinal -1), so surrogate models do not learn
        from values that do not change the network.
        """
        self._check_kind(kind)
        active = set(self.active_labels(arch)) if self.conditional else None
        idx = self.to_indices(arch)
        if kind == "onehot":
            vec = np.zeros(self.encoding_size("onehot"), dtype=np.float32)
            offset = 0
            for (label, c), i in zip(self._choices.items(), idx):
                if active is None or label in active:
                    vec[offset + i] = 1.0
                offset += len(c)
            return vec
        return np.array(
            [
                (i / (len(c) - 1) if len(c) > 1 else 0.0) if active is None or label in active else -1.0
                for (label, c), i in zip(self._choices.items(), idx)
            ],
            dtype=np.float32,
        )

    def decode(self, vector: Sequence[float], kind: str = "onehot") -> Arch:
        """Inverse of :meth:`encode` (argmax per one-hot block; nearest index for ordinal)."""
        self._check_kind(kind)
        vec = np.asarray(vector, dtype=np.float64)
        if vec.shape != (self.encoding_size(kind),):
            raise InvalidArchError(f"expected a vector of length {self.encoding_size(kind)} for {kind!r}, got shape {vec.shape}")
        indices = []
        offset = 0
        for c in self._choices.values():
            if kind == "onehot":
                indices.append(int(np.argmax(vec[offset : offset + len(c)])))
            else:
                indices.append(int(round(float(np.clip(vec[offset], 0, 1)) * (len(c) - 1))))
            offset += len(c) if kind == "onehot" else 1
        return self.from_indices(indices)

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in ("onehot", "ordinal"):
            raise ValueError(f"unknown encoding {kind!r}; valid: 'onehot', 'ordinal'")

    # -- identity ---------------------------------------------------------------------------
    def describe(self) -> list[dict[str, Any]]:
        """A plain-data (JSON) description: per label its values and, for a conditional label,
        ``"when"``: the alternatives under which it is active, each a list of
        ``{"label": ..., "in": [...]}``. :meth:`from_description` rebuilds the space from it."""
        out = []
        for label, c in self._choices.items():
            entry = c.describe()
            if c.singleton_lists:
                entry["singleton_lists"] = True
            cond = self._conditions.get(label)
            if cond is not None:
                entry["when"] = [[{"label": lab, "in": [_jsonable(k) for k in keys]} for lab, keys in conj] for conj in cond]
            out.append(entry)
        return out

    @classmethod
    def from_description(cls, description: Sequence[Mapping[str, Any]]) -> Space:
        """The space of :meth:`describe`'s output (e.g. ``config["space"]`` of a stored experiment),
        without the model code: candidates are the values, conditions are kept, so
        ``Space.from_description(cfg["space"]).canonical(arch)`` works anywhere."""
        if not isinstance(description, Sequence) or isinstance(description, (str, bytes)):
            raise InvalidSpaceError(f"a space description is a list of {{'label', 'values'}} entries, got {type(description).__name__}")
        space = cls()
        pending: list[tuple[Categorical, list[list[tuple[str, list[Any]]]]]] = []
        for i, entry in enumerate(description):
            if not isinstance(entry, Mapping) or "label" not in entry or "values" not in entry:
                raise InvalidSpaceError(f"space description entry {i} must be a dict with 'label' and 'values', got {entry!r}")
            cat = Categorical(entry["values"], entry["label"], keys=entry["values"], singleton_lists=bool(entry.get("singleton_lists")))
            when = entry.get("when")
            space._choices[cat.label] = cat
            space._conditions[cat.label] = None if when is None else []
            if when is not None:
                pending.append((cat, [[(a["label"], list(a["in"])) for a in conj] for conj in when]))
        for cat, when in pending:
            for conj in when:
                space._add_condition(cat.label, conj, first=False)
        space._cache.clear()
        return space

    def fingerprint(self, candidates: bool = True) -> str:
        """A short stable hash of :meth:`describe` and of what the candidates are (module types,
        constructor arguments and parameter shapes; values); equal spaces have equal fingerprints.

        ``candidates=False`` hashes the decisions only (labels, keys, conditions): what a
        strategy's state depends on."""
        data = self.describe()
        if candidates:
            data = [
                {**entry, "candidates": c.signatures()} if c.signatures() != entry["values"] else entry
                for entry, c in zip(data, self._choices.values())
            ]
        text = json.dumps(data, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
