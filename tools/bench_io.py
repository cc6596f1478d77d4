"""Times the AVEC 2016 ARFF writer and reader on a video_geometric-sized file.

Usage::

    python tools/bench_io.py [--features 632] [--frames 7501] [--repeats 3]

Writes a ``frameTime`` + N-feature ARFF (float32 values, a few ``?``) to a temporary folder,
then prints the best-of-``repeats`` write and read times in seconds: wall-clock time and
process CPU time (the latter is less sensitive to other jobs sharing the machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ddat_jax.data.avec2016 import FRAME_PERIOD, read_arff, write_arff  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=632)
    parser.add_argument("--frames", type=int, default=7501)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    values = rng.standard_normal((args.frames, args.features)).astype(np.float32)
    values[rng.random(values.shape) < 1e-3] = np.nan
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(args.features)])
    frame.insert(0, "frameTime", np.arange(args.frames) * FRAME_PERIOD)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.arff"
        write_times, read_times, write_cpu, read_cpu = [], [], [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            write_arff(path, frame, "bench")
            write_times.append(time.perf_counter() - t0)
            write_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            back = read_arff(path)
            read_times.append(time.perf_counter() - t0)
            read_cpu.append(time.process_time() - c0)
        size_mb = path.stat().st_size / 1e6
    got = back.iloc[:, 1:].to_numpy(np.float32)
    exact = np.array_equal(got, values, equal_nan=True)
    print(
        f"{args.frames} rows x {1 + args.features} attributes ({size_mb:.1f} MB): "
        f"write {min(write_times):.3f} s (CPU {min(write_cpu):.3f} s), "
        f"read {min(read_times):.3f} s (CPU {min(read_cpu):.3f} s), best of {args.repeats}; "
        f"float32 round trip exact: {exact}"
    )


if __name__ == "__main__":
    main()
