"""The registry of benchmarked methods: one small entry per method, one builder per implementation.

A *task* is one training-style step: draw a relaxed sample, evaluate its log density (unless a
side cannot), form ``loss = sum(w * sample) + sum(log_prob)`` and take the gradient of ``loss``
with respect to the distribution parameters. Every implementation of a method gets the same
parameter values (drawn once with NumPy) and the same shapes.

- ``ours``: numpyro_relax, ``jax.jit(jax.value_and_grad(loss))``, ``block_until_ready`` on every
  call, compile time excluded (the harness warms up first).
- ``floor``: the same step with the relaxation replaced by its noise alone:
  ``sum(param * noise)`` and its gradient, with ``noise`` drawn by the same JAX generator
  (Gumbel, logistic, uniform or normal) in the shape of the main parameter.
- ``relaxit``: the relaxit class of the same name (PyTorch, CPU, eager, ``autograd.grad``).
- ``torch``: ``torch.distributions`` / ``pyro.distributions`` where relaxit has no class of its own
  but its users would reach for PyTorch's (relaxit builds on Pyro).
- ``tfp``: TensorFlow Probability on JAX (``tfp.substrates.jax``), jitted like ours.

A builder raises :class:`Missing` when its class does not exist (yet); the harness skips that
implementation and records why.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TEMPERATURE = 0.5
TOP_K = 3

#: task shapes: "bits" (batch, D) binary variables; "cats" (batch, V, K) categorical variables
SIZES: dict[str, dict[str, tuple[int, ...]]] = {
    "vae": {"bits": (1024, 200), "cats": (1024, 20, 10)},
    "large": {"bits": (8192, 200), "cats": (8192, 20, 10)},
}


class Missing(Exception):
    """An implementation that is not available in this checkout / environment."""


Step = Callable[[], object]
Builder = Callable[[dict[str, np.ndarray], bool], Step]


@dataclass
class Method:
    """One benchmarked method.

    :param name: the numpyro_relax class (or task) name, the row label.
    :param family: documentation family (one-hot, subset, binary, simplex, bridge).
    :param kind: ``"bits"`` or ``"cats"``, which shape of :data:`SIZES` it runs at.
    :param noise: the noise the floor draws (``gumbel``, ``logistic``, ``uniform``, ``normal``).
    :param inputs: ``shape -> {name: array}`` parameters and loss weights, shared by all sides.
    :param ours: builder of the numpyro_relax step.
    :param peers: builders of the peer steps, by peer name.
    :param log_prob: whether the step evaluates ``log_prob`` (off when a peer cannot, for both).
    :param note: what the row compares, caveats.
    """

    name: str
    family: str
    kind: str
    noise: str
    inputs: Callable[[tuple[int, ...]], dict[str, np.ndarray]]
    ours: Builder
    peers: dict[str, Builder] = field(default_factory=dict)
    log_prob: bool = True
    note: str = ""


# ------------------------------------------------------------------------------------------
# lookups that tell "not written yet" from a bug
# ------------------------------------------------------------------------------------------
def ours_class(name: str, module: str | None = None):
    """A numpyro_relax class from the public namespace, else from its family module."""
    import numpyro_relax.distributions as nrd

    cls = getattr(nrd, name, None)
    if cls is None and module is not None:
        try:
            cls = getattr(importlib.import_module(f"numpyro_relax.{module}"), name, None)
        except ImportError:
            cls = None
    if cls is None:
        raise Missing(f"numpyro_relax has no `{name}` in this checkout")
    return cls


def _import(module: str, what: str):
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise Missing(f"`{module}` is not installed ({e.__class__.__name__})") from e
    obj = getattr(mod, what, None)
    if obj is None:
        raise Missing(f"`{module}.{what}` does not exist")
    return obj


def relaxit_class(name: str):
    return _import("relaxit.distributions", name)


def tfd():
    return _import("tensorflow_probability.substrates.jax", "distributions")


# ------------------------------------------------------------------------------------------
# step factories
# ------------------------------------------------------------------------------------------
def jax_step(loss: Callable, params: dict, consts: dict | None = None) -> Step:
    """``jit(value_and_grad(loss))(params, consts, key)``, blocked on every call.

    ``consts`` (loss weights, support values, ...) are arguments, not closed-over constants:
    XLA would otherwise fold them into the program (slow compiles, unrepresentative code).
    The step runs under the ``jax_threefry_partitionable`` value of :data:`RNG_MODE` at build
    time (the setting is part of the jit cache key, so it must hold at every call).
    """
    import jax
    import jax.numpy as jnp

    params = {k: jnp.asarray(v) for k, v in params.items()}
    consts = {k: jnp.asarray(v) for k, v in (consts or {}).items()}
    fn = jax.jit(jax.value_and_grad(loss) if RNG_MODE["grad"] else loss)
    key = jax.random.key(0)
    partitionable = RNG_MODE["partitionable"]

    if partitionable is None:

        def step():
            return jax.block_until_ready(fn(params, consts, key))

    else:

        def step():
            with jax.threefry_partitionable(partitionable):
                return jax.block_until_ready(fn(params, consts, key))

    return step


#: ``partitionable``: None keeps JAX's global ``jax_threefry_partitionable``; True/False forces it.
#: ``grad``: False builds forward-only steps (used by ``_profile.py``, not by the benchmark).
RNG_MODE: dict[str, bool | None] = {"partitionable": None, "grad": True}


def with_rng(partitionable: bool | None, build: Callable[[], Step]) -> Step:
    """Build a JAX step whose calls run under the given ``jax_threefry_partitionable``."""
    old = RNG_MODE["partitionable"]
    RNG_MODE["partitionable"] = partitionable
    try:
        return build()
    finally:
        RNG_MODE["partitionable"] = old


def torch_step(loss: Callable, params: dict) -> Step:
    """Eager PyTorch: ``loss(**params)`` then ``torch.autograd.grad`` for every parameter."""
    torch = _import("torch", "autograd")
    import torch  # noqa: F811  (the check above gives a clean Missing when absent)

    tensors = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in params.items()}
    leaves = list(tensors.values())

    def step():
        out = loss(**tensors)
        return torch.autograd.grad(out, leaves)

    return step


def floor_step(inp: dict[str, np.ndarray], noise: str, main: str) -> Step:
    """The noise floor: draw the method's noise in the shape of ``inp[main]``, reduce, grad."""
    import jax
    import jax.numpy as jnp

    draw = {
        "gumbel": jax.random.gumbel,
        "logistic": jax.random.logistic,
        "uniform": jax.random.uniform,
        "normal": jax.random.normal,
    }[noise]
    shape = np.shape(inp[main])

    def loss(p, c, key):
        return jnp.sum(p[main] * draw(key, shape, dtype=p[main].dtype))

    return jax_step(loss, {main: inp[main]})


