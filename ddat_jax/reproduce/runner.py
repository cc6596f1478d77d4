"""Runs the parts one after another, each in a fresh child process, resumably.

A part runs in a child process (``multiprocessing`` *spawn*): each experiment gets a fresh
JAX runtime (host devices configured for it, compiled programs and buffers freed when it
ends) and a part killed by the operating system (out of memory) is reported as failed
without taking the whole reproduction down. The child does what ``python -m
ddat_jax.main`` does: host devices, the persistent compilation cache, other libraries' logs
to ``<part>/log.txt``, then :func:`ddat_jax.experiment.run`.

A finished part gets ``part_complete.json`` (written last): its resolved config, the
checksums of its results, figures and report, its wall time and the machine it ran on. A
re-run skips a part whose marker records the same config and whose files are unchanged;
any other part runs again, and its experiment resumes the trainings already finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ml_collections

from ddat_jax import atomic
from ddat_jax.experiment import workdirs
from ddat_jax.reproduce.parts import Part, config_arg, part_config

MARKER = "part_complete.json"
RESOURCES = "part_resources.json"  # the child's peak resident memory, read into the marker


def machine() -> str:
    """One line: CPU model, cores, memory, OS (and the accelerator when JAX sees one)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) / 2**20:.0f} GiB"
                break
    except (OSError, ValueError):
        pass
    return f"{model}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def part_files(workdir: Path) -> list[str]:
    """The files a finished part is checked by: results, figures and the report."""
    found = [p for d in ("results", "figures") for p in sorted((workdir / d).rglob("*"))]
    found = [p for p in found if p.is_file() and not p.name.startswith(".")]
    if (workdir / "report.md").is_file():
        found.append(workdir / "report.md")
    return [str(p.relative_to(workdir)) for p in found]


def read_marker(workdir: Path) -> dict | None:
    """The part's ``part_complete.json`` or None (absent or unreadable)."""
    return workdirs.read_completion(workdir, MARKER)


def is_complete(cfg: ml_collections.ConfigDict, workdir: Path) -> bool:
    """Whether ``workdir`` holds a finished run of ``cfg`` whose files are unchanged."""
    marker = read_marker(workdir)
    return bool(marker and marker.get("files")) and workdirs.completion_verified(
        cfg, workdir, MARKER
    )


def write_marker(cfg, workdir: Path, seconds: float, command: str) -> dict:
    """Writes ``part_complete.json`` (atomically, last) for a part that just finished."""
    resources = workdirs.read_completion(workdir, RESOURCES) or {}
    return workdirs.write_completion(
        cfg,
        workdir,
        MARKER,
        part_files(workdir),
        seconds=round(seconds, 1),
        peak_rss_mib=resources.get("peak_rss_mib"),
        machine=machine(),
        finished=dt.datetime.now().isoformat(timespec="seconds"),
        command=command,
    )


def _child(cfg, workdir: str, compilation_cache: bool, overwrite: bool) -> None:
    """The body of a part's process (spawned: nothing of the parent's JAX is inherited)."""
    from ddat_jax.train.grid import configure_host_devices

    configure_host_devices()
    if compilation_cache:
        from ddat_jax.data.synthetic import cache_base
        from ddat_jax.main import enable_compilation_cache

        enable_compilation_cache(cache_base() / "jax-compilation-cache")
    from ddat_jax.experiment import run
    from ddat_jax.experiment.console import route_library_logs

    wd = Path(workdir)
    try:
        workdirs.prepare(cfg, wd, overwrite=overwrite)
    except ValueError as err:  # another config's run in the part's workdir: a sentence
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    route_library_logs(wd)
    run(cfg, wd)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    atomic.write_text(wd / RESOURCES, json.dumps({"peak_rss_mib": round(peak)}) + "\n")


@dataclasses.dataclass
class Outcome:
    """What happened to one part in this invocation."""

    part: Part
    workdir: Path
    status: str  # "ran", "skipped", "failed", "not run"
    seconds: float = 0.0  # this invocation's wall time of the part
    detail: str = ""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not finish"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else ""
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"ended by signal {-code} {name}{hint}"
    return f"exit status {code}"


