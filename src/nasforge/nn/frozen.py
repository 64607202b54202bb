"""The small plain modules a frozen network may contain in place of a choice.

They hold fixed indices only: no label, no space, no per-call decision.
"""

from __future__ import annotations

import torch

__all__ = ["ChosenInputs", "FrozenCell", "merge_cell_output", "reduce_tensors"]


def reduce_tensors(tensors: list[torch.Tensor], reduction: str, dim: int = 1):
    if reduction == "none":
        return tensors
    if len(tensors) == 1:
        return tensors[0]
    if reduction == "sum":
        return sum(tensors[1:], tensors[0])
    if reduction == "mean":
        return torch.stack(tensors).mean(0)
    if reduction == "concat":
        return torch.cat(tensors, dim=dim)
    raise ValueError(f"unknown reduction {reduction!r}; valid: 'sum', 'mean', 'concat', 'none'")


def merge_cell_output(states, output_nodes, concat_dim, postprocessor, original):
    """Concatenate the cell's output states (one is returned as is), then post-process."""
    picked = [states[n] for n in output_nodes]
    output = picked[0] if len(picked) == 1 else torch.cat(picked, dim=concat_dim)
    if postprocessor is not None:
        output = postprocessor(output, original)
    return output


class ChosenInputs(torch.nn.Module):
    """What an ``InputChoice`` freezes into: picks fixed positions of the input list."""

    def __init__(self, chosen: int | list[int], reduction: str = "sum"):
        super().__init__()
        self.chosen = chosen
        self.reduction = reduction

    def forward(self, inputs: list[torch.Tensor]):
        if isinstance(self.chosen, int):
            picked = inputs[self.chosen]
            return [picked] if self.reduction == "none" else picked
        return reduce_tensors([inputs[i] for i in self.chosen], self.reduction)

    def extra_repr(self) -> str:
        return f"chosen={self.chosen}, reduction={self.reduction!r}"


class FrozenCell(torch.nn.Module):
    """What a ``Cell`` freezes into: a fixed DAG.

    ``ops[n]`` holds the ops of node ``n`` (in node order), ``inputs[n]`` the index (into the list
    of predecessors followed by earlier nodes) each op reads; the node sums its ops' outputs.
    ``output_nodes`` are the node indices merged (concatenated) into the cell's output.
    """

    def __init__(
        self,
        ops: list[list[torch.nn.Module]],
        inputs: list[list[int]],
        num_predecessors: int,
        output_nodes: list[int],
        concat_dim: int = 1,
        preprocessor: torch.nn.Module | None = None,
        postprocessor: torch.nn.Module | None = None,
    ):
        super().__init__()
        self.ops = torch.nn.ModuleList(torch.nn.ModuleList(node_ops) for node_ops in ops)
        self.inputs = [list(i) for i in inputs]
        self.num_predecessors = num_predecessors
        self.output_nodes = list(output_nodes)
        self.concat_dim = concat_dim
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor

    def forward(self, *inputs):
        if len(inputs) == 1 and not isinstance(inputs[0], torch.Tensor):
            inputs = inputs[0]  # a list of the predecessors' outputs
        states = list(inputs)
        original = states
        if self.preprocessor is not None:
            states = list(self.preprocessor(states))
        for node_ops, node_inputs in zip(self.ops, self.inputs):
            out = None
            for op, i in zip(node_ops, node_inputs):
                y = op(states[i])
                out = y if out is None else out + y
            states.append(out)
        return merge_cell_output(states, self.output_nodes, self.concat_dim, self.postprocessor, original)
