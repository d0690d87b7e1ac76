"""The feature-selection example runs end to end with tiny settings and writes its figure."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "feature_selection.py"


def load_example():
    spec = importlib.util.spec_from_file_location("example_feature_selection", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_feature_selection_example_tiny_run(tmp_path, capsys):
    example = load_example()
    out = example.main(
        ["--steps", "20", "--num-samples", "64", "--hidden", "8", "--out-dir", str(tmp_path)]
    )
    png = tmp_path / "feature_selection.png"
    assert png.exists() and png.stat().st_size > 1000
    assert set(out) == {"stg", "hard_concrete"}
    for selected in out.values():
        assert isinstance(selected, set)
        assert all(isinstance(i, int) and 0 <= i < example.NUM_FEATURES for i in selected)
    captured = capsys.readouterr()
    printed = captured.out
    for kind in ("stg", "hard_concrete"):
        assert f"[{kind}] P(gate != 0) per feature:" in printed
        assert f"[{kind}] selected features:" in printed
    assert str(png) in printed
    assert "How to read this" in printed
    # the progress bars of both fits (stderr), fed by callbacks from inside the compiled scan
    assert "stg gates" in captured.err and "hard_concrete gates" in captured.err


def test_feature_selection_data_layout():
    example = load_example()
    x, y = example.make_data(50, seed=3)
    assert x.shape == (50, example.NUM_FEATURES) and y.shape == (50,)
    assert set(map(float, y)) == {0.0, 1.0}
    # standardised features
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(0).mean()) - 1) < 1e-5


def test_feature_selection_help(assert_help_shows_defaults):
    assert_help_shows_defaults(
        load_example().main,
        "(default: 3000)",
        "(default: 0.1)",
        "(default: outputs/feature_selection)",
    )
