"""The history plot: every result visible, failures and early stops marked, legend off the data."""

from __future__ import annotations

import pytest

from nasforge import Trial, TrialStatus
from nasforge.viz import history_figure, plot_history


def trials(values, mode="max"):
    out = []
    for i, v in enumerate(values):
        if v == "fail":
            out.append(Trial(i, {"x": i}, TrialStatus.FAILED, error="boom"))
        elif isinstance(v, tuple):
            out.append(Trial(i, {"x": i}, TrialStatus.STOPPED, metrics={"acc": v[1]}))
        else:
            out.append(Trial(i, {"x": i}, TrialStatus.SUCCEEDED, metrics={"acc": v}))
    return out


@pytest.mark.parametrize("values", [
    [0.1, 0.95, 0.96, 0.97, 0.98, 0.99, 0.2],        # outliers far below the bulk stay visible
    [0.5, "fail", ("stop", 0.05), 0.9, "fail"],       # a stopped trial below every finished one
    [0.7],
    [3.0, 3.0, 3.0],                                  # a flat line still gets a range
    [-5.0, 12.0, "fail", 1e-4],
])
@pytest.mark.parametrize("mode", ["max", "min"])
def test_every_result_is_inside_the_plot_and_the_legend_outside(values, mode):
    ts = trials(values)
    fig = history_figure(ts, "acc", mode)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    shown = [t.metrics["acc"] for t in ts if t.metrics]
    assert lo < min(shown) and max(shown) < hi
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("failed") for label in labels) == ("fail" in values)
    assert any(label.startswith("stopped early") for label in labels) == any(isinstance(v, tuple) for v in values)
    for coll in ax.collections:  # failure markers are inside the range too, below every score
        for _, y in coll.get_offsets():
            assert lo < y < hi
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # beside the axes, never over the data
    assert ("higher" if mode == "max" else "lower") in ax.get_ylabel()


def test_plot_history_writes_a_png(tmp_path):
    png = plot_history(trials([0.2, "fail", 0.5]), tmp_path / "sub" / "h.png", metric="acc")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no successful trial reports 'loss'"):
        plot_history(trials([0.2]), tmp_path / "x.png", metric="loss")
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        history_figure(trials([0.2]), "acc", "up")
