"""DARTS on the DARTS cell space (``nasforge.hub.DartsSpace``) with scikit-learn's digits: search,
export the cell as a DARTS genotype, retrain it from scratch, compare with the published DARTS-V2 cell.

    PYTHONPATH=src .venv/bin/python examples/hub_darts.py            # ~10 minutes on a 2-core CPU
    PYTHONPATH=src .venv/bin/python examples/hub_darts.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import torch
from _hub_data import accuracy, digits, oneshot_parser, train

from nasforge.hub import DartsSpace, archs
from nasforge.oneshot import DartsTrainer
from nasforge.profile import count_params


def main(argv: list[str] | None = None) -> dict:
    parser = oneshot_parser("DARTS on DartsSpace (digits)", epochs=4, retrain_epochs=20)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    C, layers, limit = (4, 3, 64) if args.quick else (4, 4, None)
    epochs, retrain = (1, 1) if args.quick else (args.epochs, args.retrain_epochs)
    train_set, test_set = digits(size=8, limit=limit)

    model = DartsSpace(C=C, layers=layers, num_classes=10)
    print(f"DartsSpace(C={C}, layers={layers}): {len(model.space)} labels, {model.space.size:.2e} archs")
    trainer = DartsTrainer(model, None, None, None, epochs, train_set, batch_size=64, exclude_zero=True, seed=0)
    trainer.fit()
    arch = trainer.export()
    genotype = model.arch_to_genotype(arch)
    print("found:", genotype)

    net = model.freeze(arch, reinit=True)
    train(net, train_set, retrain)
    found_acc = accuracy(net, test_set)
    reference = archs.DARTS_V2.build(C=C, layers=layers)
    train(reference, train_set, retrain)
    ref_acc = accuracy(reference, test_set)
    print(f"found cell: {count_params(net):,} parameters, test accuracy {found_acc:.4f}")
    print(f"DARTS-V2 cell at the same size: {count_params(reference):,} parameters, test accuracy {ref_acc:.4f}")
    return {"arch": arch, "genotype": genotype, "test_acc": found_acc, "darts_v2_test_acc": ref_acc}


if __name__ == "__main__":
    main()
