"""Generic evaluation over :class:`~ddat_jax.predictions.Predictions`.

One small function per table or figure:

* :mod:`~ddat_jax.evaluation.tables` -- CCC per partition with significance against
  named baselines (:func:`ccc_table`), CCC per dimension and their mean
  (:func:`dims_table`), RMSE (:func:`rmse_table`).
* :mod:`~ddat_jax.evaluation.fusion` -- late fusion by linear regression and dynamic
  tuning with a difficulty signal, fitted on dev (:func:`fusion_table`).
* :mod:`~ddat_jax.evaluation.difficulty` -- PCC between difficulty signals and the
  per-frame improvement over a baseline (:func:`difficulty_table`).
* :mod:`~ddat_jax.evaluation.io` -- CSV + Markdown tables (:func:`write_table`).
* :mod:`~ddat_jax.evaluation.figures` -- prediction and difficulty traces (PNG; import
  it explicitly, it loads matplotlib).
* :mod:`~ddat_jax.evaluation.report` -- a short Markdown report of a run
  (:func:`write_report`).
"""

from ddat_jax.evaluation.difficulty import difficulty_table
from ddat_jax.evaluation.fusion import FusionResult, fusion_table
from ddat_jax.evaluation.io import to_markdown, write_table
from ddat_jax.evaluation.report import write_report
from ddat_jax.evaluation.tables import DEFAULT_MARKS, ccc_table, dims_table, rmse_table

__all__ = [
    "DEFAULT_MARKS",
    "FusionResult",
    "ccc_table",
    "difficulty_table",
    "dims_table",
    "fusion_table",
    "rmse_table",
    "to_markdown",
    "write_report",
    "write_table",
]
