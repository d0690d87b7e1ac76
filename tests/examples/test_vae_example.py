"""The discrete-latent VAE example trains with every estimator that fits each latent, and with
``--relax``, at tiny settings.

Each run is 60 SVI steps on digits with a 4 x 3 (or 4-bit) code and 16 hidden units, then the
evaluation on the discrete model (negative ELBO, a 5-sample IWAE bound) and the diagnostics; the
training objective must fall. One run writes every figure. The evaluation itself is checked
against enumeration of a one-variable code."""

import dataclasses
import importlib.util
import math
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpyro.infer import SVI
from numpyro.optim import optax_to_numpyro

from numpyro_relax.infer import core

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
CASES = [
    (latent, ["--estimator", name])
    for latent, family in VAE.FAMILY.items()
    for name in core.estimators_for(family)
] + [
    ("categorical", ["--relax"]),
    ("categorical", ["--relax", "--kl", "discrete"]),
    ("binary", ["--relax"]),
]
TINY = [
    "--steps", "60", "--log-every", "20", "--num-latents", "4", "--num-categories", "3",
    "--hidden", "16", "--batch-size", "20", "--lr", "3e-3", "--iwae-samples", "5",
    "--max-test", "40", "--no-progress", "--fast-compile",
]  # fmt: skip
FIGURES = ("categorical", ["--estimator", "st-gumbel"])  # the one run that writes the figures


@pytest.mark.parametrize(
    "latent,how",
    CASES,
    ids=[f"{latent}-{'-'.join(a.strip('-') for a in how)}" for latent, how in CASES],
)
def test_each_estimator_and_relaxation_trains(latent, how, tmp_path, capsys):
    figures = (latent, how) == FIGURES
    argv = ["--latent", latent, *how, "--out-dir", str(tmp_path), *TINY]
    out = VAE.main(argv + ([] if figures else ["--no-plots"]))
    losses = out["losses"]
    assert losses.shape == (60,) and np.all(np.isfinite(losses))
    # a fall well beyond the step-to-step noise of 20-image batches
    assert losses[-15:].mean() < losses[:15].mean() - 1.0, (losses[:15].mean(), losses[-15:].mean())
    for key in ("test_nelbo", "test_iwae_nll", "grad_variance", "reference_nll"):
        assert math.isfinite(out[key]) and out[key] > 0, key
    # the IWAE bound is at least as tight as the one-sample ELBO, up to Monte Carlo noise, and a
    # trained model beats the 64 log 2 = 44.4 nats of a coin flip per pixel
    assert out["test_iwae_nll"] < out["test_nelbo"] + 1.0
    assert out["test_iwae_nll"] < 64 * math.log(2)
    assert out["log_weights"].shape == (40, 5) and out["khat"].shape == (40,)
    printed = capsys.readouterr().out
    assert "test negative ELBO" in printed and "IWAE" in printed and "for reference" in printed
    if not figures:
        assert out["pngs"] == [] and not list(tmp_path.iterdir())
        return
    names = {"reconstructions.png", "samples.png", "elbo.png", "diagnostics.png"}
    assert {Path(p).name for p in out["pngs"]} == names
    for p in out["pngs"]:
        assert Path(p).parent == tmp_path and Path(p).stat().st_size > 2000


def test_every_estimator_that_fits_is_offered():
    assert FIGURES in CASES
    for latent, family in VAE.FAMILY.items():
        fits = core.estimators_for(family)
        assert fits and all(family in core.ESTIMATORS[n].families for n in fits)
        for name in fits:
            assert VAE.parse_args(["--latent", latent, "--estimator", name]).estimator == name
    assert "disarm" in core.estimators_for("bernoulli")
    assert "disarm" not in core.estimators_for("onehot")


def test_new_estimators_appear_without_editing_the_example(monkeypatch):
    spec = dataclasses.replace(core.ESTIMATORS["st-gumbel"], name="st-gumbel-copy")
    monkeypatch.setitem(core.ESTIMATORS, "st-gumbel-copy", spec)
    args = VAE.parse_args(["--estimator", "st-gumbel-copy", "--latent", "binary"])
    assert args.estimator == "st-gumbel-copy" and args.particles == 1


