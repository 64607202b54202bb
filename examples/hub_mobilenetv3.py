"""SPOS on the MobileNetV3 space (``nasforge.hub.MobileNetV3Space``: kernel, expansion,
squeeze-excite, activation and depth per block) with scikit-learn's digits; the published
MobileNetV3-Large/Small are presets of the same space.

    PYTHONPATH=src .venv/bin/python examples/hub_mobilenetv3.py            # ~11 minutes on a busy 2-core CPU
    PYTHONPATH=src .venv/bin/python examples/hub_mobilenetv3.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import json

import torch
from _hub_data import accuracy, digits, oneshot_parser, train

from nasforge.hub import MobileNetV3Space
from nasforge.oneshot import RandomOneShotTrainer
from nasforge.profile import count_flops, count_params


def main(argv: list[str] | None = None) -> dict:
    parser = oneshot_parser("SPOS on MobileNetV3Space (digits)", epochs=6, retrain_epochs=15)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    width, size, limit = (0.1, 16, 64) if args.quick else (0.35, 32, None)
    epochs, retrain = (1, 1) if args.quick else (args.epochs, args.retrain_epochs)
    search = dict(search_samples=2, population_size=2, calib_batches=1, eval_batches=1) if args.quick else {}
    train_set, test_set = digits(size=size, limit=limit)

    model = MobileNetV3Space(width_mult=width, num_classes=10)
    trainer = RandomOneShotTrainer(model, None, None, None, epochs, train_set, batch_size=64, seed=0, **search)
    trainer.fit()
    arch = trainer.export()
    print("found:", json.dumps(arch))
    net = model.freeze(arch, reinit=True)
    train(net, train_set, retrain)
    acc = accuracy(net, test_set)
    print(f"found net: {count_params(net):,} parameters, test accuracy {acc:.4f}")
    for name in MobileNetV3Space.presets():
        ref = MobileNetV3Space.preset(name)
        print(f"MobileNetV3-{name.title()} 1.0 preset: {count_params(ref) / 1e6:.2f} M parameters, "
              f"{count_flops(ref, (1, 3, 224, 224)) / 2e6:.0f} M multiply-adds at 224×224")
    return {"arch": arch, "test_acc": acc}


if __name__ == "__main__":
    main()
