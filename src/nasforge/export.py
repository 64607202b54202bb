"""Deployable exports of a frozen network: ONNX and TorchScript, checked by re-loading.

A frozen network (``model.freeze(arch)``, ``fixed_arch``, a one-shot trainer's export frozen)
has no choice left in it; these functions write it to a file that runs **without nasforge**
(onnxruntime or ``torch.jit.load`` alone) and, by default, re-load that file and compare its
outputs with PyTorch's on the example input (and on a batch of a different size when the batch
dimension is dynamic)::

    from nasforge.export import to_onnx, to_torchscript

    net = model.freeze(arch)
    to_onnx(net, torch.randn(1, 3, 32, 32), "net.onnx")          # onnxruntime within 1e-4
    to_torchscript(net, torch.randn(1, 3, 32, 32), "net.pt")     # torch.jit.load(...) needs no nasforge

ONNX needs the ``export`` extra (``pip install nasforge[export]``: onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from nasforge.errors import NasforgeError

__all__ = ["ExportCheckError", "ExportError", "build_network", "check_frozen", "load_model_space", "to_onnx", "to_torchscript"]


class ExportCheckError(AssertionError):
    """The re-loaded export does not reproduce PyTorch's output within the tolerance."""


class ExportError(NasforgeError, ValueError):
    """What to export cannot be built as asked (model spec, weights, input shape)."""


def check_frozen(net: torch.nn.Module) -> None:
    """Raise ``ValueError`` if ``net`` still contains a choice (it must be frozen before export)."""
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module (a frozen network), got {type(net).__name__}")
    from nasforge.nn.choices import ChoiceModule

    left = [(name or type(m).__name__, getattr(m, "label", "?")) for name, m in net.named_modules() if isinstance(m, ChoiceModule)]
    if left:
        raise ValueError(
            f"the network still contains choice module(s) {left[:4]} (module path, label); export a frozen network: "
            f"net = model.freeze(arch)"
        )


def _as_tuple(example_input: Any) -> tuple[Any, ...]:
    if isinstance(example_input, torch.Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in example_input) and example_input:
        return tuple(example_input)
    raise TypeError(f"example_input must be a tensor or a tuple of tensors, got {type(example_input).__name__}")


def _outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _outputs(o)]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _outputs(out[k])]
    raise TypeError(f"the network's output must be tensors (or tuples / dicts of them), got {type(out).__name__}")


