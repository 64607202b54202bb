"""ProxylessNAS on its MobileNetV2-based space (``nasforge.hub.ProxylessSpace``) with a measured
latency term, on scikit-learn's digits; MobileNetV2-1.0 is a preset of the same space.

    PYTHONPATH=src .venv/bin/python examples/hub_proxyless.py            # minutes on a CPU
    PYTHONPATH=src .venv/bin/python examples/hub_proxyless.py --quick    # seconds (run by the tests)
"""

from __future__ import annotations

import json

import torch
from _hub_data import accuracy, digits, oneshot_parser, train

from nasforge.hub import ProxylessSpace
from nasforge.oneshot import ProxylessTrainer
from nasforge.profile import count_flops, count_params


def main(argv: list[str] | None = None) -> dict:
    parser = oneshot_parser("ProxylessNAS on ProxylessSpace (digits)", epochs=6, retrain_epochs=15)
    parser.add_argument("--latency-weight", type=float, default=0.1)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    width, size, limit = (0.1, 16, 64) if args.quick else (0.35, 32, None)
    epochs, retrain = (1, 1) if args.quick else (args.epochs, args.retrain_epochs)
    train_set, test_set = digits(size=size, limit=limit)

    model = ProxylessSpace(width_mult=width, num_classes=10)
    trainer = ProxylessTrainer(model, None, None, None, epochs, train_set, batch_size=64, seed=0,
                               dummy_input=torch.randn(1, 3, size, size), latency_weight=args.latency_weight)
    trainer.fit()
    arch = trainer.export()
    print("found:", json.dumps(arch))
    net = model.freeze(arch, reinit=True)
    train(net, train_set, retrain)
    acc = accuracy(net, test_set)
    print(f"found net: {count_params(net):,} parameters, test accuracy {acc:.4f}")
    mbv2 = ProxylessSpace.preset("mobilenet_v2")
    print(f"MobileNetV2-1.0 preset: {count_params(mbv2) / 1e6:.2f} M parameters, "
          f"{count_flops(mbv2, (1, 3, 224, 224)) / 2e6:.0f} M multiply-adds at 224×224")
    return {"arch": arch, "test_acc": acc}


if __name__ == "__main__":
    main()