def test_help_shows_defaults_and_the_estimators(capsys):
    with pytest.raises(SystemExit) as exit_info:
        VAE.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options, epilog = text.split("\noptions:\n")[1].split("\n\n")
    blocks = [b for b in re.split(r"\n  (?=-)", options) if b.strip().startswith("--")]
    assert len(blocks) > 20
    for block in blocks:  # help text and the default on every option
        words = block.split()
        assert "(default:" in words and len(words) > 4, block
    flat = " ".join(text.split())
    for default in ("(default: loo)", "(default: 10000)", "(default: categorical)"):
        assert default in flat
    for latent, family in VAE.FAMILY.items():
        assert f"--latent {latent}: {', '.join(core.estimators_for(family))}" in epilog


def test_rejects_bad_arguments_and_fills_defaults():
    for argv in (
        ["--estimator", "disarm"],  # antithetic Bernoulli pairs: bits only
        ["--estimator", "nope"],
        ["--estimator", "loo", "--particles", "1"],  # the leave-one-out baseline needs two
        ["--latent", "binary", "--relax", "--kl", "discrete"],
        ["--temperature", "0"],
    ):
        with pytest.raises(SystemExit):
            VAE.parse_args(argv)
    args = VAE.parse_args([])
    assert (args.estimator, args.num_latents, args.num_categories, args.particles) == (
        "loo", 20, 10, 4
    )  # fmt: skip
    assert VAE.parse_args(["--estimator", "st-gumbel"]).particles == 1
    assert args.hidden == (256, 128) and args.dataset == "digits" and not args.relax
    assert VAE.parse_args(["--latent", "binary"]).num_latents == 200
    assert VAE.parse_args(["--dataset", "fashion-mnist"]).hidden == (512, 256)


def test_schedules():
    args = VAE.parse_args([])
    temperature, kl_weight = VAE.schedules(args)
    np.testing.assert_allclose(float(temperature(0)), 1.0)
    np.testing.assert_allclose(float(temperature(10_000)), math.exp(-0.3), rtol=1e-6)
    np.testing.assert_allclose(float(temperature(100_000)), 0.5)
    assert float(kl_weight(0)) == 1.0
    _, kl_weight = VAE.schedules(VAE.parse_args(["--kl-warmup", "100"]))
    np.testing.assert_allclose([float(kl_weight(s)) for s in (0, 50, 100, 500)], [0, 0.5, 1, 1])


def test_evaluation_matches_enumeration():
    """With one latent of 3 categories, log p(x) and the ELBO can be enumerated: the mean of the
    IWAE log weights is the ELBO (within 5 standard errors) and their log-mean-exp tends to
    log p(x)."""
    argv = ["--num-latents", "1", "--num-categories", "3", "--hidden", "8", "--batch-size", "4"]
    args = VAE.parse_args(argv + ["--iwae-samples", "4000", "--fast-compile"])
    model, guide, _, _, elbo = VAE.make_vae(args, 64)
    x = (jax.random.uniform(jax.random.PRNGKey(0), (4, 64)) < 0.3).astype(jnp.float32)
    svi = SVI(model, guide, optax_to_numpyro(optax.adam(1e-3)), loss=elbo)
    params = svi.get_params(svi.init(jax.random.PRNGKey(1), x, 1.0))
    out = VAE.evaluate(args, model, guide, params, np.asarray(x), jax.random.PRNGKey(2))

    enc = VAE.mlp((8, 3))[1](params["encoder$params"], x)  # (4, 3) logits of q(z | x)
    z = jnp.eye(3)
    dec = VAE.mlp((8, 64))[1](params["decoder$params"], z)  # (3, 64) logits of p(x | z)
    log_lik = jnp.sum(
        x[:, None] * jax.nn.log_sigmoid(dec) + (1 - x[:, None]) * jax.nn.log_sigmoid(-dec), -1
    )
    log_q = jax.nn.log_softmax(enc, -1)
    log_joint = log_lik - math.log(3)  # (4, 3): uniform prior
    exact_elbo = np.asarray(jnp.sum(jnp.exp(log_q) * (log_joint - log_q), -1))
    log_px = np.asarray(jax.scipy.special.logsumexp(log_joint, -1))
    log_w = out["log_weights"]
    se = log_w.std(1) / math.sqrt(log_w.shape[1])
    np.testing.assert_array_less(np.abs(log_w.mean(1) - exact_elbo), 5 * se + 1e-4)
    # every category has mass in q, so 4000 samples put the bound within a few 1e-3 of log p(x)
    np.testing.assert_allclose(-out["test_iwae_nll"], log_px.mean(), atol=5e-3)
