"""Readers that never lie: a corruption table and a fuzz of the AVEC 2016 / CSV readers.

Each case damages (or rewrites) one file of a small valid corpus and loads it with
:func:`~ddat_jax.data.corpus.load_corpus`. Expectations:

* ``error``: a corruption. Loading raises ``DataFormatError`` whose message names the damaged
  file (or, for a lost file, where it should be), says what was expected and, where the
  damage is on a line, the line number.
* ``read``: a benign variant that ordinary tools write (a BOM, CRLF, trailing spaces, ...).
  It loads arrays identical to the clean corpus.
* ``accepted``: a corruption no reader can detect; it loads, and the case documents why.

The fuzz applies random structural damage (truncation, deleted / duplicated / swapped lines,
junk bytes, non-numbers) to random files: every example must either raise such an error or
load the clean arrays. Digit edits (``0.5`` -> ``0.6``) are left out: they are valid files.

``python tests/test_readers_fuzz.py`` prints the table with the outcome of every case.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddat_jax.data.avec2016 import (
    RATERS,
    DataFormatError,
    write_arff,
    write_gold_standard,
    write_ratings,
)
from ddat_jax.data.corpus import load_corpus
from ddat_jax.data.csv_layout import write_table

T = 16
AVEC_STEMS = ("train_1", "train_2", "dev_1", "test_1")
AVEC_MODS = {"audio": 3, "video_geometric": 2}
CSV_STEMS = ("train_1", "train_2", "dev_1", "test_1")
CSV_MODS = {"egemaps": 3, "vggface": 2}
CSV_DIMS = ("arousal", "valence")
CSV_PERIOD = 0.1


# ------------------------------------------------------------------------------ corpora


def build_avec(root: Path) -> None:
    """A 4-recording AVEC 2016 corpus (test unlabelled), written by the project's writers."""
    rng = np.random.default_rng(0)
    times = np.arange(T) * 0.04
    for stem in AVEC_STEMS:
        for mod, width in AVEC_MODS.items():
            x = rng.standard_normal((T, width)).round(5)
            frame = pd.DataFrame(x, columns=[f"{mod}_{i}" for i in range(width)])
            frame.insert(0, "frameTime", times)
            write_arff(root / f"features_{mod}" / "arousal" / f"{stem}.arff", frame, "feat")
        if stem.startswith("test"):
            continue
        ratings = pd.DataFrame(rng.uniform(-1, 1, (T, 6)).round(4), columns=list(RATERS))
        ratings.insert(0, "time", times)
        write_ratings(root / "ratings_individual" / "arousal" / f"{stem}.csv", ratings)
        gold = rng.uniform(-0.5, 0.5, T).round(6)
        path = root / "ratings_gold_standard" / "arousal" / f"{stem}.arff"
        write_gold_standard(path, stem, times, gold, dimension="arousal")


def build_csv(root: Path) -> None:
    """A 4-recording corpus in the CSV layout, with partitions.csv and two dimensions."""
    rng = np.random.default_rng(1)
    times = (np.arange(T) + 1) * CSV_PERIOD
    lines = ["stem,partition"]
    for stem in CSV_STEMS:
        lines.append(f"{stem},{stem.split('_')[0]}")
        for mod, width in CSV_MODS.items():
            x = rng.standard_normal((T, width)).round(5)
            frame = pd.DataFrame(x, columns=[f"{mod}{i}" for i in range(width)])
            frame.insert(0, "time", times)
            write_table(root / "features" / mod / f"{stem}.csv", frame)
        if stem.startswith("test"):
            continue
        for dim in CSV_DIMS:
            r = pd.DataFrame(rng.uniform(-1, 1, (T, 3)).round(3), columns=["R1", "R2", "R3"])
            r.insert(0, "time", times)
            write_table(root / "ratings" / dim / f"{stem}.csv", r, sep=";")
            g = pd.DataFrame({"time": times, dim: rng.uniform(-1, 1, T).round(4)})
            write_table(root / "gold" / dim / f"{stem}.csv", g)
    (root / "partitions.csv").write_text("\n".join(lines) + "\n")