def _t(x):
    import torch

    return torch.as_tensor(np.asarray(x))


# ------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------
def _rng(shape: tuple[int, ...]) -> np.random.Generator:
    return np.random.default_rng(abs(hash(shape)) % (2**32))


def logits_inputs(shape):
    r = _rng(shape)
    return {
        "logits": r.normal(size=shape).astype(np.float32),
        "w": r.normal(size=shape).astype(np.float32),
    }


def values_inputs(shape):
    r = _rng(shape)
    k = shape[-1]
    return {
        "logits": r.normal(size=shape).astype(np.float32),
        "values": np.broadcast_to(np.arange(k, dtype=np.float32), shape).copy(),
        "w": r.normal(size=shape[:-1]).astype(np.float32),
    }


def loc_scale_inputs(shape, drop_last=False, loc_mean=0.0, loc_sd=1.0, scale=None):
    r = _rng(shape)
    pshape = shape[:-1] + (shape[-1] - 1,) if drop_last else shape
    sc = (
        np.full(pshape, scale, np.float32)
        if scale is not None
        else (0.5 + 0.5 * r.uniform(size=pshape)).astype(np.float32)
    )
    return {
        "loc": (loc_mean + loc_sd * r.normal(size=pshape)).astype(np.float32),
        "scale": sc,
        "w": r.normal(size=shape).astype(np.float32),
    }


