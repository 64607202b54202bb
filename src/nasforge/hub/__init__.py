"""Ready-made search spaces from the NAS literature, written with the public ``nasforge.nn`` choices.

=====================  ==========================================================  ==========================
space                  paper                                                       one-shot trainers
=====================  ==========================================================  ==========================
``DartsSpace``         DARTS cells (Liu et al., ICLR 2019); genotypes               DARTS, GDAS, SPOS, ENAS
``EnasMacroSpace``     ENAS macro space (Pham et al., ICML 2018)                    ENAS (and the others)
``RnnCellSpace``       ENAS / DARTS recurrent cell, with a sequence-model wrapper   ENAS, DARTS
``ProxylessSpace``     ProxylessNAS (Cai et al., ICLR 2019), MobileNetV2 backbone   ProxylessNAS, SPOS
``MobileNetV3Space``   MobileNetV3 (Howard et al., ICCV 2019)                       ProxylessNAS, SPOS
``ShuffleNetSpace``    SPOS (Guo et al., ECCV 2020)                                 SPOS, ProxylessNAS
``NasBench101Space``   NAS-Bench-101 (Ying et al., ICML 2019)                       multi-trial only
``AutoActivation``     searchable activation (Ramachandran et al., 2017; NNI)       all
``NasBench201Space``   NAS-Bench-201 (Dong & Yang, ICLR 2020), with its table       all
=====================  ==========================================================  ==========================

NAS-Bench-201 lives in :mod:`nasforge.benchmarks.nasbench201` with its table and is re-exported
here (``hub.NasBench201Space``); ``SPACES`` lists the hub's own spaces. Every
space's constructor defaults are CPU-sized; the papers' settings are arguments (see each
docstring) and the published networks are named archs in :mod:`nasforge.hub.archs`
(``MobileNetV3Space.preset("large")``, ``archs.DARTS_V2.build()``, …). Standard operations are in
:mod:`nasforge.ops`.
"""

from __future__ import annotations

from nasforge.benchmarks.nasbench201 import NasBench201Space
from nasforge.hub import archs
from nasforge.hub.archs import PublishedArch
from nasforge.hub.autoactivation import AutoActivation
from nasforge.hub.darts import DARTS_OPS, DartsSpace, Genotype, arch_to_genotype, genotype_to_arch
from nasforge.hub.enas import ENAS_MACRO_OPS, EnasMacroSpace
from nasforge.hub.mobilenet import (
          LARGE_STAGES,
          PROXYLESS_STAGES,
          SMALL_STAGES,
          MobileNetV3Space,
          ProxylessSpace,
)
from nasforge.hub.nasbench101 import NB101_OPS, NasBench101Space
from nasforge.hub.rnn import RnnCell, RnnCellSpace, RnnGenotype
from nasforge.hub.shufflenet import SHUFFLENET_OPS, ShuffleNetSpace

#: Every hub space class.
SPACES = (DartsSpace, EnasMacroSpace, RnnCellSpace, ProxylessSpace, MobileNetV3Space, ShuffleNetSpace,
          NasBench101Space, AutoActivation)

__all__ = [
    "AutoActivation",
    "DARTS_OPS",
    "DartsSpace",
    "ENAS_MACRO_OPS",
    "EnasMacroSpace",
    "Genotype",
    "LARGE_STAGES",
    "MobileNetV3Space",
    "NB101_OPS",
    "NasBench101Space",
    "NasBench201Space",
    "PROXYLESS_STAGES",
    "ProxylessSpace",
    "PublishedArch",
    "RnnCell",
    "RnnCellSpace",
    "RnnGenotype",
    "SHUFFLENET_OPS",
    "SMALL_STAGES",
    "SPACES",
    "ShuffleNetSpace",
    "arch_to_genotype",
    "archs",
    "genotype_to_arch",
]
