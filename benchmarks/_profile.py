"""Where the time of one benchmark row goes: a breakdown of our step into its parts.

    python benchmarks/_profile.py GumbelSoftmaxTopK [--size large] [--fast-rng]

Times (fastest of many calls, one thread): the noise alone (the floor), the sample
(forward), sample + log_prob (forward), and both with the gradient, under the same settings as
``run.py``. Used to write the profile notes of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import main_param, set_threads  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("method", nargs="+", help="substrings of method names")
    p.add_argument("--size", default="vae")
    p.add_argument("--fast-rng", action="store_true", help="jax_threefry_partitionable=False")
    p.add_argument("--calls", type=int, default=20)
    args = p.parse_args(argv)
    set_threads(1)
    import _methods as M
    from _timing import time_calls

    M.RNG_MODE["partitionable"] = False if args.fast_rng else None
    for m in M.METHODS:
        if not any(s in m.name for s in args.method):
            continue
        inp = m.inputs(M.SIZES[args.size][m.kind])
        rows = {}
        for grad in (False, True):
            M.RNG_MODE["grad"] = grad
            tag = "grad" if grad else "fwd"
            rows[f"noise {tag}"] = M.floor_step(inp, m.noise, main_param(inp))
            rows[f"sample {tag}"] = m.ours(inp, False)
            if m.log_prob:
                rows[f"sample+log_prob {tag}"] = m.ours(inp, True)
        print(f"{m.name} at {args.size}:")
        for name, fn in rows.items():
            fn()
            fn()
            print(f"  {name:22s} {time_calls(fn, args.calls)[0] * 1e3:9.3f} ms", flush=True)


if __name__ == "__main__":
    main()
