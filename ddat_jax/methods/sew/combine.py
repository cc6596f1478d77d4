"""The paper's Tables 1–3 over both dimensions, from an arousal run and a valence run.

One SEW run covers one dimension (AVEC 2016 features differ per dimension); this joins
two finished workdirs: Table 1 gets one row per dimension, Table 2 the arousal pairs'
columns then the valence pairs', Table 3 each run's columns (the paper's rows are the
same in both).

Usage::

    python -m ddat_jax.methods.sew.combine runs/recola_sew runs/recola_sew-dimension=valence \
        --out runs/recola_sew-both
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ddat_jax.evaluation import io as eval_io

TABLES = ("sew_table1_unimodal", "sew_table2_ablations", "sew_table3_comparison")


def _read(folder: Path, name: str) -> tuple[pd.DataFrame, str]:
    path = folder / "results" / f"{name}.csv"
    if not path.is_file():
        raise ValueError(f"{folder} has no results/{name}.csv (a finished SEW run expected)")
    md = (folder / "results" / f"{name}.md").read_text()
    caption = md.splitlines()[0].removeprefix("Table: ") if md else name
    return pd.read_csv(path, index_col=0), caption


def combine(arousal: Path, valence: Path) -> dict[str, tuple[pd.DataFrame, str]]:
    """``{table name: (DataFrame, caption)}`` over both runs."""
    (t1a, c1), (t1v, _) = _read(arousal, TABLES[0]), _read(valence, TABLES[0])
    t1 = pd.concat([t1a, t1v])
    (t2a, c2), (t2v, _) = _read(arousal, TABLES[1]), _read(valence, TABLES[1])
    t2 = pd.concat([t2a.add_prefix("arousal "), t2v.add_prefix("valence ")], axis=1)
    t2.index.name = "row"
    (t3a, c3), (t3v, _) = _read(arousal, TABLES[2]), _read(valence, TABLES[2])
    rows = t3a.index.append(t3v.index.difference(t3a.index, sort=False))
    t3 = t3a.combine_first(t3v).reindex(index=rows, columns=t3a.columns)
    for df in (t1, t2, t3):
        df.attrs["formats"] = {c: (".1f" if "Acc" in c else ".3f") for c in df.columns}
    note = " (arousal and valence runs joined)"
    return {
        "sew_table1_unimodal_both": (t1, c1.split(". Per-frame")[0] + note + "."),
        "sew_table2_ablations_both": (
            t2,
            c2.split(". Per-frame")[0].replace(" (arousal)", "") + note + ".",
        ),
        "sew_table3_comparison_both": (t3, c3.split(". Per-frame")[0] + note + "."),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arousal", type=Path, help="workdir of the arousal run")
    ap.add_argument("valence", type=Path, help="workdir of the valence run")
    ap.add_argument("--out", type=Path, required=True, help="folder for the joined tables")
    a = ap.parse_args(argv)
    for name, (df, caption) in combine(a.arousal, a.valence).items():
        eval_io.write_table(df, a.out, name, caption=caption)
        print(eval_io.markdown_block(df, caption), "\n")


if __name__ == "__main__":
    main()