def alr_tril_inputs(shape):
    r = _rng(shape)
    n = shape[-1] - 1
    a = r.normal(size=(n, n)) / np.sqrt(n)
    tril = np.linalg.cholesky(a @ a.T + 0.5 * np.eye(n)).astype(np.float32)
    return {
        "loc": r.normal(size=shape[:-1] + (n,)).astype(np.float32),
        "scale_tril": tril,
        "w": r.normal(size=shape).astype(np.float32),
    }


def hard_concrete_inputs(shape):
    r = _rng(shape)
    return {
        "log_alpha": r.normal(size=shape).astype(np.float32),
        "w": r.normal(size=shape).astype(np.float32),
    }


def correlated_inputs(shape):
    r = _rng(shape)
    d = shape[-1]
    idx = np.arange(d)
    return {
        "probs": (1 / (1 + np.exp(-r.normal(size=shape)))).astype(np.float32),
        "correlation": (0.5 ** np.abs(idx[:, None] - idx[None, :])).astype(np.float32),
        "w": r.normal(size=shape).astype(np.float32),
    }


def dirichlet_inputs(shape):
    r = _rng(shape)
    return {
        "concentration": (0.5 + np.exp(r.normal(size=shape))).astype(np.float32),
        "w": r.normal(size=shape).astype(np.float32),
    }


# ------------------------------------------------------------------------------------------
# ours: one builder per class
# ------------------------------------------------------------------------------------------
def ours_simple(name: str, make: Callable, *, intermediates: bool, module: str | None = None):
    """Builder for a class whose step is ``sample -> log_prob -> sum(w * x) + sum(lp)``.

    ``make(cls, params) -> distribution``; ``intermediates`` uses ``sample_with_intermediates``
    (the path NumPyro's trace takes) so log_prob reuses the log-space sample.
    """

    def build(inp, log_prob):
        import jax.numpy as jnp

        cls = ours_class(name, module)
        params, consts = split(inp)

        def loss(p, c, key):
            d = make(cls, {**p, **c})
            if intermediates:
                x, inter = d.sample_with_intermediates(key)
            else:
                x, inter = d.sample(key), None
            out = jnp.sum(c["w"] * x)
            if log_prob:
                lp = d.log_prob(x, inter) if intermediates else d.log_prob(x)
                out = out + jnp.sum(lp)
            return out

        return jax_step(loss, params, consts)

    return build


#: inputs that are configuration, not differentiated parameters
STATIC = {"values", "correlation"}


def split(inp: dict) -> tuple[dict, dict]:
    """``(differentiated parameters, constants)``; the loss weights ``w`` are a constant."""
    params = {k: v for k, v in inp.items() if k != "w" and k not in STATIC}
    consts = {k: v for k, v in inp.items() if k == "w" or k in STATIC}
    return params, consts


def ours_binary_concrete(inp, log_prob):
    """Binary Concrete on (0, 1) from LogitRelaxedBernoulli: x = sigmoid(y), with the Jacobian."""
    import jax
    import jax.numpy as jnp

    cls = ours_class("LogitRelaxedBernoulli", "distributions.bernoulli")

    def loss(p, c, key):
        d = cls(TEMPERATURE, logits=p["logits"])
        y = d.sample(key)
        x = jax.nn.sigmoid(y)
        out = jnp.sum(c["w"] * x)
        if log_prob:
            lp = d.log_prob(y) - jax.nn.log_sigmoid(y) - jax.nn.log_sigmoid(-y)
            out = out + jnp.sum(lp)
        return out

    return jax_step(loss, *split(inp))


