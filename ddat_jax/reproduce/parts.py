"""The parts of ``python -m ddat_jax.reproduce``: one experiment run (config × variant) each.

Every table and figure of the five papers comes from one of these runs; the later parts read
the earlier ones' workdirs for their comparison rows (implicit fusion's Table 2 shows the
DDAT paper's MTL/DDAT rows, SEW's Table 3 the DDAT and implicit-fusion runs), so the parts
run in the order listed here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ml_collections

PAPERS: dict[str, str] = {
    "ddat": "Zhang et al., Dynamic Difficulty Awareness Training for Continuous Emotion "
    "Prediction (DDAT)",
    "soft_prediction": "Han et al., From Hard to Soft: Towards more Human-like Emotion "
    "Recognition by Modelling the Perception Uncertainty",
    "implicit_fusion": "Han et al., Implicit Fusion by Joint Audiovisual Training for Emotion "
    "Recognition in Mono Modality",
    "cer_mtl": "Köprü & Erzin, Multimodal Continuous Emotion Recognition using Deep "
    "Multi-Task Learning with Correlation Loss (CER-MTL)",
    "sew": "Han et al., Robust Latent Representations via Cross-Modal Translation and "
    "Alignment (SEW)",
}
"""Paper key (``--only``) → the paper, in the order the report lists them."""

CORPORA = ("recola", "sewa", "omg", "creativeit")
"""The corpus families a ``--roots`` entry can name."""

Links = Callable[[Mapping[str, Path]], dict[str, object]]


def _no_links(workdirs: Mapping[str, Path]) -> dict[str, object]:
    return {}


@dataclasses.dataclass(frozen=True)
class Part:
    """One run of the reproduction.

    Attributes:
      paper: key of :data:`PAPERS`.
      name: the part's folder under the reproduction's workdir.
      title: what it reproduces, for the console and the report.
      config: the config file's name in ``configs/``.
      args: the config argument without the profile (``dimension=valence``).
      corpus: the corpus family (a ``--roots`` key).
      minutes: measured wall time of the ``quick`` profile on a 2-core CPU (the ETA's
        weights; see the README's reproduction table).
      depends: parts whose workdirs :attr:`links` reads.
      links: ``{part name: workdir} -> {dotted config field: value}``.
    """

    paper: str
    name: str
    title: str
    config: str
    args: str = ""
    corpus: str = "recola"
    minutes: float = 5.0
    depends: tuple[str, ...] = ()
    links: Links = _no_links


def _ddat_cells(dim: str, *modalities: str) -> Links:
    def links(wd: Mapping[str, Path]) -> dict[str, object]:
        cells = tuple(str(wd["ddat_paper"] / "cells" / f"{m}-{dim}") for m in modalities)
        return {"implicit.ddat_workdirs": cells}

    return links


def _sew_compare(dim: str) -> Links:
    def links(wd: Mapping[str, Path]) -> dict[str, object]:
        cells = wd["ddat_paper"] / "cells"
        return {
            "sew.compare_workdirs": {
                "DDAT audio": str(cells / f"audio-{dim}"),
                "DDAT video-geometric": str(cells / f"video_geometric-{dim}"),
                "DDAT video-appearance": str(cells / f"video_appearance-{dim}"),
                "implicit fusion": str(wd[f"implicit_recola_{dim}"]),
            }
        }

    return links


PARTS: tuple[Part, ...] = (
    Part("ddat", "ddat_paper", "DDAT: Tables I–IV, Figs. 2–4 (3 feature sets × 2 dims)",
         "ddat_paper.py", minutes=22.0),
    Part("soft_prediction", "soft_sewa", "Soft prediction: Tables 1–2, Fig. 4 (SEWA-like)",
         "sewa_soft.py", corpus="sewa", minutes=10.0),
    Part("implicit_fusion", "implicit_recola_arousal", "Implicit fusion: Table 2, arousal",
         "recola_implicit.py", "dimension=arousal", minutes=12.0, depends=("ddat_paper",),
         links=_ddat_cells("arousal", "audio", "video_geometric")),
    Part("implicit_fusion", "implicit_recola_valence", "Implicit fusion: Table 2, valence",
         "recola_implicit.py", "dimension=valence", minutes=12.0, depends=("ddat_paper",),
         links=_ddat_cells("valence", "audio", "video_geometric")),
    Part("implicit_fusion", "implicit_omg", "Implicit fusion: Table 1, Fig. 2 (OMG-like)",
         "omg_implicit.py", corpus="omg", minutes=8.0),
    Part("cer_mtl", "cer_creativeit", "CER-MTL: Table I, Fig. 2 (CreativeIT-like, 5 folds)",
         "creativeit_cer.py", corpus="creativeit", minutes=15.0),
    Part("cer_mtl", "cer_recola", "CER-MTL: Tables II–IV (RECOLA)",
         "recola_cer.py", minutes=10.0),
    Part("sew", "sew_recola_arousal", "SEW: Tables 1–3, arousal", "recola_sew.py",
         "dimension=arousal", minutes=7.0, depends=("ddat_paper", "implicit_recola_arousal"),
         links=_sew_compare("arousal")),
    Part("sew", "sew_recola_valence", "SEW: Tables 1–3, valence", "recola_sew.py",
         "dimension=valence", minutes=7.0, depends=("ddat_paper", "implicit_recola_valence"),
         links=_sew_compare("valence")),
)  # fmt: skip
"""Every part, in run order."""

PROFILES = ("full", "quick", "smoke")


def select(only: Sequence[str]) -> list[Part]:
    """The parts named in ``only`` — paper keys (all of that paper's parts) or part names —
    (all parts when empty), plus the parts they read.

    Raises:
      ValueError: naming an unknown entry and the valid ones.
    """
    by_name = {p.name: p for p in PARTS}
    unknown = [p for p in only if p not in PAPERS and p not in by_name]
    if unknown:
        raise ValueError(
            f"--only: unknown paper(s) {unknown}; valid: {list(PAPERS)} or part names "
            f"{list(by_name)}"
        )
    wanted = {p.name for p in PARTS if not only or p.paper in only or p.name in only}
    stack = list(wanted)
    while stack:
        for dep in by_name[stack.pop()].depends:
            if dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
    return [p for p in PARTS if p.name in wanted]


def config_arg(part: Part, profile: str) -> str:
    """The config argument of ``part`` under ``profile`` (``dimension=valence,quick``)."""
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}; valid: {PROFILES}")
    extra = "" if profile == "full" else profile
    return ",".join(a for a in (part.args, extra) if a)


def configs_dir() -> Path:
    """The ``configs/`` folder of the checkout this package runs from."""
    folder = Path(__file__).resolve().parents[2] / "configs"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} not found: ddat_jax.reproduce runs from a checkout of the project "
            "(the config files live in its configs/ folder); pass --configs=/path/to/configs"
        )
    return folder


def load_config(folder: Path, part: Part, profile: str) -> ml_collections.ConfigDict:
    """The part's resolved config (the config file's ``get_config(arg)``), unlocked."""
    path = folder / part.config
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file of part {part.name!r} not found")
    spec = importlib.util.spec_from_file_location(f"_reproduce_{part.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    arg = config_arg(part, profile)
    cfg = module.get_config(arg or None)
    return cfg


def set_field(cfg: ml_collections.ConfigDict, dotted: str, value: object) -> None:
    """``cfg.<dotted> = value``; raises ``KeyError`` naming a field the config lacks."""
    *path, last = dotted.split(".")
    node = cfg
    for key in path:
        if key not in node:
            raise KeyError(f"config has no section {dotted!r}")
        node = node[key]
    if last not in node:
        raise KeyError(f"config has no field {dotted!r}")
    with node.unlocked():
        node[last] = value


def part_config(
    folder: Path,
    part: Part,
    profile: str,
    workdirs: Mapping[str, Path],
    roots: Mapping[str, str],
) -> ml_collections.ConfigDict:
    """The config a part runs: its file and profile, its links, the user's corpus root."""
    cfg = load_config(folder, part, profile)
    for field, value in part.links(workdirs).items():
        set_field(cfg, field, value)
    if roots.get(part.corpus):
        set_field(cfg, "data.root", str(roots[part.corpus]))
    return cfg


def parse_roots(text: str) -> dict[str, str]:
    """``"recola=/data/AVEC2016,sewa=/data/SEWA"`` → ``{"recola": ..., "sewa": ...}``.

    Raises:
      ValueError: for an entry without ``=``, an unknown corpus or a missing folder.
    """
    out: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, path = entry.partition("=")
        if not sep or not path:
            raise ValueError(f"--roots entry {entry!r}: expected <corpus>=<folder>")
        if name not in CORPORA:
            raise ValueError(f"--roots entry {entry!r}: unknown corpus {name!r}; valid: {CORPORA}")
        if not Path(path).is_dir():
            raise ValueError(f"--roots entry {entry!r}: {path} is not a folder")
        out[name] = path
    return out
