"""``python -m ddat_jax.features``: a folder of WAV files + rating traces -> a corpus.

Example (AVEC 2016 layout, then the DDAT smoke experiment on it)::

    python -m ddat_jax.features --wav-dir wav --ratings-dir ratings --out corpus --style avec2016
    python -m ddat_jax.main --config=configs/recola_re.py:smoke --config.data.root=corpus

Prints one line per recording and a speed report (x real time); exits with status 2 and a
one-line message naming the file on a bad input (audio or ratings).
"""

from __future__ import annotations

import argparse
import sys

from ddat_jax.data.avec2016 import DataFormatError
from ddat_jax.features.audio import AudioError
from ddat_jax.features.build import GOLD_CHOICES, extract_corpus
from ddat_jax.features.extract import STYLES


def _windows(text: str | None, style: str) -> dict[str, float] | None:
    if text is None:
        return None
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:  # a bare number: the one window of every dimension
            key, value = "*", key
        out[key.strip()] = float(value)
    if style == "avec2016" and "*" in out:
        w = out.pop("*")
        out = {"arousal": w, "valence": w, **out}
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ddat_jax.features",
        description="Extract openSMILE feature streams from a folder of recordings and write "
        "a corpus that ddat_jax.data.load_corpus reads.",
    )
    p.add_argument("--wav-dir", required=True, help="folder of <stem>.wav / <stem>.flac files")
    p.add_argument(
        "--ratings-dir",
        help="folder of <dimension>/<stem>.csv rater traces (time,<rater>,...); "
        "omit for a corpus without labels",
    )
    p.add_argument("--out", required=True, help="corpus root to write")
    p.add_argument(
        "--style",
        required=True,
        choices=list(STYLES),
        help="; ".join(f"{s.name}: {s.description}" for s in STYLES.values()),
    )
    p.add_argument(
        "--frame-period",
        type=float,
        help="label frame period in s, a multiple of 0.01 (default: avec2016 0.04, sewa 0.1, "
        "mfcc 0.04)",
    )
    p.add_argument(
        "--window",
        help="functional window(s) in s: '6' or 'arousal=4,valence=6' (default: the style's)",
    )
    p.add_argument("--gold", default="ccc_centring", choices=list(GOLD_CHOICES))
    p.add_argument("--partitions", help="stem,partition CSV (CSV styles only)")
    p.add_argument("--sample-rate", type=int, default=16000, help="analysis rate in Hz")
    p.add_argument(
        "--no-resample",
        action="store_true",
        help="reject files not at --sample-rate instead of resampling them",
    )
    p.add_argument("--mixdown", action="store_true", help="average the channels of stereo files")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        extract_corpus(
            args.wav_dir,
            args.out,
            style=args.style,
            ratings_dir=args.ratings_dir,
            frame_period=args.frame_period,
            windows=_windows(args.window, args.style),
            gold=args.gold,
            partitions=args.partitions,
            sample_rate=args.sample_rate,
            resample=not args.no_resample,
            mixdown=args.mixdown,
            progress=None if args.quiet else lambda line: print(line, flush=True),
        )
    except (AudioError, DataFormatError, FileNotFoundError, ImportError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
