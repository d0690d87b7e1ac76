"""examples/demo.py (the quick start as a script) runs, learns the right category, says how to
read its loss, and documents its options."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def load_example():
    spec = importlib.util.spec_from_file_location("example_demo", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_learns_the_category_and_explains_the_loss(capsys):
    out = load_example().main(["--steps", "300", "--no-progress"])
    assert int(np.argmax(out["probs"])) == 2  # the data come from the third centre
    printed = capsys.readouterr().out
    assert "learned category: 2" in printed and "For reference: the loss cannot go below" in printed
    # the printed floor is a real lower bound of the (Monte Carlo) loss, approached by the fit
    losses = np.asarray(out["losses"])
    assert out["loss_floor"] < losses[-50:].mean() < losses[:50].mean()


def test_demo_help_shows_defaults(assert_help_shows_defaults):
    assert_help_shows_defaults(load_example().main, "(default: 1000)", "(default: 0.5)")