def ours_bridge(inp, log_prob):
    import jax.numpy as jnp
    from numpyro.distributions import Dirichlet

    try:
        from numpyro_relax.laplace_bridge import laplace_bridge
    except ImportError as e:
        raise Missing("numpyro_relax.laplace_bridge is not in this checkout") from e

    def loss(p, c, key):
        d = laplace_bridge(Dirichlet(p["concentration"]), diagonal=True)
        x, inter = d.sample_with_intermediates(key)
        out = jnp.sum(c["w"] * x)
        if log_prob:
            out = out + jnp.sum(d.log_prob(x, inter))
        return out

    return jax_step(loss, *split(inp))


# ------------------------------------------------------------------------------------------
# peers
# ------------------------------------------------------------------------------------------
def torch_simple(get_cls: Callable, make: Callable):
    """Builder for a PyTorch class: ``make(cls, **params) -> dist``; loss like ours."""

    def build(inp, log_prob):
        cls = get_cls()
        w = _t(inp["w"])
        static = {k: _t(v) for k, v in inp.items() if k in STATIC}
        params = {k: v for k, v in inp.items() if k != "w" and k not in STATIC}

        def loss(**p):
            d = make(cls, **p, **static)
            x = d.rsample()
            out = (w.reshape(x.shape) * x).sum()
            if log_prob:
                out = out + d.log_prob(x).sum()
            return out

        return torch_step(loss, params)

    return build


def tfp_simple(make: Callable):
    """Builder for a TFP-on-JAX class, jitted like ours."""

    def build(inp, log_prob):
        import jax.numpy as jnp

        d_mod = tfd()
        params, consts = split(inp)

        def loss(p, c, key):
            d = make(d_mod, **p)
            x = d.sample(seed=key)
            out = jnp.sum(c["w"] * x)
            if log_prob:
                out = out + jnp.sum(d.log_prob(x))
            return out

        return jax_step(loss, params, consts)

    return build


def relaxit_topk(inp, log_prob):
    import torch

    cls = relaxit_class("GumbelSoftmaxTopK")
    w = _t(inp["w"])

    def loss(logits):
        d = cls(
            logits=logits,
            K=torch.tensor(TOP_K),
            tau=torch.tensor(TEMPERATURE),
            hard=True,
            validate_args=False,
        )
        x = d.rsample()
        out = (w * x).sum()
        if log_prob:
            out = out + d.log_prob(x).sum()
        return out

    return torch_step(loss, {"logits": inp["logits"]})


def relaxit_ggs(inp, log_prob):
    import torch

    cls = relaxit_class("GeneralizedGumbelSoftmax")
    w, values = _t(inp["w"]), _t(inp["values"])

    def loss(logits):
        d = cls(
            values, logits=logits, tau=torch.tensor(TEMPERATURE), hard=True, validate_args=False
        )
        weights = d.rsample()
        out = (w * d.weights_to_values(weights)).sum()
        if log_prob:
            out = out + d.log_prob(weights).sum()
        return out

    return torch_step(loss, {"logits": inp["logits"]})


def relaxit_hard_concrete(inp, log_prob):
    """relaxit's uniform has shape [1]: by default one draw is shared by the whole batch;
    per-element noise needs sample_shape = batch shape and a trailing singleton axis."""
    import torch

    cls = relaxit_class("HardConcrete")
    w = _t(inp["w"])[..., None]
    shape = np.shape(inp["log_alpha"])

    def loss(log_alpha):
        d = cls(
            torch.exp(log_alpha)[..., None],
            torch.tensor(2.0 / 3.0),
            torch.tensor(1.1),
            torch.tensor(-0.1),
            validate_args=False,
        )
        x = d.rsample(torch.Size(shape))
        out = (w * x).sum()
        if log_prob:
            out = out + d.log_prob(x).sum()
        return out

    return torch_step(loss, {"log_alpha": inp["log_alpha"]})


def relaxit_bridge(inp, log_prob):
    import pyro.distributions as pd

    approx = _import("relaxit.distributions.approx", "lognorm_approximation_fn")
    w = _t(inp["w"])

    def loss(concentration):
        d = approx(pd.Dirichlet(concentration, validate_args=False))
        x = d.rsample()
        return (w * x).sum()

    return torch_step(loss, {"concentration": inp["concentration"]})


