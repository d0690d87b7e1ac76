"""examples/gmm.py runs end to end with tiny settings, recovers the clusters with both methods,
writes its figure, and documents its defaults in --help."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gmm.py"

# TraceEnum_ELBO (the method the example compares with) needs funsor.
pytest.importorskip("funsor", reason="examples/gmm.py compares with TraceEnum_ELBO (funsor)")


def load_example():
    spec = importlib.util.spec_from_file_location("example_gmm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gmm_example(tmp_path, capsys):
    example = load_example()
    args = example.parse_args(
        [
            "--num-data",
            "60",
            "--num-components",
            "2",
            "--num-steps",
            "300",
            "--eval-particles",
            "10",
            "--no-progress",
            "--output-dir",
            str(tmp_path),
        ]
    )
    out = example.main(args)
    printed = capsys.readouterr().out
    assert "AutoDiscrete + TraceDiscrete_ELBO (loo)" in printed and "wall time" in printed
    # Equal-weight components 4 standard deviations apart: the Bayes classifier errs with
    # probability P(N(0,1) > 2) per point; allow its mean plus 5 standard deviations of the
    # error count. Locations: 5 standard errors sigma / sqrt(n / K) of the truth.
    n, k = 60, 2
    p_error = stats.norm.sf(2.0)
    max_errors = n * p_error + 5 * np.sqrt(n * p_error * (1 - p_error))
    for run in out["runs"]:
        np.testing.assert_allclose(run["locs"], out["true_locs"], atol=5 / np.sqrt(n / k))
        assert (1 - run["accuracy"]) * n <= max_errors
        assert np.isfinite(run["objective"][1]) and np.isfinite(run["log_joint"])
    # the MAP is the maximiser of log p(x, theta): AutoDiscrete's point estimate is not higher
    autodiscrete, enum = out["runs"]
    assert autodiscrete["log_joint"] <= enum["log_joint"] + 1e-3 * abs(enum["log_joint"])
    png = Path(out["png"])
    assert png.parent == tmp_path and png.name == "gmm.png" and png.stat().st_size > 10_000


def test_gmm_example_help_shows_the_defaults(capsys):
    example = load_example()
    with pytest.raises(SystemExit) as exit_info:
        example.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for default in ["(default: 300)", "(default: 1500)", "(default: loo)", "(default: cpu)"]:
        assert default in text
    assert "(default: outputs/gmm)" in text
