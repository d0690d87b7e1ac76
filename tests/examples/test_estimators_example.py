"""The estimators example runs end to end with tiny settings and writes its figure."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "estimators.py"


def load_example():
    spec = importlib.util.spec_from_file_location("example_estimators", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_estimators_example_writes_png(tmp_path, capsys):
    example = load_example()
    out = example.main(
        [
            "--steps",
            "6",
            "--num-samples",
            "2",
            "--var-samples",
            "8",
            "--timing-repeats",
            "1",
            "--estimators",
            "disarm,relax",
            "--out-dir",
            str(tmp_path),
        ]
    )
    printed = capsys.readouterr().out
    assert "How to read this" in printed
    png = tmp_path / "estimators.png"
    assert png.exists() and png.stat().st_size > 1000
    assert out["png"] == str(png)
    assert set(out["results"]) == {"disarm", "relax"}
    for r in out["results"].values():
        assert r["variance"].shape == (6,) and np.all(np.isfinite(r["variance"]))
        assert np.all(np.isfinite(r["theta"])) and r["us_per_estimate"] > 0
    # DisARM at theta = 0 has zero variance on this problem (up to float32 rounding)
    assert out["results"]["disarm"]["variance"][0] < 1e-14
    assert "disarm" in printed


def test_estimators_example_help_shows_defaults(assert_help_shows_defaults):
    assert_help_shows_defaults(
        load_example().parse_args,
        "(default: 2000)",
        "(default: 0.5)",
        "(default: outputs/estimators)",
    )


def test_estimators_example_rejects_bad_arguments():
    example = load_example()
    with pytest.raises(SystemExit):
        example.parse_args(["--estimators", "nope"])
    with pytest.raises(SystemExit):
        example.parse_args(["--estimators", "reinforce_loo", "--num-samples", "1"])