def _pd(name):
    return lambda: _import("pyro.distributions", name)


def _td(module, name):
    return lambda: _import(module, name)


# ------------------------------------------------------------------------------------------
# the registry
# ------------------------------------------------------------------------------------------
T = TEMPERATURE
CAT = "distributions.categorical"
BIN = "distributions.bernoulli"
SIM = "distributions.simplex"

METHODS: list[Method] = [
    # ---------------------------------------------------------------- one-hot family
    Method(
        "RelaxedOneHotCategorical",
        "one-hot",
        "cats",
        "gumbel",
        logits_inputs,
        ours_simple(
            "RelaxedOneHotCategorical", lambda c, p: c(T, logits=p["logits"]), intermediates=True
        ),
        peers={
            "torch": torch_simple(
                _td("torch.distributions", "RelaxedOneHotCategorical"),
                lambda c, logits: c(torch_scalar(T), logits=logits, validate_args=False),
            ),
            "tfp": tfp_simple(lambda d, logits: d.RelaxedOneHotCategorical(T, logits=logits)),
        },
        note="relaxit has no class of its own (its users take torch.distributions').",
    ),
    Method(
        "ExpRelaxedOneHotCategorical",
        "one-hot",
        "cats",
        "gumbel",
        logits_inputs,
        ours_simple(
            "ExpRelaxedOneHotCategorical",
            lambda c, p: c(T, logits=p["logits"]),
            intermediates=False,
        ),
        peers={
            "torch": torch_simple(
                _td("torch.distributions.relaxed_categorical", "ExpRelaxedCategorical"),
                lambda c, logits: c(torch_scalar(T), logits=logits, validate_args=False),
            ),
            "tfp": tfp_simple(lambda d, logits: d.ExpRelaxedOneHotCategorical(T, logits=logits)),
        },
    ),
    Method(
        "RelaxedOneHotCategoricalStraightThrough",
        "one-hot",
        "cats",
        "gumbel",
        logits_inputs,
        ours_simple(
            "RelaxedOneHotCategoricalStraightThrough",
            lambda c, p: c(T, logits=p["logits"]),
            intermediates=False,
        ),
        peers={
            "torch": torch_simple(
                _pd("RelaxedOneHotCategoricalStraightThrough"),
                lambda c, logits: c(torch_scalar(T), logits=logits, validate_args=False),
            ),
        },
        note="Pyro's log_prob is the Concrete density of the soft sample; ours is the pmf.",
    ),
    Method(
        "DecoupledStraightThroughGumbelSoftmax",
        "one-hot",
        "cats",
        "gumbel",
        logits_inputs,
        ours_simple(
            "DecoupledStraightThroughGumbelSoftmax",
            lambda c, p: c(1.0, T, logits=p["logits"]),
            intermediates=False,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("DecoupledStraightThroughGumbelSoftmax"),
                lambda c, logits: c(1.0, T, logits=logits, validate_args=False),
            ),
        },
        note="temperature_forward 1, temperature_backward 0.5.",
    ),
    Method(
        "GeneralizedGumbelSoftmax",
        "one-hot",
        "cats",
        "gumbel",
        values_inputs,
        ours_simple(
            "GeneralizedGumbelSoftmax",
            lambda c, p: c(p["values"], T, logits=p["logits"], hard=True),
            intermediates=False,
        ),
        peers={"relaxit": relaxit_ggs},
        note="hard=True (the relaxed values have no density); K = 10 support points 0..9.",
    ),
    # ---------------------------------------------------------------- subsets
    Method(
        "GumbelSoftmaxTopK",
        "subset",
        "cats",
        "gumbel",
        logits_inputs,
        ours_simple(
            "GumbelSoftmaxTopK",
            lambda c, p: c(TOP_K, T, logits=p["logits"], hard=True),
            intermediates=False,
        ),
        peers={"relaxit": relaxit_topk},
        note=(
            "k = 3 of 10, hard=True. relaxit loops k times over F.gumbel_softmax (fresh noise "
            "each step, probs used as logits) and its log_prob is an element-wise BCE; ours "
            "is the exact subset probability."
        ),
    ),
    # ---------------------------------------------------------------- binary family
    Method(
        "StraightThroughBernoulli",
        "binary",
        "bits",
        "logistic",
        logits_inputs,
        ours_simple(
            "StraightThroughBernoulli",
            lambda c, p: c(logits=p["logits"]),
            intermediates=False,
            module=BIN,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("StraightThroughBernoulli"),
                lambda c, logits: c(logits=logits, validate_args=False),
            )
        },
    ),
    Method(
        "RelaxedBernoulliStraightThrough",
        "binary",
        "bits",
        "logistic",
        logits_inputs,
        ours_simple(
            "RelaxedBernoulliStraightThrough",
            lambda c, p: c(T, logits=p["logits"]),
            intermediates=False,
            module=BIN,
        ),
        peers={
            "torch": torch_simple(
                _pd("RelaxedBernoulliStraightThrough"),
                lambda c, logits: c(torch_scalar(T), logits=logits, validate_args=False),
            ),
        },
        note="Pyro's log_prob is the Concrete density of the soft sample; ours is the pmf.",
    ),
    Method(
        "LogitRelaxedBernoulli",
        "binary",
        "bits",
        "logistic",
        logits_inputs,
        ours_simple(
            "LogitRelaxedBernoulli",
            lambda c, p: c(T, logits=p["logits"]),
            intermediates=False,
            module=BIN,
        ),
        peers={
            "torch": torch_simple(
                _td("torch.distributions.relaxed_bernoulli", "LogitRelaxedBernoulli"),
                lambda c, logits: c(torch_scalar(T), logits=logits, validate_args=False),
            ),
            "tfp": tfp_simple(lambda d, logits: d.Logistic(logits / T, 1.0 / T)),
        },
        note="TFP: Logistic(logits/τ, 1/τ), the base of its RelaxedBernoulli.",
    ),
    Method(
        "binary Concrete (RelaxedBernoulli)",
        "binary",
        "bits",
        "logistic",
        logits_inputs,
        ours_binary_concrete,
        peers={
            "torch": torch_simple(
                _td("torch.distributions", "RelaxedBernoulli"),
                lambda c, logits: c(torch_scalar(T), logits=logits, validate_args=False),
            ),
            "tfp": tfp_simple(lambda d, logits: d.RelaxedBernoulli(T, logits=logits)),
        },
        note="ours: sigmoid of a LogitRelaxedBernoulli sample, density with the Jacobian.",
    ),
    Method(
        "StochasticTimesSmooth",
        "binary",
        "bits",
        "uniform",
        logits_inputs,
        ours_simple(
            "StochasticTimesSmooth",
            lambda c, p: c(logits=p["logits"]),
            intermediates=False,
            module=BIN,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("StochasticTimesSmooth"),
                lambda c, logits: c(logits=logits, validate_args=False),
            )
        },
        note="relaxit's log_prob is the Bernoulli(p) pmf at b·√p; ours the two-point law.",
    ),
    Method(
        "GaussianRelaxedBernoulli",
        "binary",
        "bits",
        "normal",
        lambda s: loc_scale_inputs(s, loc_mean=0.5, loc_sd=0.3, scale=0.5),
        ours_simple(
            "GaussianRelaxedBernoulli",
            lambda c, p: c(p["loc"], p["scale"]),
            intermediates=False,
            module=BIN,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("GaussianRelaxedBernoulli"),
                lambda c, loc, scale: c(loc, scale, validate_args=False),
            )
        },
        note="gradients for loc and scale on both sides (relaxit's sample is not reparameterised in scale).",
    ),
    Method(
        "HardConcrete",
        "binary",
        "bits",
        "logistic",
        hard_concrete_inputs,
        ours_simple(
            "HardConcrete", lambda c, p: c(p["log_alpha"]), intermediates=False, module=BIN
        ),
        peers={"relaxit": relaxit_hard_concrete},
        note=(
            "relaxit takes alpha = exp(log_alpha); its default noise is a single uniform for the "
            "whole batch, so it is given sample_shape = batch shape and parameters with a "
            "trailing singleton axis (one draw per element, as ours)."
        ),
    ),
    Method(
        "CorrelatedRelaxedBernoulli",
        "binary",
        "bits",
        "normal",
        correlated_inputs,
        ours_simple(
            "CorrelatedRelaxedBernoulli",
            lambda c, p: c(p["probs"], p["correlation"], T),
            intermediates=True,
            module=BIN,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("CorrelatedRelaxedBernoulli"),
                lambda c, probs, correlation: c(probs, correlation, torch_scalar(T)),
            )
        },
        note=(
            "D = 200 gates, AR(1) correlation 0.5^|i-j|. Ours evaluates the exact copula "
            "density (a triangular solve per sample); relaxit's log_prob is a Normal(pi, tau) "
            "density, not the law of its samples."
        ),
    ),
    Method(
        "LogitNormal",
        "binary",
        "bits",
        "normal",
        loc_scale_inputs,
        ours_simple(
            "LogitNormal", lambda c, p: c(p["loc"], p["scale"]), intermediates=False, module=BIN
        ),
        peers={"tfp": tfp_simple(lambda d, loc, scale: d.LogitNormal(loc, scale))},
    ),
    # ---------------------------------------------------------------- simplex family
    Method(
        "InvertibleGaussian",
        "simplex",
        "cats",
        "normal",
        lambda s: loc_scale_inputs(s, drop_last=True),
        ours_simple(
            "InvertibleGaussian",
            lambda c, p: c(p["loc"], p["scale"], T),
            intermediates=True,
            module=SIM,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("InvertibleGaussian"),
                lambda c, loc, scale: c(loc, scale, torch_scalar(T), validate_args=False),
            )
        },
        note="K = 10 (9 Gaussian coordinates). relaxit's log_prob is not summed over the event.",
    ),
    Method(
        "LogisticNormalSoftmax",
        "simplex",
        "cats",
        "normal",
        loc_scale_inputs,
        ours_simple(
            "LogisticNormalSoftmax",
            lambda c, p: c(p["loc"], p["scale"]),
            intermediates=True,
            module=SIM,
        ),
        peers={
            "relaxit": torch_simple(
                lambda: relaxit_class("LogisticNormalSoftmax"),
                lambda c, loc, scale: c(loc, scale, validate_args=False),
            )
        },
        log_prob=False,
        note="sample + gradient only: relaxit's log_prob raises NotImplementedError.",
    ),
    Method(
        "LogisticNormal",
        "simplex",
        "cats",
        "normal",
        alr_tril_inputs,
        ours_simple(
            "LogisticNormal",
            lambda c, p: c(p["loc"], p["scale_tril"]),
            intermediates=True,
            module=SIM,
        ),
        note="full 9x9 ALR scale_tril shared by the batch; no peer has this class.",
    ),
    Method(
        "laplace_bridge (Dirichlet → LogisticNormalSoftmax) + sample",
        "bridge",
        "cats",
        "normal",
        dirichlet_inputs,
        ours_bridge,
        peers={"relaxit": relaxit_bridge},
        log_prob=False,
        note="diagonal=True (relaxit's lognorm_approximation_fn); gradient w.r.t. the concentration.",
    ),
]


def torch_scalar(x: float):
    import torch

    return torch.tensor(x)


#: relaxit classes with no counterpart here, reported as skipped
RELAXIT_UNMATCHED = {
    "RebarRelaxation": "a distribution over REBAR's conditional relaxation; numpyro_relax has "
    "the REBAR estimator (numpyro_relax.estimators.rebar), not a distribution",
    "GeneralizedGumbelSoftmaxNP": "covered by GeneralizedGumbelSoftmax.from_discrete (eager "
    "truncation, not a per-step cost)",
}
