"""``python -m ddat_jax.reproduce``: every table and figure of the five papers, one command.

:mod:`~ddat_jax.reproduce.parts` lists the runs (config × variant) each paper needs,
:mod:`~ddat_jax.reproduce.runner` runs them resumably in child processes,
:mod:`~ddat_jax.reproduce.claims` tests each paper's claims on them and
:mod:`~ddat_jax.reproduce.report` writes ``report/index.md`` and ``index.html``.
"""
