"""The Gaussian-mixture example fits, converts to ArviZ and writes its plots, with tiny settings."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mixture.py"


def load_example():
    spec = importlib.util.spec_from_file_location("example_mixture", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("relaxation", ["st-gumbel-softmax", "reinforce-loo"])
def test_mixture_example(relaxation, tmp_path, capsys):
    example = load_example()
    if relaxation not in example.RELAXATIONS:
        pytest.skip("numpyro_relax.infer (score-function ELBOs) is not available")
    plots = relaxation == "st-gumbel-softmax"
    out = example.main(
        [
            "--relaxation",
            relaxation,
            "--num-data",
            "120",
            "--steps",
            "600",
            "--num-samples",
            "100",
            "--khat-samples",
            "200",
            "--out-dir",
            str(tmp_path),
            "--no-progress",
        ]
        + ([] if plots else ["--no-plots"])
    )
    losses = out["losses"]
    assert np.all(np.isfinite(losses)) and losses[-50:].mean() < losses[:50].mean()
    # three well separated components: the fitted locations land near -3, 0, 3
    locs = np.sort(np.asarray(out["params"]["locs_loc"]))
    np.testing.assert_allclose(locs, [-3.0, 0.0, 3.0], atol=0.5)
    assert out["assignment_accuracy"] > 0.85
    summary = out["summary"]
    assert {"weights[0]", "locs[2]", "scale"} <= set(summary.index)
    assert np.all(np.isfinite(summary["mean"].to_numpy()))
    loo = out["loo"]
    elpd = loo.elpd_loo if hasattr(loo, "elpd_loo") else loo.elpd  # ArviZ 0.x / 1.x
    assert math.isfinite(elpd) and np.asarray(loo.pareto_k).size == 120
    assert math.isfinite(out["psis_khat"])
    if plots:
        names = sorted(Path(p).name for p in out["pngs"])
        assert names == ["fit.png", "loo_khat.png", "posterior.png", "ppc.png"]
        assert all(Path(p).stat().st_size > 2000 for p in out["pngs"])
    else:
        assert out["pngs"] == []
    printed = capsys.readouterr().out
    assert "elpd_loo" in printed
    # the printed explanation of the flagged LOO k-hats holds on this run: (nearly) every flagged
    # point drew an assignment away from its most likely component, and marginalising the
    # assignment removes most flags (all of them with the default settings)
    why = out["loo_khat_explained"]
    assert f"Why {why['flagged']} of 120 PSIS-LOO k-hats" in printed
    assert why["flagged"] > 0 and why["khat_marginal"].shape == (120,)
    assert why["flagged_off_mode"] >= 0.8 * why["flagged"]
    assert why["flagged_marginal"] < 0.25 * why["flagged"]


def test_mixture_help_shows_defaults(assert_help_shows_defaults):
    assert_help_shows_defaults(
        load_example().parse_args,
        "(default: st-gumbel-softmax)",
        "(default: 300)",
        "(default: -3,0,3)",
        "(default: outputs/mixture)",
    )


def test_mixture_rejects_bad_arguments():
    example = load_example()
    with pytest.raises(SystemExit):
        example.parse_args(["--locs", "1"])
    with pytest.raises(SystemExit):
        example.parse_args(["--relaxation", "igr"])
    with pytest.raises(SystemExit):
        example.parse_args(["--relaxation", "reinforce-loo", "--particles", "1"])
