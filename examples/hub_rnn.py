"""The ENAS / DARTS recurrent cell (``nasforge.hub.RnnCellSpace``) on MNIST-1D read as a sequence
of 40 values: ENAS searches the cell, the exported cell is printed as a DARTS genotype and retrained.

    PYTHONPATH=src .venv/bin/python examples/hub_rnn.py            # minutes on a CPU
    PYTHONPATH=src .venv/bin/python examples/hub_rnn.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import torch
from _hub_data import accuracy, mnist1d, oneshot_parser, train

from nasforge.hub import RnnCellSpace
from nasforge.oneshot import EnasTrainer


def main(argv: list[str] | None = None) -> dict:
    parser = oneshot_parser("ENAS on RnnCellSpace (MNIST-1D)", epochs=10, retrain_epochs=30)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    hidden, nodes, limit = (8, 3, 64) if args.quick else (48, 8, None)
    epochs, retrain = (1, 1) if args.quick else (args.epochs, args.retrain_epochs)
    train_set, test_set = mnist1d(limit=limit)

    model = RnnCellSpace(input_size=1, hidden_size=hidden, num_nodes=nodes, num_classes=10)
    trainer = EnasTrainer(model, None, None, None, None, epochs, train_set, batch_size=64, seed=0)
    trainer.fit()
    arch = trainer.export()
    genotype = model.arch_to_genotype(arch)
    print("found:", genotype)
    net = model.freeze(arch, reinit=True)
    train(net, train_set, retrain)
    acc = accuracy(net, test_set)
    print(f"test accuracy of the retrained cell: {acc:.4f}")
    return {"arch": arch, "genotype": genotype, "test_acc": acc}


if __name__ == "__main__":
    main()
