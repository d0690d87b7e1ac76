"""The discrete-latent VAE example trains with every relaxation on offer, with tiny settings.

Each relaxation runs 60 steps of SVI on digits with a 4 x 3 (or 4-bit) code and 16 hidden units,
then the discrete evaluation (hard NELBO, relaxed NELBO, a 5-sample IWAE bound); the loss must be
finite and lower at the end than at the start. One run also draws the diagnostics and writes
every figure (only one: that costs as much as three more relaxations). The quadrature behind the
IGR / logistic-normal discrete laws and the hard-concrete KL are checked against Monte Carlo."""

import importlib.util
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example():
    name = "example_vae"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "vae.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


VAE = load_example()
METHODS = VAE.load_methods()
CASES = [
    (latent, name)
    for latent in ("categorical", "binary")
    for name in METHODS.available_methods(latent)
]
TINY = [
    "--steps", "60", "--log-every", "20", "--num-latents", "4", "--num-categories", "3",
    "--hidden", "16", "--batch-size", "32", "--lr", "3e-3", "--iwae-samples", "5",
    "--max-test", "40", "--eval-batch-size", "20", "--no-progress", "--fast-compile",
]  # fmt: skip


def check_run(out, steps=60):
    losses = out["losses"]
    assert losses.shape == (steps,) and np.all(np.isfinite(losses))
    # a decrease well beyond the step-to-step noise of 32-image batches
    assert losses[-15:].mean() < losses[:15].mean() - 1.0, (losses[:15].mean(), losses[-15:].mean())
    for key in ("test_nelbo", "test_iwae_nll", "test_relaxed_nelbo"):
        assert math.isfinite(out[key]), key
    # the IWAE bound is at least as tight as the single-sample ELBO, up to Monte Carlo noise
    assert out["test_iwae_nll"] < out["test_nelbo"] + 1.0
    # 64 binary pixels: a trained model beats the 64 log 2 = 44.4 nats of a coin flip per pixel
    assert out["test_iwae_nll"] < 64 * math.log(2)


# this one also draws the diagnostics and writes every figure
FIGURES = {("categorical", "st-gumbel-softmax")}


@pytest.mark.parametrize("latent,relaxation", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_each_relaxation_trains(latent, relaxation, tmp_path, capsys):
    figures = (latent, relaxation) in FIGURES
    out = VAE.main(
        ["--latent", latent, "--relaxation", relaxation, "--out-dir", str(tmp_path)]
        + TINY
        + ([] if figures else ["--no-plots", "--no-diagnostics"])
    )
    assert out["relaxation"] == relaxation and out["latent"] == latent
    check_run(out)
    printed = capsys.readouterr().out
    assert "test negative ELBO" in printed and "IWAE" in printed
    if not figures:
        assert out["pngs"] == [] and not list(tmp_path.iterdir())
        return
    names = {Path(p).name for p in out["pngs"]}
    assert names == {
        "reconstructions.png",
        "samples.png",
        "elbo.png",
        "vertex_distance.png",
        "grad_variance.png",
        "khat.png",
    }
    for p in out["pngs"]:
        assert Path(p).parent == tmp_path and Path(p).stat().st_size > 2000
    diag = out["diagnostics"]
    assert diag["grad_variance"] > 0 and math.isfinite(diag["grad_variance"])
    assert diag["khat"].shape == (40,)
    # relaxed samples (same noise at every temperature) approach the vertices as it falls
    distances = list(diag["vertex_distance"].values())
    assert distances == sorted(distances) and distances[0] < distances[-1]


def test_figure_cases_are_offered():
    assert FIGURES <= set(CASES)


def test_disarm_is_offered_for_bits_only():
    """DisARM_ELBO needs Bernoulli guide sites: it trains the binary code (one pair by default,
    ``--particles`` pairs) and is refused for the categorical one."""
    assert ("binary", "disarm") in CASES and ("categorical", "disarm") not in CASES
    args = VAE.parse_args(["--latent", "binary", "--relaxation", "disarm"])
    assert args.particles == 1
    method = METHODS.get_method("disarm", "binary", num_latents=4)
    elbo = METHODS.make_elbo(method, 3)
    assert type(elbo).__name__ == "DisARM_ELBO" and elbo.num_pairs == 3
    with pytest.raises(SystemExit):
        VAE.parse_args(["--relaxation", "disarm"])


def test_argmax_log_probs_matches_monte_carlo():
    # the quadrature law of argmax behind IGR (with the fixed residual) and the logistic-normal
    loc = jnp.array([[0.3, -1.0, 0.8], [2.0, 0.0, -2.0]])
    scale = jnp.array([[1.0, 0.5, 2.0], [0.3, 1.0, 1.5]])
    n = 200_000
    z = loc + scale * jax.random.normal(jax.random.PRNGKey(0), (n,) + loc.shape)
    for residual in (False, True):
        exact = np.exp(np.asarray(METHODS.argmax_log_probs(loc, scale, residual=residual)))
        zz = jnp.concatenate([z, jnp.zeros(z.shape[:-1] + (1,))], -1) if residual else z
        freq = np.asarray(jax.nn.one_hot(jnp.argmax(zz, -1), exact.shape[-1]).mean(0))
        np.testing.assert_allclose(exact.sum(-1), 1.0, rtol=1e-5)
        # binomial standard error of a frequency is at most 0.5 / sqrt(n) = 1.1e-3; 5 sigma
        np.testing.assert_allclose(exact, freq, atol=5.6e-3)


def test_hard_concrete_kl_matches_monte_carlo():
    gate = METHODS.HardConcreteGate
    p, q = gate(jnp.array([1.5, -2.0]), 0.6), gate(jnp.zeros(2), 0.6)
    kl = np.asarray(METHODS.hard_concrete_kl(p, q))
    z = p.sample(jax.random.PRNGKey(1), (400_000,))
    terms = np.asarray(p.log_prob(z) - q.log_prob(z))
    se = terms.std(0) / np.sqrt(terms.shape[0])
    assert np.all(kl >= 0)
    np.testing.assert_array_less(np.abs(kl - terms.mean(0)), 5 * se)


def test_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        VAE.parse_args(["--latent", "binary", "--relaxation", "igr"])
    with pytest.raises(SystemExit):
        VAE.parse_args(["--relaxation", "nope"])
    with pytest.raises(SystemExit):
        VAE.parse_args(["--relaxation", "reinforce-loo", "--particles", "1"])
    args = VAE.parse_args(["--latent", "binary"])
    assert args.relaxation == "relaxed-bernoulli-st" and args.num_latents == 200
    args = VAE.parse_args([])
    assert (args.relaxation, args.num_latents, args.num_categories) == ("st-gumbel-softmax", 20, 10)
    assert args.hidden == (256, 128) and args.dataset == "digits" and args.binarize == "dynamic"
    assert VAE.parse_args(["--dataset", "fashion-mnist"]).hidden == (512, 256)


def test_temperature_schedule():
    schedule = VAE.temperature_schedule(1.0, 0.5, 3e-5)
    np.testing.assert_allclose(float(schedule(0)), 1.0)
    np.testing.assert_allclose(float(schedule(10_000)), math.exp(-0.3), rtol=1e-6)
    np.testing.assert_allclose(float(schedule(100_000)), 0.5)