LOADS: dict[str, Callable[[Path], object]] = {
    "avec": lambda root: load_corpus(root / "avec", modality=tuple(AVEC_MODS), dimension="arousal"),
    "avec_audio": lambda root: load_corpus(root / "avec", modality="audio", dimension="arousal"),
    "csv": lambda root: load_corpus(root / "csv", modality=tuple(CSV_MODS), dimension="arousal"),
}


def build(root: Path) -> Path:
    build_avec(root / "avec")
    build_csv(root / "csv")
    return root


def snapshot(corpus) -> dict:
    """Everything a user gets from a corpus, as plain arrays."""
    out = {
        "feature_names": list(corpus.feature_names),
        "rater_names": list(corpus.rater_names),
        "frame_period": corpus.frame_period,
    }
    for part, recs in corpus.partitions.items():
        for rec in recs:
            for field in ("times", "features", "gold", "ratings", "pu"):
                out[f"{part}/{rec.name}/{field}"] = getattr(rec, field)
    return out


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or x.shape != y.shape:
                return False
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif x != y:
            return False
    return True


# --------------------------------------------------------------------------- byte edits


def lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\n")


def first_row(ls: list[bytes]) -> int:
    """Index of the first data row: after '@data' and blank lines (ARFF) or the header."""
    if any(ln.strip().lower().startswith(b"@relation") for ln in ls[:1]):
        i = next(k for k, ln in enumerate(ls) if ln.strip().lower() == b"@data") + 1
        while not ls[i].strip():
            i += 1
        return i
    return 1


def on_lines(fn: Callable[[list[bytes], int], list[bytes]]) -> Callable[[bytes], bytes]:
    """An edit of the line list; ``fn(lines, index of the first data row)``."""

    def edit(raw: bytes) -> bytes:
        ls = lines(raw)
        return b"\n".join(fn(ls, first_row(ls)))

    return edit