def _other_batch(inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Inputs with a different batch size (rows repeated, perturbed), to check a dynamic batch dimension."""
    g = torch.Generator().manual_seed(0)
    out = []
    for t in inputs:
        if t.dim() == 0:
            out.append(t)
            continue
        bigger = torch.cat([t, t[:1]], 0)
        if bigger.is_floating_point():
            bigger = bigger + 0.01 * torch.randn(bigger.shape, generator=g, dtype=bigger.dtype).to(bigger.device)
        out.append(bigger)
    return tuple(out)


def _compare(name: str, expected: list[torch.Tensor], got: Sequence[Any], atol: float, rtol: float) -> None:
    if len(expected) != len(got):
        raise ExportCheckError(f"{name}: {len(got)} output(s), PyTorch gives {len(expected)}")
    for i, (e, g) in enumerate(zip(expected, got)):
        g = torch.as_tensor(g).to(e.device)
        if tuple(g.shape) != tuple(e.shape):
            raise ExportCheckError(f"{name}: output {i} has shape {tuple(g.shape)}, PyTorch's {tuple(e.shape)}")
        diff = float((g.to(e.dtype) - e).abs().max()) if e.numel() else 0.0
        if not torch.allclose(g.to(e.dtype), e, atol=atol, rtol=rtol):
            raise ExportCheckError(f"{name}: output {i} differs from PyTorch's by up to {diff:.3g} (atol {atol}, rtol {rtol})")


def to_onnx(
    net: torch.nn.Module,
    example_input: torch.Tensor | tuple[torch.Tensor, ...],
    path: str | os.PathLike,
    *,
    dynamic_batch: bool = True,
    opset_version: int | None = None,
    dynamo: bool = False,
    check: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> str:
    """Write the frozen ``net`` (in eval mode) to ``path`` as ONNX; returns the path.

    ``example_input``: a tensor (or tuple of tensors) of the shape the network takes.
    ``dynamic_batch``: the first dimension of every input and output is symbolic (``batch``).
    ``dynamo=False`` (default) uses torch's TorchScript-based exporter (fast; handles GRU/LSTM);
    ``dynamo=True`` the ``torch.export``-based one (needs onnxscript; slower). ``check``: load the
    file with onnxruntime and require its outputs to match PyTorch's within ``atol``/``rtol`` on
    ``example_input`` (and, with a dynamic batch, on a batch one larger), else
    :class:`ExportCheckError`. The training/eval mode of ``net`` is restored afterwards.
    """
    check_frozen(net)
    inputs = _as_tuple(example_input)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    in_names = list(input_names) if input_names is not None else (["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))])
    if len(in_names) != len(inputs):
        raise ValueError(f"input_names has {len(in_names)} names for {len(inputs)} inputs")
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            expected = _outputs(net(*inputs))
        out_names = list(output_names) if output_names is not None else (["output"] if len(expected) == 1 else [f"output_{i}" for i in range(len(expected))])
        kwargs: dict[str, Any] = {"input_names": in_names, "output_names": out_names}
        if opset_version is not None:
            kwargs["opset_version"] = opset_version
        if dynamo:
            if dynamic_batch:
                batch_dim = torch.export.Dim("batch", min=1)
                kwargs["dynamic_shapes"] = tuple({0: batch_dim} if t.dim() else {} for t in inputs)
            torch.onnx.export(net, inputs, path, dynamo=True, external_data=False, **kwargs)
        else:
            if dynamic_batch:
                kwargs["dynamic_axes"] = {n: {0: "batch"} for n, t in zip(in_names, inputs) if t.dim()}
                kwargs["dynamic_axes"].update({n: {0: "batch"} for n, t in zip(out_names, expected) if t.dim()})
            with warnings.catch_warnings():
                for category in (DeprecationWarning, FutureWarning, torch.jit.TracerWarning):
                    warnings.simplefilter("ignore", category=category)
                torch.onnx.export(net, inputs, path, dynamo=False, **kwargs)
        if check:
            import onnxruntime as ort

            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            batches = [inputs] + ([_other_batch(inputs)] if dynamic_batch else [])
            for batch in batches:
                with torch.no_grad():
                    want = _outputs(net(*batch))
                feed = {n: t.detach().cpu().numpy() for n, t in zip(names, batch)}
                _compare(f"ONNX export {path!r} (batch {batch[0].shape[0] if batch[0].dim() else '-'})", want,
                         session.run(None, feed), atol, rtol)
    finally:
        net.train(was_training)
    return path


def to_torchscript(
    net: torch.nn.Module,
    example_input: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    path: str | os.PathLike | None = None,
    *,
    method: str = "trace",
    check: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> torch.jit.ScriptModule:
    """The frozen ``net`` (eval mode) as TorchScript, saved to ``path`` when given; returns the module.

    ``method="trace"`` (default; needs ``example_input``) records the operations of one forward,
    which works for any model space's ``forward`` written in plain Python; ``"script"`` compiles the
    source (keeps data-dependent control flow, but the forward must be TorchScript-compatible).
    ``check``: re-load the saved file (or the in-memory module) and require its outputs to match
    PyTorch's within ``atol``/``rtol`` on ``example_input``, else :class:`ExportCheckError`. The
    saved file loads with ``torch.jit.load`` alone, without nasforge.
    """
    check_frozen(net)
    if method not in ("trace", "script"):
        raise ValueError(f"method must be 'trace' or 'script', got {method!r}")
    inputs = _as_tuple(example_input) if example_input is not None else None
    if method == "trace" and inputs is None:
        raise ValueError("method='trace' needs an example_input (a tensor of the shape the network takes)")
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.simplefilter("ignore", category=DeprecationWarning)
            scripted = torch.jit.trace(net, inputs, check_trace=False) if method == "trace" else torch.jit.script(net)
        scripted.eval()
        loaded = scripted
        if path is not None:
            path = os.fspath(path)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            scripted.save(path)
            if check:
                loaded = torch.jit.load(path)
        if check and inputs is not None:
            with torch.no_grad():
                _compare(f"TorchScript export {path or '(in memory)'!r}", _outputs(net(*inputs)), _outputs(loaded(*inputs)),
                         atol, rtol)
    finally:
        net.train(was_training)
    return scripted


def load_model_space(spec: str) -> torch.nn.Module:
    """Build a model space from ``"path/to/file.py:Name"`` or ``"package.module:Name"`` (``Name()`` is called)."""
    import importlib
    import importlib.util

    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ExportError(f"--model must look like 'path/to/file.py:ClassName' or 'package.module:ClassName', got {spec!r}")
    where, name = spec.split(":")
    if where.endswith(".py") or os.sep in where:
        if not os.path.isfile(where):
            raise ExportError(f"--model file {where!r} does not exist")
        import sys

        folder = os.path.dirname(os.path.abspath(where))
        if folder not in sys.path:
            sys.path.insert(0, folder)  # so the file can import its neighbours, as `python file.py` would
        mod_name = f"_nasforge_export_{os.path.splitext(os.path.basename(where))[0]}"
        module_spec = importlib.util.spec_from_file_location(mod_name, where)
        if module_spec is None or module_spec.loader is None:
            raise ExportError(f"--model file {where!r} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ExportError(f"--model module {where!r} cannot be imported: {exc}") from exc
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        names = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise ExportError(f"{where!r} has no callable {name!r}; it defines {names[:12]}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"{spec!r}() returned a {type(model).__name__}, not a torch.nn.Module model space")
    return model


def build_network(model_space: torch.nn.Module, arch: dict[str, Any], weights: str | os.PathLike | None) -> torch.nn.Module:
    """``model_space.freeze(arch)`` with the state dict saved at ``weights`` loaded (fresh weights when None)."""
    freeze = getattr(model_space, "freeze", None)
    if freeze is None:
        raise ExportError(f"{type(model_space).__name__} is not a nasforge model space (it has no freeze(arch))")
    net = freeze(arch)
    if weights is not None:
        state = torch.load(os.fspath(weights), map_location="cpu", weights_only=True)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ExportError(f"the weights in {os.fspath(weights)!r} do not fit the network of arch {arch}: {exc}") from exc
    return net


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` -> (1, 3, 32, 32)."""
    try:
        shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise ExportError(f"--input-shape must be positive integers separated by commas (batch first), e.g. 1,3,32,32; got {text!r}")
    return shape
