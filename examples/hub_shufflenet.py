"""SPOS on its ShuffleNetV2 space (``nasforge.hub.ShuffleNetSpace``): uniform single-path training,
then evolution over sub-networks with batch-norm recalibration, on scikit-learn's digits.

    PYTHONPATH=src .venv/bin/python examples/hub_shufflenet.py            # minutes on a CPU
    PYTHONPATH=src .venv/bin/python examples/hub_shufflenet.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import json

import torch
from _hub_data import accuracy, digits, oneshot_parser, train

from nasforge.hub import ShuffleNetSpace
from nasforge.oneshot import RandomOneShotTrainer
from nasforge.profile import count_params


def main(argv: list[str] | None = None) -> dict:
    parser = oneshot_parser("SPOS on ShuffleNetSpace (digits)", epochs=8, retrain_epochs=15)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    size, limit = (16, 64) if args.quick else (32, None)
    repeats = (1, 1, 1, 1) if args.quick else (2, 2, 4, 2)
    epochs, retrain = (1, 1) if args.quick else (args.epochs, args.retrain_epochs)
    search = dict(search_samples=2, population_size=2, calib_batches=1, eval_batches=1) if args.quick else {}
    train_set, test_set = digits(size=size, limit=limit)

    model = ShuffleNetSpace(stage_repeats=repeats, num_classes=10)
    trainer = RandomOneShotTrainer(model, None, None, None, epochs, train_set, batch_size=64, seed=0, **search)
    trainer.fit()
    arch = trainer.export()
    print("found:", json.dumps(arch))
    print("best sub-networks (accuracy with inherited weights):",
          [round(score, 3) for _, score in sorted(trainer.search_history, key=lambda t: -t[1])[:5]])
    net = model.freeze(arch, reinit=True)
    train(net, train_set, retrain)
    acc = accuracy(net, test_set)
    print(f"found net: {count_params(net):,} parameters, test accuracy {acc:.4f}")
    return {"arch": arch, "test_acc": acc}


if __name__ == "__main__":
    main()
