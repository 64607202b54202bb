"""Search spaces as plain data: labelled categorical choices and the product space over them.

This module never imports torch, so strategies, the store and the CLI can use it cheaply.

An *arch* is a plain ``dict[str, value]`` mapping each label to the JSON-friendly *key* of the
chosen candidate, so it round-trips through ``json.dumps`` / ``json.loads``.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.errors import InvalidArchError, InvalidSpaceError

Arch = dict[str, Any]

__all__ = ["Arch", "Categorical", "Space", "as_rng"]

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


class Categorical:
    """A labelled choice among a finite list of candidates.

    ``candidates`` may be any Python objects. The arch stores a JSON-friendly *key* per choice:
    the candidate itself when every candidate is a JSON scalar (number, string, bool, None, or a
    list of them) and they are distinct, otherwise the candidate's index. ``keys`` overrides that
    (e.g. the names of an ordered dict of modules).
    """

    __slots__ = ("label", "candidates", "keys", "_index", "_json_keys")

    def __init__(self, candidates: Sequence[Any], label: str, keys: Sequence[Any] | None = None):
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
        try:
            return self._index[_hashable_repr(_canonical(key))]
        except (KeyError, TypeError):
            raise InvalidArchError(
                f"value {key!r} for label {self.label!r} is not a candidate; valid values: {_short(self._json_keys)}"
            ) from None

    def contains(self, key: Any) -> bool:
        try:
            return _hashable_repr(_canonical(key)) in self._index
        except TypeError:
            return False

    def key_at(self, i: int) -> Any:
        return self._json_keys[i]

    def resolve(self, key: Any) -> Any:
        """The candidate object that ``key`` stands for."""
        return self.candidates[self.index(key)]

    def sample(self, rng: np.random.Generator) -> Any:
        return self._json_keys[int(rng.integers(len(self._json_keys)))]

    def same_decision_as(self, other: Categorical) -> bool:
        """Whether two choices with the same label can be tied (their keys agree, in order)."""
        return [_hashable_repr(k) for k in self.keys] == [_hashable_repr(k) for k in other.keys]

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "values": self.values}


def _hashable_repr(key: Any) -> Any:
    # 1 and True and 1.0 are equal in Python but distinct candidates here.
    if isinstance(key, tuple):
        return ("t",) + tuple(_hashable_repr(k) for k in key)
    return (type(key).__name__, key)


class Space(Mapping[str, Categorical]):
    """The product of labelled choices; a mapping ``label -> Categorical`` in a stable order.

    Two choices added under the same label are one decision (tied), provided their candidates
    agree; otherwise :class:`~nasforge.errors.InvalidSpaceError` names the label.
    """

    def __init__(self, choices: Iterable[Categorical] | Mapping[str, Categorical] = ()):
        self._choices: dict[str, Categorical] = {}
        if isinstance(choices, Mapping):
            choices = choices.values()
        for choice in choices:
            self.add(choice)

    # -- construction --------------------------------------------------------------------
    def add(self, choice: Categorical) -> Categorical:
        """Add a choice; returns the choice now registered under its label (tied if it existed)."""
        existing = self._choices.get(choice.label)
        if existing is None:
            self._choices[choice.label] = choice
            return choice
        if existing is choice or existing.same_decision_as(choice):
            return existing
        raise InvalidSpaceError(
            f"label {choice.label!r} is used by two choices with different candidates: "
            f"{_short(existing.values)} and {_short(choice.values)}; give them distinct labels, "
            f"or the same candidates to tie them into one decision"
        )

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

    @property
    def size(self) -> int:
        """Number of distinct archs (the product of the choices' sizes; 1 for an empty space)."""
        return math.prod(len(c) for c in self._choices.values())

    # -- archs ---------------------------------------------------------------------------
    def default(self) -> Arch:
        """The arch made of every choice's first candidate."""
        return {label: c.default for label, c in self._choices.items()}

    def sample(self, seed_or_rng: int | np.random.Generator | None = None) -> Arch:
        """A uniformly random arch; the same seed gives the same arch."""
        rng = as_rng(seed_or_rng)
        return {label: c.sample(rng) for label, c in self._choices.items()}

    def grid(self) -> Iterator[Arch]:
        """Every arch exactly once, in a stable order (the last label varies fastest)."""
        labels = self.labels
        keys = [self._choices[label].values for label in labels]
        for combo in itertools.product(*keys):
            yield dict(zip(labels, combo))

    def validate(self, arch: Mapping[str, Any]) -> Arch:
        """Check an arch against the space and return it in canonical JSON form.

        Raises :class:`~nasforge.errors.InvalidArchError` naming the missing label, the unknown
        label or the value that is not a candidate, with what would be valid.
        """
        if not isinstance(arch, Mapping):
            raise InvalidArchError(f"an arch must be a dict of label -> value, got {type(arch).__name__}")
        missing = [label for label in self._choices if label not in arch]
        if missing:
            first = self._choices[missing[0]]
            raise InvalidArchError(
                f"arch is missing label(s) {_short(missing)}; e.g. {first.label!r} takes one of {_short(first.values)}"
            )
        unknown = [label for label in arch if label not in self._choices]
        if unknown:
            raise InvalidArchError(
                f"arch has unknown label(s) {_short(unknown)}; the space's labels are {_short(self.labels)}"
            )
        return {label: c.key_at(c.index(arch[label])) for label, c in self._choices.items()}

    def contains(self, arch: Mapping[str, Any]) -> bool:
        try:
            self.validate(arch)
        except InvalidArchError:
            return False
        return True

    def to_indices(self, arch: Mapping[str, Any]) -> list[int]:
        """The candidate index of each label, in label order."""
        return [c.index(arch[label]) if label in arch else self._missing(label) for label, c in self._choices.items()]

    def from_indices(self, indices: Sequence[int]) -> Arch:
        if len(indices) != len(self._choices):
            raise InvalidArchError(f"expected {len(self._choices)} indices (one per label), got {len(indices)}")
        return {label: c.key_at(int(i)) for (label, c), i in zip(self._choices.items(), indices)}

    def _missing(self, label: str) -> int:
        raise InvalidArchError(f"arch is missing label {label!r}; it takes one of {_short(self._choices[label].values)}")

    # -- neighbourhoods (used by evolution and local search) ---------------------------
    def mutate(self, arch: Mapping[str, Any], seed_or_rng: Any = None, n: int = 1) -> Arch:
        """A copy of ``arch`` with ``n`` distinct choices changed to another of their values."""
        rng = as_rng(seed_or_rng)
        mutable = [label for label, c in self._choices.items() if len(c) > 1]
        child = dict(arch)
        if not mutable:
            return child
        n = min(max(int(n), 1), len(mutable))
        for pos in rng.choice(len(mutable), size=n, replace=False):
            c = self._choices[mutable[int(pos)]]
            current = c.index(arch[c.label])
            offset = int(rng.integers(1, len(c)))
            child[c.label] = c.key_at((current + offset) % len(c))
        return child

    def neighbors(self, arch: Mapping[str, Any]) -> list[Arch]:
        """Every arch that differs from ``arch`` in exactly one choice, in a stable order."""
        out = []
        for label, c in self._choices.items():
            current = c.index(arch[label])
            for i in range(len(c)):
                if i != current:
                    nb = dict(arch)
                    nb[label] = c.key_at(i)
                    out.append(nb)
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
        candidate's index scaled to [0, 1] (0 for single-candidate choices).
        """
        self._check_kind(kind)
        idx = self.to_indices(arch)
        if kind == "onehot":
            vec = np.zeros(self.encoding_size("onehot"), dtype=np.float32)
            offset = 0
            for c, i in zip(self._choices.values(), idx):
                vec[offset + i] = 1.0
                offset += len(c)
            return vec
        return np.array(
            [i / (len(c) - 1) if len(c) > 1 else 0.0 for c, i in zip(self._choices.values(), idx)],
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
                offset += len(c)
            else:
                indices.append(int(round(float(np.clip(vec[offset], 0, 1)) * (len(c) - 1))))
                offset += 1
        return self.from_indices(indices)

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in ("onehot", "ordinal"):
            raise ValueError(f"unknown encoding {kind!r}; valid: 'onehot', 'ordinal'")

    # -- identity ---------------------------------------------------------------------------
    def describe(self) -> list[dict[str, Any]]:
        """A JSON description (labels and their values) used to recognise the same space."""
        return [c.describe() for c in self._choices.values()]

    def fingerprint(self) -> str:
        """A short stable hash of :meth:`describe`; equal spaces have equal fingerprints."""
        text = json.dumps(self.describe(), sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
