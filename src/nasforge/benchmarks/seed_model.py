"""The seed model: the example network of NNI's documentation, written against ``nasforge.nn``.

The class is NNI's code with only its import line changed (``import nasforge.nn as nn``): the
project's first acceptance test, so keep it verbatim. Two convolution
``LayerChoice``s (3×3 or 5×5 kernels) and one ``InputChoice`` (skip connection or not), for
3×32×32 inputs and 10 classes: a 2×2×2 = 8-architecture space. The tests, examples and
benchmarks use it as the reference space (``benchmarks/space_overhead.py``,
``benchmarks/oneshot_overhead.py``, ``examples/darts_seed_model.py``)::

    from nasforge.benchmarks.seed_model import Net

    model = Net()
    arch = model.space.sample(numpy.random.default_rng(0))
    net = model.freeze(arch)          # a plain torch.nn.Module
"""

import torch.nn.functional as F

import nasforge.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.LayerChoice([nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(3, 6, 5, padding=2)])
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.LayerChoice([nn.Conv2d(6, 16, 3, padding=1), nn.Conv2d(6, 16, 5, padding=2)])
        self.conv3 = nn.Conv2d(16, 16, 1)
        self.skipconnect = nn.InputChoice(n_candidates=2)
        self.bn = nn.BatchNorm2d(16)
        self.gap = nn.AdaptiveAvgPool2d(4)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        bs = x.size(0)
        x = self.pool(F.relu(self.conv1(x)))
        x0 = F.relu(self.conv2(x))
        x1 = F.relu(self.conv3(x0))
        x1 = self.skipconnect([x1, x1 + x0])
        x = self.pool(self.bn(x1))
        x = self.gap(x).view(bs, -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x