def run_parts(
    parts: Sequence[Part],
    *,
    root: Path,
    profile: str,
    configs: Path,
    roots: Mapping[str, str],
    compilation_cache: bool = True,
    overwrite: bool = False,
    run_child: Callable[..., int] | None = None,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Runs every part not yet complete, in order; a failed part does not stop the others
    (the parts that read it are reported "not run").

    Args:
      parts: from :func:`ddat_jax.reproduce.parts.select`.
      root: the reproduction's workdir; part ``p`` runs in ``root / p.name``.
      profile: ``full``, ``quick`` or ``smoke``.
      configs: the ``configs/`` folder.
      roots: corpus family → the user's copy (empty: the embedded corpora).
      compilation_cache: use JAX's persistent compilation cache in the children.
      overwrite: replace part workdirs holding runs of another config (a complete part of
        the same config is still skipped: delete its ``part_complete.json`` to rerun it).
      run_child: ``(cfg, workdir) -> exit code``; default: a spawned process (tests pass
        an in-process function).
      echo: where progress lines go.
    """
    wds = {p.name: root / p.name for p in parts}
    outcomes: list[Outcome] = []
    done_ok: set[str] = set()
    total_est = sum(p.minutes for p in parts)
    t0 = time.perf_counter()
    est_done = 0.0
    for i, part in enumerate(parts, 1):
        wd = wds[part.name]
        cfg = part_config(configs, part, profile, wds, roots)
        arg = config_arg(part, profile)
        command = f"configs/{part.config}{':' + arg if arg else ''}"
        head = f"== [{i}/{len(parts)}] {part.title} ({command}) → {wd}"
        missing = [d for d in part.depends if d not in done_ok]
        if missing:
            echo(f"{head}\n   not run: needs {', '.join(missing)}, which did not finish")
            outcomes.append(Outcome(part, wd, "not run", detail=f"needs {missing}"))
            continue
        if is_complete(cfg, wd):
            marker = read_marker(wd) or {}
            echo(f"{head}\n   skipped: complete and verified (ran in {marker.get('seconds')} s)")
            outcomes.append(Outcome(part, wd, "skipped"))
            done_ok.add(part.name)
            est_done += part.minutes
            continue
        echo(head)
        (wd / MARKER).unlink(missing_ok=True)
        start = time.perf_counter()
        code = (run_child or _spawn)(
            cfg, wd, compilation_cache=compilation_cache, overwrite=overwrite
        )
        seconds = time.perf_counter() - start
        est_done += part.minutes
        if code == 0:
            write_marker(cfg, wd, seconds, command)
            outcomes.append(Outcome(part, wd, "ran", seconds))
            done_ok.add(part.name)
            state = f"done in {seconds / 60:.1f} min"
        else:
            outcomes.append(Outcome(part, wd, "failed", seconds, _describe_exit(code)))
            why = _describe_exit(code)
            state = f"FAILED after {seconds / 60:.1f} min ({why}; see {wd}/log.txt)"
        elapsed = time.perf_counter() - t0
        ran_est = sum(o.part.minutes for o in outcomes if o.status in ("ran", "failed"))
        ran_real = sum(o.seconds for o in outcomes if o.status in ("ran", "failed")) / 60
        pace = ran_real / ran_est if ran_est else 1.0
        eta = (total_est - est_done) * pace
        echo(
            f"== [{i}/{len(parts)}] {part.name}: {state} | reproduction {i}/{len(parts)} parts, "
            f"{elapsed / 60:.1f} min elapsed, ETA {eta:.0f} min"
        )
    return outcomes


def _spawn(cfg, wd: Path, *, compilation_cache: bool, overwrite: bool) -> int:
    ctx = mp.get_context("spawn")
    proc = ctx.Process(
        target=_child, args=(cfg, str(wd), compilation_cache, overwrite), name="reproduce-part"
    )
    proc.start()
    try:
        proc.join()
    except KeyboardInterrupt:
        proc.terminate()
        proc.join()
        raise
    return proc.exitcode if proc.exitcode is not None else -1


def outcomes_on_disk(
    parts: Sequence[Part], root: Path, profile: str, configs: Path, roots: Mapping[str, str]
) -> list[Outcome]:
    """The parts as they stand on disk (``--report_only``): complete or not run."""
    wds = {p.name: root / p.name for p in parts}
    out = []
    for part in parts:
        cfg = part_config(configs, part, profile, wds, roots)
        done = is_complete(cfg, wds[part.name])
        out.append(Outcome(part, wds[part.name], "skipped" if done else "not run"))
    return out