def on_row(k: int, fn: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Edits data row ``k`` (its text without the line ending)."""

    def edit(ls, r):
        body, cr = (ls[r + k][:-1], b"\r") if ls[r + k].endswith(b"\r") else (ls[r + k], b"")
        ls[r + k] = fn(body) + cr
        return ls

    return on_lines(edit)


def field(k: int, j: int, value: bytes, sep: bytes = b",") -> Callable[[bytes], bytes]:
    """Sets field ``j`` of data row ``k``."""

    def fn(body):
        parts = body.split(sep)
        parts[j] = value
        return sep.join(parts)

    return on_row(k, fn)


def on_header(fn: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
    return on_lines(lambda ls, r: fn(ls[:r]) + ls[r:])


def replace_line(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def fn(ls, r):
        i = next(k for k, ln in enumerate(ls) if ln.rstrip(b"\r") == old)
        ls[i] = new + (b"\r" if ls[i].endswith(b"\r") else b"")
        return ls

    return on_lines(fn)


def sub(pattern: bytes, repl: bytes, count: int = 0) -> Callable[[bytes], bytes]:
    return lambda raw: re.sub(pattern, repl, raw, count=count)


def endings(eol: bytes) -> Callable[[bytes], bytes]:
    return lambda raw: raw.replace(b"\r\n", b"\n").replace(b"\n", eol)


def chain(*edits: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def edit(raw):
        for e in edits:
            raw = e(raw)
        return raw

    return edit


def drop_rows(n: int) -> Callable[[bytes], bytes]:
    def fn(ls, r):
        end = len(ls) - 1 if not ls[-1].strip() else len(ls)
        return ls[: end - n] + ls[end:]

    return on_lines(fn)


def reencode(codec: str, bom: bool = True) -> Callable[[bytes], bytes]:
    def edit(raw):
        text = raw.decode("utf-8")
        return text.encode(codec) if bom else text.encode(codec + "-le")

    return edit


def exponent_form(line: bytes) -> bytes:
    """``0.125,-1.5`` -> ``1.25e-01,-1.5E+00``: the same numbers, as C printf writes them."""

    def fn(m):
        x = float(m[0])
        return (b"%.5e" if x >= 0 else b"%.5E") % x

    return re.sub(rb"(?<![\w.])-?\d+\.\d+(?![\w.])", fn, line)


DELETE = None  # as an edit: remove the file


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    file: str  # relative to the build root
    edit: Callable[[bytes], bytes] | None
    expect: str  # "error" | "read" | "accepted"
    line: bool = False  # the message must give a line number
    names: str | None = None  # the path the message must name (default: file)
    load: str | None = None  # key of LOADS (default: from the file's layout)
    why: str = ""


FA = "avec/features_audio/arousal/train_1.arff"
FV = "avec/features_video_geometric/arousal/train_1.arff"
FT = "avec/features_audio/arousal/test_1.arff"
GA = "avec/ratings_gold_standard/arousal/train_1.arff"
RA = "avec/ratings_individual/arousal/train_1.csv"
R2 = "avec/ratings_individual/arousal/train_2.csv"
G2 = "avec/ratings_gold_standard/arousal/train_2.arff"
CF = "csv/features/egemaps/train_1.csv"
CR = "csv/ratings/arousal/train_1.csv"
CG = "csv/gold/arousal/train_1.csv"
CP = "csv/partitions.csv"

E, R, A = "error", "read", "accepted"

CASES: list[Case] = [
    # --- feature ARFF: truncation, lines, values, separators, header, time, encoding
    Case("arff truncated mid-file", FA, lambda b: b[: len(b) // 2], E, line=True),
    Case("arff truncated inside the last value", FA, lambda b: b.rstrip()[:-2], E, line=True),
    Case("arff truncated at a line end", FA, drop_rows(3), E),
    Case("arff truncated after '@data'", FA, lambda b: b[: b.index(b"@data") + 7], E),
    Case("arff empty", FA, lambda b: b"", E),
    Case("arff row deleted", FA, on_lines(lambda ls, r: ls[: r + 4] + ls[r + 5 :]), E, line=True),
    Case("arff row duplicated", FA, on_lines(lambda ls, r: ls[: r + 5] + ls[r + 4 :]), E, True),
    Case(
        "arff rows swapped",
        FA,
        on_lines(lambda ls, r: ls[: r + 3] + [ls[r + 4], ls[r + 3]] + ls[r + 5 :]),
        E,
        line=True,
    ),
    Case("arff two rows merged", FA, on_row(2, lambda b: b + b"," + b), E, line=True),
    Case("arff value not a number", FA, field(3, 1, b"abc"), E, line=True),
    Case("arff value 'inf'", FA, field(3, 1, b"inf"), E, line=True),
    Case("arff value '-Infinity'", FA, field(3, 2, b"-Infinity"), E, line=True),
    Case("arff value 1e999 (beyond float64)", FA, field(3, 1, b"1e999"), E, line=True),
    Case("arff value 1e39 (beyond float32)", FA, field(3, 1, b"1e39"), E, line=True),
    Case("arff value with digit groups '1_000'", FA, field(3, 1, b"1_000"), E, line=True),
    Case("arff value hexadecimal '0x1F'", FA, field(3, 1, b"0x1F"), E, line=True),
    Case("arff empty field", FA, field(3, 1, b""), E, line=True),
    Case("arff decimal comma", FA, field(3, 1, b"0,5"), E, line=True),
    Case("arff row ';'-separated", FA, on_row(3, lambda b: b.replace(b",", b";")), E, True),
    Case("arff row tab-separated", FA, on_row(3, lambda b: b.replace(b",", b"\t")), E, True),
    Case("arff trailing comma on a row", FA, on_row(3, lambda b: b + b","), E, line=True),
    Case("arff field missing on a row", FA, on_row(3, lambda b: b.rsplit(b",", 1)[0]), E, True),
    Case("arff attribute line deleted", FA, sub(rb"@attribute audio_2 numeric\r\n", b""), E),
    Case(
        "arff attribute line added",
        FA,
        sub(rb"(@attribute audio_2 numeric\r\n)", rb"\1@attribute extra numeric\r\n"),
        E,
    ),
    Case("arff '@data' missing", FA, sub(rb"@data\r\n", b""), E, line=True),
    Case("arff '@relation' missing", FA, sub(rb"@relation feat\r\n", b""), E, line=True),
    Case("arff file concatenated twice", FA, lambda b: b + b, E, line=True),
    Case("arff feature renamed", FA, sub(rb"audio_1 numeric", b"audio_9 numeric"), E),
    Case(
        "arff two feature columns swapped in the header",
        FA,
        chain(
            sub(rb"audio_1 numeric", b"tmp numeric"),
            sub(rb"audio_2 numeric", b"audio_1 numeric"),
            sub(rb"tmp numeric", b"audio_2 numeric"),
        ),
        E,
    ),
    Case("arff string attribute", FA, sub(rb"audio_1 numeric", b"audio_1 string"), E),
    Case("arff time value changed", FA, field(5, 0, b"0.22"), E, line=True),
    Case("arff time missing '?'", FA, field(5, 0, b"?"), E, line=True),
    Case("arff time 'nan'", FA, field(5, 0, b"nan"), E, line=True),
    Case(
        "arff times in milliseconds",
        FA,
        on_lines(
            lambda ls, r: (
                ls[:r]
                + [re.sub(rb"^[^,]+", lambda m: b"%g" % (float(m[0]) * 1000), ln) for ln in ls[r:]]
            )
        ),
        E,
    ),
    Case(
        "arff times offset by one frame",
        FA,
        on_lines(
            lambda ls, r: (
                ls[:r]
                + [re.sub(rb"^[^,]+", lambda m: b"%g" % (float(m[0]) + 0.04), ln) for ln in ls[r:]]
            )
        ),
        E,
    ),
    Case("arff NUL byte", FA, field(3, 1, b"0\x00"), E, line=True),
    Case("arff UTF-16 without a byte-order mark", FA, reencode("utf-16", bom=False), E, True),
    Case("arff invalid UTF-8 in a value", FA, field(3, 1, b"0.5\xe9"), E, line=True),
    Case("arff lone CR inside a row", FA, on_row(3, lambda b: b.replace(b",", b"\r", 1)), E, True),
    Case(
        "arff file missing (one feature set)",
        FA,
        DELETE,
        E,
        names="avec/features_audio/arousal",
    ),
    # --- gold-standard ARFF
    Case("gold Instance_name of another recording", GA, field(4, 0, b"train_2"), E, line=True),
    Case(
        "gold relation of the other dimension",
        GA,
        sub(rb"GOLDSTANDARD_AROUSAL", b"GOLDSTANDARD_VALENCE"),
        E,
        line=True,
    ),
    Case("gold value '?'", GA, field(4, 2, b"?"), E, line=True),
    Case("gold value 'nan'", GA, field(4, 2, b"nan"), E, line=True),
    Case("gold value 'inf'", GA, field(4, 2, b"inf"), E, line=True),
    Case("gold value not a number", GA, field(4, 2, b"x"), E, line=True),
    Case("gold truncated inside the last value", GA, lambda b: b.rstrip()[:-3], E, line=True),
    Case("gold last row deleted", GA, drop_rows(1), E),
    Case(
        "gold attributes frameTime/GoldStandard swapped",
        GA,
        chain(
            sub(rb"frameTime numeric", b"tmp numeric"),
            sub(rb"GoldStandard numeric", b"frameTime numeric"),
            sub(rb"tmp numeric", b"GoldStandard numeric"),
        ),
        E,
    ),
    Case(
        "gold extra column",
        GA,
        on_lines(lambda ls, r: ls[:r] + [ln[:-1] + b",0\r" if ln.strip() else ln for ln in ls[r:]]),
        E,
        line=True,
    ),
    Case("gold file missing", G2, DELETE, E),
    # --- individual ratings CSV
    Case(
        "ratings header ','-separated",
        RA,
        on_lines(lambda ls, r: [ls[0].replace(b";", b",")] + ls[1:]),
        E,
        line=True,
    ),
    Case("ratings rater renamed", RA, sub(rb"FM2 ;", b"FM7 ;"), E),
    Case("ratings raters swapped in the header", RA, sub(rb"FM1 ;FM2 ;", b"FM2 ;FM1 ;"), E),
    Case(
        "ratings rater column removed",
        RA,
        on_lines(
            lambda ls, r: [
                ln.rsplit(b";", 1)[0] + (b"\r" if ln.endswith(b"\r") else b"") if ln.strip() else ln
                for ln in ls
            ]
        ),
        E,
    ),
    Case("ratings value 'inf'", RA, field(2, 3, b"inf", b";"), E, line=True),
    Case("ratings value '?'", RA, field(2, 3, b"?", b";"), E, line=True),
    Case("ratings value 1e39 (beyond float32)", RA, field(2, 3, b"1e39", b";"), E, line=True),
    Case("ratings decimal comma", RA, field(2, 3, b"0,25", b";"), E, line=True),
    Case("ratings empty field", RA, field(2, 3, b"", b";"), E, line=True),
    Case("ratings truncated inside the last value", RA, lambda b: b.rstrip()[:-2], E, line=True),
    Case("ratings row duplicated", RA, on_lines(lambda ls, r: ls[:4] + ls[3:]), E, line=True),
    Case("ratings extra field", RA, on_row(2, lambda b: b + b";0.1"), E, line=True),
    Case("ratings time not a number", RA, field(2, 0, b"t", b";"), E, line=True),
    Case("ratings header only", RA, lambda b: b[: b.index(b"\n") + 1], E),
    Case("ratings header missing", RA, lambda b: b[b.index(b"\n") + 1 :], E, line=True),
    Case("ratings file missing", R2, DELETE, E),
    # --- CSV layout
    Case("csv features value 'inf'", CF, field(2, 1, b"inf"), E, line=True),
    Case("csv features truncated inside the last value", CF, lambda b: b.rstrip()[:-2], E, True),
    Case("csv features row ';'-separated", CF, on_row(2, lambda b: b.replace(b",", b";")), E, True),
    Case(
        "csv features header one column longer",
        CF,
        sub(rb"egemaps2\n", b"egemaps2,x\n", 1),
        E,
        line=True,
    ),
    Case("csv features time column renamed", CF, sub(rb"^time", b"frame"), E, line=True),
    Case("csv features duplicate column names", CF, sub(rb"egemaps2", b"egemaps1", 1), E, True),
    Case("csv features column renamed", CF, sub(rb"egemaps2", b"egemaps7", 1), E),
    Case("csv ratings 'NA'", CR, field(2, 1, b"NA", b";"), E, line=True),
    Case("csv ratings rater renamed", CR, sub(rb"R2", b"R9", 1), E),
    Case("csv gold 'nan'", CG, field(2, 1, b"nan"), E, line=True),
    Case(
        "csv gold three columns",
        CG,
        on_lines(lambda ls, r: [ln + b",1" if ln else ln for ln in ls]),
        E,
    ),
    Case("csv gold named after the other dimension", CG, sub(rb"arousal", b"valence", 1), E, True),
    Case("partitions.csv recording missing", CP, sub(rb"dev_1,dev\n", b""), E),
    Case("partitions.csv lists a recording without files", CP, lambda b: b + b"dev_2,dev\n", E),
    Case("partitions.csv recording listed twice", CP, lambda b: b + b"dev_1,dev\n", E, line=True),
    Case("partitions.csv bad header", CP, sub(rb"stem,partition", b"name,set"), E, line=True),
    Case("partitions.csv truncated last line", CP, lambda b: b.rstrip()[:-2], E, line=True),
    Case("partitions.csv damaged partition name", CP, sub(rb"train_2,train", b"train_2,trian"), E),
    Case("partitions.csv line without partition", CP, sub(rb"dev_1,dev", b"dev_1"), E, line=True),
    # --- benign variants: must read exactly the clean arrays
    Case("arff UTF-8 byte-order mark", FA, lambda b: b"\xef\xbb\xbf" + b, R),
    Case("gold UTF-8 byte-order mark", GA, lambda b: b"\xef\xbb\xbf" + b, R),
    Case("ratings UTF-8 byte-order mark", RA, lambda b: b"\xef\xbb\xbf" + b, R),
    Case("arff LF line endings", FA, endings(b"\n"), R),
    Case("gold LF line endings", GA, endings(b"\n"), R),
    Case("ratings LF line endings", RA, endings(b"\n"), R),
    Case("arff CR-only line endings (classic Mac)", FA, endings(b"\r"), R),
    Case("ratings CR-only line endings (Excel 'CSV Macintosh')", RA, endings(b"\r"), R),
    Case("arff UTF-16 with byte-order mark", FA, reencode("utf-16"), R),
    Case("ratings UTF-16 with byte-order mark (Excel 'Unicode text')", RA, reencode("utf-16"), R),
    Case("arff trailing spaces on every line", FA, sub(rb"\r\n", b"  \t\r\n"), R),
    Case("arff trailing blank lines", FA, lambda b: b + b"\r\n\r\n  \r\n", R),
    Case(
        "gold trailing spaces and blank lines",
        GA,
        lambda b: b.replace(b"\r\n", b" \r\n") + b"\r\n",
        R,
    ),
    Case(
        "ratings trailing spaces and blank lines",
        RA,
        lambda b: b.replace(b"\r\n", b" \r\n") + b"\r\n\r\n",
        R,
    ),
    Case(
        "arff spaces after commas",
        FA,
        on_lines(lambda ls, r: ls[:r] + [ln.replace(b",", b", ") for ln in ls[r:]]),
        R,
    ),
    Case(
        "arff '%' comments in the header and data",
        FA,
        chain(sub(rb"@data", b"% comment\r\n@data"), on_row(4, lambda b: b"% note\r\n" + b)),
        R,
    ),
    Case("arff blank lines between rows", FA, on_row(4, lambda b: b"\r\n" + b), R),
    Case(
        "arff upper-case keywords, REAL type",
        FA,
        lambda b: (
            b.replace(b"@relation", b"@RELATION")
            .replace(b"@attribute", b"@ATTRIBUTE")
            .replace(b"numeric", b"REAL")
            .replace(b"@data", b"@DATA")
        ),
        R,
    ),
    Case("arff quoted attribute names", FA, sub(rb"@attribute (\w+)", rb"@attribute '\1'"), R),
    Case("arff time attribute spelled 'frametime'", FA, sub(rb"frameTime", b"frametime"), R),
    Case(
        "arff values in exponent form",
        FA,
        on_lines(lambda ls, r: ls[:r] + [exponent_form(ln) for ln in ls[r:]]),
        R,
    ),
    Case(
        "gold relation 'GOLDSTANDARD' (AVEC 2018)",
        GA,
        sub(rb"GOLDSTANDARD_AROUSAL", b"GOLDSTANDARD"),
        R,
    ),
    Case("gold quoted instance names", GA, sub(rb"\ntrain_1,", b"\n'train_1',"), R),
    Case("ratings header without trailing spaces", RA, sub(rb" ;", b";"), R),
    Case(
        "ratings header and values double-quoted",
        RA,
        on_lines(
            lambda ls, r: [
                b";".join(b'"%s"' % f for f in ln.rstrip(b"\r").split(b";")) + b"\r"
                if ln.strip()
                else ln
                for ln in ls
            ]
        ),
        R,
    ),
    Case("csv CRLF line endings", CF, endings(b"\r\n"), R),
    Case("csv UTF-8 byte-order mark", CF, lambda b: b"\xef\xbb\xbf" + b, R),
    Case(
        "csv all fields double-quoted",
        CF,
        on_lines(
            lambda ls, r: [
                b",".join(b'"%s"' % f for f in ln.split(b",")) if ln else ln for ln in ls
            ]
        ),
        R,
    ),
    Case("csv tab-separated", CF, lambda b: b.replace(b",", b"\t"), R),
    Case("csv ';'-separated", CF, lambda b: b.replace(b",", b";"), R),
    Case("csv trailing spaces", CF, sub(rb"\n", b" \n"), R),
    Case("csv UTF-16 with byte-order mark", CF, reencode("utf-16"), R),
    Case("csv CR-only line endings", CF, endings(b"\r"), R),
    Case("csv time column 'frameTime'", CF, sub(rb"^time", b"frameTime"), R),
    Case(
        "partitions.csv BOM and CRLF", CP, lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"), R
    ),
    Case("partitions.csv without a final line break", CP, lambda b: b.rstrip(), R),
    Case(
        "partitions.csv quoted and ';'-separated",
        CP,
        lambda b: re.sub(rb"([^,\n]+),([^,\n]+)", rb'"\1";"\2"', b),
        R,
    ),
    # --- corruptions no reader can detect
    Case(
        "a digit changed inside a value",
        FA,
        field(3, 1, b"0.12345"),
        A,
        why="a valid number in a valid file: only the writer knew the intended value",
    ),
    Case(
        "an unlabelled single-feature-set recording cut at a line end",
        FT,
        drop_rows(3),
        A,
        load="avec_audio",
        why="nothing to compare its length with: a shorter recording is a valid recording",
    ),
    Case(
        "a rating outside the [-1, 1] scale",
        RA,
        field(2, 3, b"5", b";"),
        A,
        why="the rating scale is corpus-specific; range checks belong to the user",
    ),
]


# ------------------------------------------------------------------------------ running


_CLEAN: dict[tuple[Path, str], dict] = {}


def clean(root: Path, load: str) -> dict:
    """The arrays of the undamaged corpus (computed once per root and load)."""
    if (root, load) not in _CLEAN:
        _CLEAN[root, load] = snapshot(LOADS[load](root))
    return _CLEAN[root, load]


def run_case(case: Case, root: Path) -> tuple[str, str]:
    """Applies ``case`` to the corpus at ``root``, loads it, restores it: ``(outcome, detail)``.

    outcome: ``error`` (a clear DataFormatError), ``unclear error`` (an exception that does
    not name the file, the line or what was expected), ``read`` (the clean arrays) or
    ``different`` (other arrays, silently).
    """
    load = case.load or case.file.split("/")[0]
    reference = clean(root, load)
    path = root / case.file
    raw = path.read_bytes()
    try:
        if case.edit is DELETE:
            path.unlink()
        else:
            path.write_bytes(case.edit(raw))
        loaded = snapshot(LOADS[load](root))
    except Exception as err:  # noqa: BLE001 - every failure is classified
        msg = str(err)
        named = str(root / (case.names or case.file))
        clear = (
            isinstance(err, DataFormatError)
            and named in msg
            and "expected" in msg
            and (not case.line or re.search(r", line \d+", msg) is not None)
        )
        return ("error" if clear else "unclear error"), f"{type(err).__name__}: {msg}"
    finally:
        path.write_bytes(raw)
    return ("read" if same(loaded, reference) else "different"), ""


WANT = {"error": "error", "read": "read", "accepted": "different"}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("fuzz"))


def test_clean_corpora_load(corpora):
    assert len(clean(corpora, "avec")) == 3 + 4 * 5
    assert len(clean(corpora, "csv")) == 3 + 4 * 5


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corruption_table(corpora, case):
    outcome, detail = run_case(case, corpora)
    assert outcome == WANT[case.expect], f"{case.name}: {outcome} {detail}"


def test_table_size():
    counts = {k: sum(c.expect == k for c in CASES) for k in ("error", "read", "accepted")}
    assert counts["error"] >= 80 and counts["read"] >= 30, counts


# --------------------------------------------------------------------------------- fuzz

_FILES = [FA, FV, FT, GA, RA, CF, CR, CG, CP, "csv/features/vggface/test_1.csv"]
# Bytes whose insertion or substitution can never turn a value into another valid value
# (no digits, signs, '.', 'e' or 'E'; white space only inserted, never substituted).
_JUNK = [b"x", b"#", b"|", b";", b",", b"\t", b"\x00", b"\xff", b"'", b'"', b"\n", b"\r", b"%"]
_BAD_TOKENS = [b"inf", b"-inf", b"1e999", b"1e39", b"abc", b"1_0", b"0x1", b"--1", b"1..0"]
_SAFE_TO_DELETE = re.compile(rb"[^0-9.+\-eE]")


@st.composite
def damage(draw):
    file = draw(st.sampled_from(_FILES))
    op = draw(
        st.sampled_from(
            ["truncate", "del_line", "dup_line", "swap", "insert", "subst", "delete", "token"]
        )
    )
    return (
        file,
        op,
        draw(st.integers(0, 10**6)),
        draw(st.integers(0, 10**6)),
        draw(st.sampled_from(_JUNK + [b" "])),
        draw(st.sampled_from(_BAD_TOKENS)),
    )


def apply_damage(raw: bytes, op: str, a: int, b: int, junk: bytes, token: bytes) -> bytes | None:
    """The damaged bytes, or None when the draw does not apply (no change)."""
    ls = raw.split(b"\n")
    if op == "truncate":
        return raw[: a % len(raw)]
    if op in ("del_line", "dup_line", "swap"):
        i, j = a % len(ls), b % len(ls)
        if op == "del_line":
            return b"\n".join(ls[:i] + ls[i + 1 :])
        if op == "dup_line":
            return b"\n".join(ls[: i + 1] + ls[i:])
        if ls[i] == ls[j]:
            return None
        ls[i], ls[j] = ls[j], ls[i]
        return b"\n".join(ls)
    if op == "insert":
        p = a % (len(raw) + 1)
        return raw[:p] + junk + raw[p:]
    if op == "subst":
        p = a % len(raw)
        if junk in b" \t\r\n" or raw[p : p + 1] == junk:  # white space for the last digit
            return None  # of a number is the same as deleting that digit
            return None
        return raw[:p] + junk + raw[p + 1 :]
    if op == "delete":
        p = a % len(raw)
        if not _SAFE_TO_DELETE.fullmatch(raw[p : p + 1]):
            return None
        return raw[:p] + raw[p + 1 :]
    # token: replace one number of a data row by a token that is not a valid value
    numbers = [m for m in re.finditer(rb"(?<=[,;\n])-?\d+(?:\.\d+)?(?:e-?\d+)?(?=[,;\r\n])", raw)]
    if not numbers:
        return None
    m = numbers[a % len(numbers)]
    return raw[: m.start()] + token + raw[m.end() :]


# DDAT_FUZZ_EXAMPLES=5000 runs a longer, random fuzz; by default the same 150 examples.
_EXAMPLES = int(os.environ.get("DDAT_FUZZ_EXAMPLES", "0"))


@settings(
    max_examples=_EXAMPLES or 150,
    deadline=None,
    derandomize=not _EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(damage())
def test_fuzz_structural_damage(corpora, draw):
    file, op, a, b, junk, token = draw
    path = corpora / file
    raw = path.read_bytes()
    damaged = apply_damage(raw, op, a, b, junk, token)
    if damaged is None or damaged == raw:
        return
    case = Case(f"fuzz {op}", file, lambda _b: damaged, "error")
    outcome, detail = run_case(case, corpora)
    assert outcome in ("error", "read"), f"{file} {op}: {outcome} {detail}\n{damaged[:400]!r}"


# ------------------------------------------------------------------------------ summary


def main() -> None:
    """Prints every case with its outcome, then the counts (the evidence of issue 11)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = build(Path(tmp))
        rows = []
        for case in CASES:
            outcome, detail = run_case(case, root)
            rows.append((case, outcome, detail.replace(str(root) + "/", "")))
        shutil.rmtree(root, ignore_errors=True)
    for case, outcome, detail in rows:
        flag = "ok " if outcome == WANT[case.expect] else "BAD"
        print(f"{flag} {case.expect:<8} {outcome:<13} {case.name}")
        if detail and "-v" in sys.argv:
            print(f"      {detail[:300]}")
    for expect in ("error", "read", "accepted"):
        group = [(c, o) for c, o, _ in rows if c.expect == expect]
        good = sum(o == WANT[expect] for _, o in group)
        print(f"{expect}: {len(group)} cases, {good} as expected")


if __name__ == "__main__":
    main()
