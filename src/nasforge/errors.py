"""Exceptions raised by nasforge.

Every user mistake raises a subclass of :class:`NasforgeError` that is also a
``ValueError`` or ``TypeError``, so ``except ValueError`` keeps working, and whose message
names the offending label or value and what would have been valid.
"""

from __future__ import annotations


class NasforgeError(Exception):
    """Base class of every error nasforge raises on purpose."""


class InvalidSpaceError(NasforgeError, ValueError):
    """A model space or choice definition is wrong (empty candidates, conflicting labels…)."""


class InvalidArchError(NasforgeError, ValueError):
    """An architecture dict does not fit its space (missing / unknown label, bad value)."""


class ChoiceUsageError(NasforgeError, TypeError):
    """A choice was used in a way it cannot be (e.g. a value choice used as a plain int)."""


class FrozenModelError(NasforgeError, AttributeError):
    """A frozen network was asked for something only a model space has (its ``space``)."""
