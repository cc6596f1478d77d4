"""Both dimensions of Table 2 side by side, from one implicit-fusion run per dimension.

    python -m ddat_jax.methods.implicit_fusion.table2 RUN_AROUSAL RUN_VALENCE [--out DIR]

Reads ``<run>/config.json`` (the dimension) and ``<run>/results/table2_implicit_fusion.csv``
of each run and prints the paper's layout (arousal | valence × audio | video × dev | test,
ours beside the paper's values); ``--out`` also writes ``table2_both_dimensions.{csv,md}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ddat_jax.evaluation import io as eval_io
from ddat_jax.methods.implicit_fusion.tables import PAPER_ROWS


def merge_table2(workdirs: Sequence[str | Path]) -> pd.DataFrame:
    """Columns ``"<dimension> <modality> <part>"`` and ``... (paper)``; rows: the paper's.

    Raises:
      ValueError: a run without the table, or two runs of the same dimension.
    """
    parts = {}
    for wd in map(Path, workdirs):
        table = wd / "results" / "table2_implicit_fusion.csv"
        if not table.is_file() or not (wd / "config.json").is_file():
            raise ValueError(f"{wd}: not an implicit-fusion run (no {table.name} or config.json)")
        dim = json.loads((wd / "config.json").read_text())["data"]["dimension"]
        if dim in parts:
            raise ValueError(f"two runs of dimension {dim!r}; give one run per dimension")
        df = pd.read_csv(table, index_col=0)
        parts[dim] = df.rename(columns=lambda c, d=dim: f"{d} {c}")
    order = [d for d in ("arousal", "valence") if d in parts] + sorted(
        set(parts) - {"arousal", "valence"}
    )
    out = pd.concat([parts[d] for d in order], axis=1).reindex(list(PAPER_ROWS))
    out.index.name = "system"
    out.attrs["formats"] = {c: ".3f" for c in out.columns}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="implicit-fusion workdirs, one per dimension")
    parser.add_argument("--out", default="", help="folder for table2_both_dimensions.{csv,md}")
    args = parser.parse_args(argv)
    df = merge_table2(args.runs)
    caption = (
        "Table 2: CCC after post-processing, main modality only at dev/test; '(paper)': "
        "the paper's RECOLA values; ours on the corpus of the given runs."
    )
    print(eval_io.markdown_block(df, caption))
    if args.out:
        eval_io.write_table(df, args.out, "table2_both_dimensions", caption=caption)


if __name__ == "__main__":
    main()
