"""Ready-made search spaces and tabular benchmarks.

``nasforge.benchmarks.nasbench201``: the NAS-Bench-201 cell space (:class:`NasBench201Space`,
torch), its torch-free arch space (:func:`nasbench201_space`), arch-string conversions and the
results table (:class:`NasBench201Table`, also a tabular evaluator).
``nasforge.benchmarks.seed_model``: NNI's documentation model (:class:`~nasforge.benchmarks.seed_model.Net`,
torch), the reference space of the tests, examples and overhead benchmarks.
"""

from typing import TYPE_CHECKING

from nasforge._lazy import lazy_attributes
from nasforge.benchmarks.nasbench201 import (
    NasBench201Table,
    arch_from_string,
    arch_to_string,
    nasbench201_space,
)

if TYPE_CHECKING:
    from nasforge.benchmarks._nasbench201_model import NasBench201Space

__all__ = [
    "NasBench201Space",
    "NasBench201Table",
    "arch_from_string",
    "arch_to_string",
    "nasbench201_space",
]


# the torch model space, loaded on first use
__getattr__ = lazy_attributes(__name__, {"NasBench201Space": "nasforge.benchmarks._nasbench201_model"})
