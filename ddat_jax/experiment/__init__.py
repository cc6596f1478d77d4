"""The experiment layer: ``run(config, workdir)`` for every method.

* :mod:`.systems`: ``System`` (a table row: job builder, dependencies, custom training,
  after-step), ``Job`` (data, models, objective, settings), ``Trained``, ``Context``.
* :mod:`.settings`: the generic settings of a run, built from the config once.
* :mod:`.training`: the standard training of a job (architectures × seeds, best on dev).
* :mod:`.schedule`: independent systems side by side over the devices.
* :mod:`.run`: corpus → plan → training → predictions → tables → report.
"""

from ddat_jax.experiment.run import run, validate
from ddat_jax.experiment.systems import Context, Job, System, Trained, TrainSettings

__all__ = ["Context", "Job", "System", "TrainSettings", "Trained", "run", "validate"]
