"""The DDAT paper's published numbers, typed in once (for the "paper vs here" tables).

Source: Z. Zhang, J. Han, E. Coutinho, B. Schuller, "Dynamic Difficulty Awareness
Training for Continuous Emotion Prediction", IEEE Transactions on Multimedia, 2019 —
Table I (CCC before post-processing), Table II (after), Table III (PCCs among ε, µ and
Δc), Table IV (late fusion across the three feature sets). RECOLA / AVEC 2016 data.

Column order of the Table I/II rows: for each feature set (audio-eGeMAPS,
video-appearance, video-geometric) × dimension (arousal, valence) × partition (dev, test).
A ``*`` in the paper marks DDAT significantly better than the MTL model of the same
auxiliary task (Fisher r-to-z, one-tailed, p < .05); it is kept in ``MARKED_*``.
"""

from __future__ import annotations

FEATURE_SETS = ("audio", "video_appearance", "video_geometric")
FEATURE_SET_NAMES = {
    "audio": "audio-eGeMAPS",
    "video_appearance": "video-appearance",
    "video_geometric": "video-geometric",
}
DIMENSIONS = ("arousal", "valence")
PARTS = ("dev", "test")


def _row(text: str) -> tuple[tuple[float, bool], ...]:
    """``".745 .605* ..."`` → ``((0.745, False), (0.605, True), ...)``."""
    return tuple((float(t.rstrip("*")), t.endswith("*")) for t in text.split())


# system key → 12 cells (value, marked) in column order
TABLE1 = {
    "stl": _row(".743 .617 .460 .380 .501 .416 .481 .391 .407 .256 .598 .403"),
    "mtl_re": _row(".743 .590 .513 .298 .472 .434 .512 .351 .429 .283 .632 .487"),
    "mtl_pu": _row(".727 .613 .485 .417 .459 .426 .444 .342 .442 .284 .630 .444"),
    "ddat_re_vector": _row(".745 .605* .485 .374* .473 .429 .482 .326 .509* .299* .627 .464"),
    "ddat_re_sum": _row(".783* .671* .495 .410* .487* .464* .507 .460* .478* .359* .633 .467"),
    "ddat_pu": _row(".769* .623* .493 .397 .478* .457* .476* .412* .450 .336* .629 .500*"),
    "dnn": _row(".216 .362 .003 .004 .265 .173 .294 .174 .017 .011 .193 .128"),
    "cl_dnn": _row(".445 .533 .018 .006 .402 .292 .437 .444 .199 .116 .271 .245"),
    "cl_gru": _row(".711 .600 .494 .335 .406 .366 .547 .479 .392 .291 .582 .497"),
}
TABLE2 = {
    "stl": _row(".783 .652 .473 .400 .528 .403 .493 .404 .523 .314 .620 .417"),
    "mtl_re": _row(".788 .629 .519 .331 .512 .425 .529 .366 .502 .324 .632 .488"),
    "mtl_pu": _row(".803 .654 .506 .416 .502 .406 .468 .418 .508 .327 .643 .452"),
    "ddat_re_vector": _row(".806* .676* .517 .378* .533* .434 .520 .329 .559* .355* .634 .473"),
    "ddat_re_sum": _row(".807* .694* .508 .422* .539* .437* .528 .457* .544* .400* .639 .471"),
    "ddat_pu": _row(".811 .664* .498 .407 .518* .438* .514* .431* .513 .397* .632 .501*"),
    "dnn": _row(".573 .517 .129 .044 .387 .220 .306 .206 .312 .296 .362 .216"),
    "cl_dnn": _row(".687 .591 .159 .174 .417 .343 .446 .419 .394 .267 .300 .269"),
    "cl_gru": _row(".754 .611 .501 .357 .491 .391 .557 .492 .444 .336 .609 .500"),
}

# Table III: pair → feature set → (aro dev, aro test, val dev, val test)
TABLE3 = {
    "PCC(ε, Δc)": {
        "audio": (0.128, 0.180, 0.078, 0.114),
        "video_appearance": (0.139, 0.371, 0.304, 0.263),
        "video_geometric": (0.140, 0.155, 0.044, 0.090),
    },
    "PCC(µ, Δc)": {
        "audio": (0.150, 0.181, 0.150, 0.181),
        "video_appearance": (0.205, 0.173, 0.383, 0.440),
        "video_geometric": (0.101, -0.104, 0.310, 0.103),
    },
    "PCC(ε, µ)": {
        "audio": (0.150, 0.072, 0.040, -0.024),
        "video_appearance": (-0.077, 0.060, -0.077, 0.059),
        "video_geometric": (0.127, 0.071, 0.050, 0.021),
    },
}

# Table IV: row → (aro dev, aro test, val dev, val test)
TABLE4 = {
    "P_re": (0.822, 0.690, 0.705, 0.584),
    "P_pu": (0.853, 0.763, 0.738, 0.615),
    "P_bs": (0.838, 0.715, 0.738, 0.615),
    "P_re + P_pu": (0.860, 0.761, 0.755, 0.639),
    "P_re + P_pu + P_bs": (0.864, 0.752, 0.766, 0.653),
    "P_re,dt": (0.853, 0.761, 0.739, 0.621),
    "P_pu,dt": (0.819, 0.721, 0.733, 0.631),
    "P_re,dt + P_pu,dt": (0.856, 0.766, 0.756, 0.651),
    "P_re,dt + P_pu,dt + P_bs": (0.863, 0.754, 0.766, 0.660),
}


def columns() -> list[tuple[str, str, str]]:
    """The 12 (feature set, dimension, partition) columns of Tables I/II, paper order."""
    return [(f, d, p) for f in FEATURE_SETS for d in DIMENSIONS for p in PARTS]


def table_value(table: dict, system: str, fs: str, dim: str, part: str):
    """``(value, marked)`` of one cell of TABLE1/TABLE2, or None for a system not listed."""
    if system not in table:
        return None
    return table[system][columns().index((fs, dim, part))]
