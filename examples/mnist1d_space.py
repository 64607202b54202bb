"""A 1-D model space for MNIST-1D: convolutional, recurrent and fully connected families.

Used by ``examples/main_job.py``. Inputs are ``(batch, 1, 40)`` signals, outputs 10 logits.

Choices (labels):

* ``family`` — ``cnn`` | ``rnn`` | ``mlp``;
* CNN: ``width`` (channels), ``stem_kernel``, ``downsample`` (none / max / avg pooling after
  the stem), ``depth`` (residual-able blocks, via ``Repeat``), ``kernel`` (block kernel size),
  ``norm`` (batch norm or none), ``skip`` (residual connection or none), ``act``, ``pool``
  (global average / max pooling);
* RNN: ``rnn_cell`` (GRU / LSTM), ``rnn_hidden``;
* MLP: ``mlp_width``, ``mlp_depth``.

The labels of the families not chosen are *inactive*: ``model.space.canonical(arch)`` drops
them, so the space holds 3,903 distinct networks (3,888 CNNs, 6 RNNs, 9 MLPs) rather than the
629,856 assignments of every label, and a search never trains one network twice.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

import nasforge.nn as nn


class Zero(nn.Module):
    """The 'no residual connection' branch: contributes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(())


class GlobalMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=-1)


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


def norm_choice(width) -> nn.LayerChoice:
    return nn.LayerChoice(OrderedDict(bn=nn.BatchNorm1d(width), none=nn.Identity()), label="norm")


def act_choice() -> nn.LayerChoice:
    return nn.LayerChoice(OrderedDict(relu=nn.ReLU(), gelu=nn.GELU()), label="act")


class ConvBlock(nn.Module):
    """conv-norm-act-conv-norm, plus an optional identity skip, then act."""

    def __init__(self, width, kernel):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(width, width, kernel, padding=kernel // 2),
            norm_choice(width),
            act_choice(),
            nn.Conv1d(width, width, kernel, padding=kernel // 2),
            norm_choice(width),
        )
        self.skip = nn.LayerChoice(OrderedDict(identity=nn.Identity(), none=Zero()), label="skip")
        self.act = act_choice()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        width = nn.ValueChoice([32, 48, 64], label="width")
        stem_kernel = nn.ValueChoice([3, 5, 7], label="stem_kernel")
        kernel = nn.ValueChoice([3, 5, 7], label="kernel")
        self.stem = nn.Sequential(
            nn.Conv1d(1, width, stem_kernel, padding=stem_kernel // 2), norm_choice(width), act_choice()
        )
        self.down = nn.LayerChoice(
            OrderedDict(none=nn.Identity(), max=nn.MaxPool1d(2), avg=nn.AvgPool1d(2)), label="downsample"
        )
        self.blocks = nn.Repeat(lambda i: ConvBlock(width, kernel), depth=(1, 3), label="depth")
        self.pool = nn.LayerChoice(OrderedDict(avg=GlobalAvgPool(), max=GlobalMaxPool()), label="pool")
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.blocks(self.down(self.stem(x)))))


class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        hidden = nn.ValueChoice([32, 64, 128], label="rnn_hidden")
        self.cell = nn.LayerChoice(
            OrderedDict(gru=nn.GRU(1, hidden, batch_first=True), lstm=nn.LSTM(1, hidden, batch_first=True)),
            label="rnn_cell",
        )
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.cell(x.transpose(1, 2))  # (batch, 40, 1)
        return self.head(out[:, -1])


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        width = nn.ValueChoice([128, 256, 512], label="mlp_width")
        self.inp = nn.Sequential(nn.Flatten(), nn.Linear(40, width), nn.ReLU())
        self.hidden = nn.Repeat(lambda i: nn.Sequential(nn.Linear(width, width), nn.ReLU()), depth=(0, 2), label="mlp_depth")
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(self.inp(x)))


class Mnist1dSpace(nn.ModelSpace):
    """CNN / GRU-LSTM / MLP families for ``(batch, 1, 40)`` MNIST-1D signals."""

    def __init__(self):
        super().__init__()
        self.net = nn.LayerChoice(OrderedDict(cnn=CNN(), rnn=RNN(), mlp=MLP()), label="family")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
