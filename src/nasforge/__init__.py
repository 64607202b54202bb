"""nasforge: Neural Architecture Search on PyTorch.

``import nasforge`` is light (no torch); heavy parts load on first use.
"""

from __future__ import annotations

import logging

from nasforge._lazy import lazy_attributes
from nasforge.errors import InvalidArchError, InvalidSpaceError, NasforgeError
from nasforge.fixed import fixed_arch, load_arch
from nasforge.space import Categorical, Space
from nasforge.trial import Trial, TrialStatus

__version__ = "0.1.0"

# Library code never prints; users opt in to our log records with logging.basicConfig.
logging.getLogger("nasforge").addHandler(logging.NullHandler())

__all__ = [
    "Categorical",
    "Experiment",
    "InvalidArchError",
    "InvalidSpaceError",
    "NasforgeError",
    "Space",
    "Trial",
    "TrialStatus",
    "fixed_arch",
    "load_arch",
]

__getattr__ = lazy_attributes(__name__, {"Experiment": "nasforge.experiment"})  # a heavy import: on first use
