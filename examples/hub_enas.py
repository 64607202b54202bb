"""ENAS on the ENAS macro space (``nasforge.hub.EnasMacroSpace``) with scikit-learn's digits:
an LSTM controller samples layer ops and skip connections of a weight-sharing network.

    PYTHONPATH=src .venv/bin/python examples/hub_enas.py            # minutes on a CPU
    PYTHONPATH=src .venv/bin/python examples/hub_enas.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import json

import torch
from _hub_data import accuracy, digits, oneshot_parser, train

from nasforge.hub import EnasMacroSpace
from nasforge.oneshot import EnasTrainer


def main(argv: list[str] | None = None) -> dict:
    parser = oneshot_parser("ENAS on EnasMacroSpace (digits)", epochs=10, retrain_epochs=20)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    layers, filters, limit = (3, 4, 64) if args.quick else (6, 16, None)
    epochs, retrain = (1, 1) if args.quick else (args.epochs, args.retrain_epochs)
    train_set, test_set = digits(size=8, limit=limit)

    model = EnasMacroSpace(num_layers=layers, out_filters=filters)
    trainer = EnasTrainer(model, None, None, None, None, epochs, train_set, batch_size=64, seed=0)
    trainer.fit()
    arch = trainer.export()
    print("found:", json.dumps(arch))
    net = model.freeze(arch, reinit=True)
    train(net, train_set, retrain)
    acc = accuracy(net, test_set)
    print(f"test accuracy of the retrained arch: {acc:.4f}")
    return {"arch": arch, "test_acc": acc}


if __name__ == "__main__":
    main()
