"""Every bad-input error of a model space names the label and what would be valid."""

import pytest
import torch

import nasforge
import nasforge.nn as nn
from nasforge.benchmarks.seed_model import Net
from nasforge.errors import InvalidArchError, InvalidSpaceError


def test_empty_candidate_lists_name_the_label():
    with pytest.raises(InvalidSpaceError, match="LayerChoice 'conv'.*empty"):
        nn.LayerChoice([], label="conv")
    with pytest.raises(InvalidSpaceError, match="ValueChoice 'width'.*empty"):
        nn.ValueChoice([], label="width")
    with pytest.raises(InvalidSpaceError, match="Repeat 'depth'.*empty"):
        nn.Repeat(lambda: nn.Identity(), depth=[], label="depth")
    with pytest.raises(InvalidSpaceError, match="Cell 'cell'.*empty"):
        nn.Cell([], num_nodes=2, label="cell")


def test_input_choice_n_chosen_too_large():
    with pytest.raises(InvalidSpaceError, match="InputChoice 'skip'.*n_chosen=3.*n_candidates=2.*1..2"):
        nn.InputChoice(n_candidates=2, n_chosen=3, label="skip")
    with pytest.raises(InvalidSpaceError, match="InputChoice 'skip'.*reduction 'max'"):
        nn.InputChoice(n_candidates=2, reduction="max", label="skip")


def test_duplicate_label_with_different_candidates():
    class Dup(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, nn.ValueChoice([4, 8], label="hidden"))
            self.b = nn.Linear(3, nn.ValueChoice([4, 16], label="hidden"))

    with pytest.raises(InvalidSpaceError, match="'hidden'.*\\[4, 8\\] and \\[4, 16\\]"):
        Dup()


def test_bad_archs_at_freeze_time():
    model = Net()
    good = {"conv1": 0, "conv2": 1, "skipconnect": 0}
    with pytest.raises(InvalidArchError, match="missing.*'conv2'.*\\[0, 1\\]"):
        model.freeze({"conv1": 0, "skipconnect": 0})
    with pytest.raises(InvalidArchError, match="unknown.*'conv4'"):
        model.freeze({**good, "conv4": 0})
    with pytest.raises(InvalidArchError, match="'conv1'.*valid values: \\[0, 1\\]"):
        model.freeze({**good, "conv1": 2})
    with pytest.raises(InvalidArchError, match="missing.*'skipconnect'"):
        with nasforge.fixed_arch({"conv1": 0, "conv2": 1}):
            Net()
    with pytest.raises(InvalidArchError, match="'conv2'.*valid values"):
        with nasforge.fixed_arch({**good, "conv2": 7}):
            Net()


def test_input_choice_called_with_wrong_number_of_inputs():
    model = Net()
    x = torch.randn(1, 16, 4, 4)
    with pytest.raises(InvalidArchError, match="InputChoice 'skipconnect' expects a list of 2 tensors, got 3"):
        model.skipconnect([x, x, x])


def test_layer_choice_rejects_non_modules():
    with pytest.raises(InvalidSpaceError, match="LayerChoice 'op'.*candidate 1 is a int"):
        nn.LayerChoice([nn.ReLU(), 3], label="op")
