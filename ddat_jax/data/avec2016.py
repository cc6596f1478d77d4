"""Readers and writers for the AVEC 2016 RECOLA file formats.

Formats (see the AVEC 2016 package description):

* Feature ARFF ``features_<modality>/<dimension>/<stem>.arff``: the frame time first
  (``frameTime`` or ``frametime``), then N numeric features, no class attribute; ``?`` is a
  missing value.
* Gold standard ARFF ``ratings_gold_standard/<dimension>/<stem>.arff``: attributes
  ``Instance_name string``, ``frameTime numeric``, ``GoldStandard numeric``; 9 header lines,
  CRLF line endings.
* Individual ratings CSV ``ratings_individual/<dimension>/<stem>.csv``: ``;``-separated, header
  ``time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3`` (trailing spaces after all raters but the last).

Reading is fast: the header is parsed line by line, the data block goes to the C engine of
``pandas.read_csv`` as bytes (a 632-feature x 7501-frame ARFF reads in a fraction of a second,
see ``tools/bench_io.py``). Every malformed input raises :class:`DataFormatError` naming the
file, the line (1-based) or column, and what was expected; no malformed input is read as other
numbers than the ones written. In particular: a file must end with a line break (without one
its last line may be truncated), values must be finite (``inf``, ``1e999`` are errors; ``?`` is
a missing value in feature files only), and NUL bytes or lone CRs between lines are errors.
What ordinary tools write reads: LF, CRLF or CR-only line endings, a UTF-8 byte-order mark,
UTF-16 with a byte-order mark, trailing spaces, blank or ``%`` comment lines.

Writers are atomic (temporary file in the same folder, then ``os.replace``) and write CRLF line
endings like the organisers' MATLAB ``arffwrite``. Every line, the last one included, ends with
CRLF; there is no blank line at the end.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ddat_jax.atomic import write_bytes as _atomic_write

__all__ = [
    "DIMENSIONS",
    "FRAME_PERIOD",
    "MODALITIES",
    "PARTITIONS",
    "RATERS",
    "DataFormatError",
    "check_time_grid",
    "read_arff",
    "read_gold_standard",
    "read_ratings",
    "write_arff",
    "write_gold_standard",
    "write_ratings",
]

MODALITIES: dict[str, int] = {
    "audio": 88,
    "video_appearance": 168,
    "video_geometric": 632,
    "ECG": 19,
    "HRHRV": 10,
    "EDA": 8,
    "SCL": 8,
    "SCR": 8,
}
"""Feature sets of AVEC 2016 and their number of features (folder ``features_<name>``)."""

DIMENSIONS: tuple[str, ...] = ("arousal", "valence")
RATERS: tuple[str, ...] = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")
PARTITIONS: tuple[str, ...] = ("train", "dev", "test")
FRAME_PERIOD: float = 0.04
"""Frame period of the AVEC 2016 features and labels, in seconds."""

_TIME_NAMES = ("frametime", "time")
_NUMERIC_TYPES = ("numeric", "real", "integer")
_NAN_TOKENS = ["?", "nan", "NaN", "NAN"]


class DataFormatError(ValueError):
    """A file does not have the expected format.

    The message names the file, the line (1-based) or column, and what was expected.
    """


def _where(path: str | os.PathLike, line: int | None = None) -> str:
    return f"{path}, line {line}" if line is not None else f"{path}"


# ----------------------------------------------------------------------------- reading helpers


_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _line_of(raw: bytes, pos: int) -> int:
    return raw.count(b"\n", 0, pos) + 1


def _read_bytes(path: str | os.PathLike) -> bytes:
    """Reads a text file as UTF-8 bytes with LF or CRLF line endings.

    What ordinary tools write is accepted: a UTF-8 byte-order mark is dropped, a UTF-16 or
    UTF-32 file with a byte-order mark (Excel's "Unicode text") is re-encoded to UTF-8, and a
    file whose lines all end with a lone CR (Excel's "CSV (Macintosh)") gets LF endings.
    Line numbers are unchanged by all three.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: a NUL byte (a binary file, or UTF-16 without a byte-order mark), or a
            lone CR between LF-terminated lines (a damaged line break).
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    else:
        for bom, codec in _BOMS:
            if raw.startswith(bom):
                try:
                    raw = raw.decode(codec).encode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataFormatError(
                        f"{path}: starts with a {codec.upper()} byte-order mark but is not valid "
                        f"{codec.upper()} ({err.reason} at byte {err.start}); expected UTF-8 text"
                    ) from None
                break
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataFormatError(
            f"{_where(path, _line_of(raw, nul))}: found a NUL byte; expected UTF-8 text (a "
            "binary file, or UTF-16 saved without a byte-order mark?)"
        )
    lone = re.search(rb"\r(?!\n)", raw) if b"\r" in raw else None
    if lone is not None:
        if b"\n" not in raw:
            return raw.replace(b"\r", b"\n")
        if raw[lone.end() :].strip():
            raise DataFormatError(
                f"{_where(path, _line_of(raw, lone.start()))}: found a carriage return (CR) "
                "inside the line; expected LF or CRLF line endings (a damaged line break?)"
            )
    return raw


def _require_final_line_break(path, raw: bytes) -> None:
    """A data file must end with a line break: without one, its last line may be truncated.

    Every writer of these formats (MATLAB ``arffwrite``, Weka, openSMILE, pandas, numpy,
    Excel) ends the last line with one; a file cut short while it was copied or written
    usually does not, and its last value then reads as another valid number (``0.123456``
    cut to ``0.12``). Trailing spaces and blank lines after the last line break are fine.
    """
    end = len(raw)
    while end and raw[end - 1] in b" \t":
        end -= 1
    if end and raw[end - 1] not in b"\r\n":
        raise DataFormatError(
            f"{_where(path, _line_of(raw, end - 1))}: the file does not end with a line break, "
            "so its last line may be truncated; expected every line, the last one included, to "
            "end with a line break (add one at the end if the file is complete)"
        )


def _decode(raw: bytes, path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        return name[1:-1]
    return name


_SKIPPED_LINE = re.compile(rb"\n[ \t\r]*(?:%|\n|\Z)")


class _Block:
    """The data rows of a file: the bytes for the CSV parser and the file line of each row.

    The individual lines are split only when needed (skipped lines inside the block, or an
    error to locate), so the common case costs a few C-level scans of the buffer and no copy.
    """

    def __init__(self, data: bytes | memoryview, first_line: int):
        data = memoryview(data)
        # Leading blank/comment lines (e.g. the blank line after '@data') are skipped cheaply.
        pos, n = 0, len(data)
        while pos < n:
            c = data[pos]
            if c == 10:  # '\n'
                first_line += 1
                pos += 1
            elif c in (9, 13, 32):
                pos += 1
            elif c == 37:  # '%': a comment line
                end = bytes(data[pos : pos + (1 << 16)]).find(b"\n")
                if end < 0:
                    end = bytes(data[pos:]).find(b"\n")
                pos = n if end < 0 else pos + end
            else:
                break
        stop = len(data)
        while stop > pos and data[stop - 1] in b" \t\r\n":
            stop -= 1
        self.block = data[pos:stop]
        self.first_line = first_line
        self._lines: list[bytes] | None = None
        self._numbers: np.ndarray | None = None
        if stop > pos and _SKIPPED_LINE.search(self.block) is not None:
            lines = bytes(self.block).split(b"\n")
            keep = [i for i, ln in enumerate(lines) if ln.strip() and ln.lstrip()[:1] != b"%"]
            self._lines = [lines[i] for i in keep]
            self.block = memoryview(b"\n".join(self._lines))
            self._numbers = np.asarray(keep, dtype=np.int64) + first_line

    def __bool__(self) -> bool:
        return len(self.block) > 0

    def numbers(self, n_rows: int | None = None) -> np.ndarray:
        """1-based file line of every row, ``[rows]``."""
        if self._numbers is None:
            if n_rows is None:
                n_rows = len(self.lines)
            return np.arange(n_rows, dtype=np.int64) + self.first_line
        return self._numbers

    @property
    def lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = bytes(self.block).split(b"\n")
        return self._lines

    def count(self, token: bytes) -> int:
        return sum(chunk.count(token) for chunk in self._chunks())

    def contains(self, token: bytes) -> bool:
        return any(token in chunk for chunk in self._chunks())

    def _chunks(self):
        # Chunked so that no full copy of the buffer is made; tokens are single bytes.
        step, view = 1 << 22, self.block
        for i in range(0, len(view), step):
            yield bytes(view[i : i + step])


def _split_fields(line: str, sep: str, quotechar: str = "'") -> list[str]:
    return next(csv.reader([line], delimiter=sep, quotechar=quotechar, skipinitialspace=True))


# What the C parser of pandas reads as a float (no '_' digit groups, no hex, unlike float()).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?", re.I)


def _check_field_counts(
    path, data: _Block, sep: str, expected: int, what: str, quotechar: str = "'"
) -> None:
    """Per-line field count check (slow path); raises on the first bad line."""
    lines = data.lines
    numbers = data.numbers(len(lines))
    sep_b = sep.encode()
    if any(b"'" in ln or b'"' in ln for ln in lines):
        counts = [
            len(_split_fields(ln.decode("utf-8", "replace").rstrip("\r"), sep, quotechar))
            for ln in lines
        ]
    else:
        counts = [ln.count(sep_b) + 1 for ln in lines]
    bad = np.flatnonzero(np.asarray(counts) != expected)
    if bad.size:
        i = int(bad[0])
        raise DataFormatError(
            f"{_where(path, int(numbers[i]))}: expected {expected} {sep!r}-separated "
            f"fields ({what}), found {counts[i]}"
            + (" (truncated file?)" if i == len(lines) - 1 and counts[i] < expected else "")
        )


def _expected_value(na_values: Sequence[str]) -> str:
    if not na_values:
        return "a number"
    if tuple(na_values) == tuple(_NAN_TOKENS):
        return "a number or '?'"
    shown = [repr(t) if t else "empty" for t in dict.fromkeys(t.lower() for t in na_values)]
    return "a number or a missing value (" + ", ".join(shown) + ")"


def _diagnose_values(
    path,
    data: _Block,
    sep: str,
    names: Sequence[str],
    numeric,
    na_values: Sequence[str],
    quotechar: str = "'",
) -> None:
    """Slow path run only after the fast parser failed: finds the first bad value."""
    for ln, number in zip(data.lines, data.numbers(len(data.lines)), strict=True):
        fields = _split_fields(ln.decode("utf-8", "replace").rstrip("\r"), sep, quotechar)
        for j, (tok, is_num) in enumerate(zip(fields, numeric, strict=False)):
            if not is_num:
                continue
            tok = tok.strip()
            if tok in na_values or _NUMBER.fullmatch(tok):
                continue
            found = repr(tok) if tok else "an empty field"
            raise DataFormatError(
                f"{_where(path, int(number))}: column {j + 1} ({names[j]!r}) expected "
                f"{_expected_value(na_values)}, found {found}"
            )


def _parse_block(
    path,
    data: _Block,
    *,
    sep: str,
    names: Sequence[str],
    numeric: Sequence[bool],
    what: str,
    na_values: Sequence[str] = tuple(_NAN_TOKENS),
    quotechar: str = "'",
) -> pd.DataFrame:
    """Parses the data rows; every numeric value must be finite or one of ``na_values``."""
    n = len(names)
    dtype = {j: (np.float64 if is_num else str) for j, is_num in enumerate(numeric)}
    try:
        with warnings.catch_warnings():
            # Rows with extra fields are found by the separator count below, with their line.
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(data.block),
                sep=sep,
                header=None,
                names=list(range(n)),
                index_col=False,
                dtype=dtype,
                na_values={
                    j: (list(na_values) if is_num else ["?"]) for j, is_num in enumerate(numeric)
                },
                keep_default_na=False,
                skipinitialspace=True,
                quotechar=quotechar,
                escapechar="\\",
                skip_blank_lines=False,
                encoding_errors="replace",
                engine="c",
            )
    except (ValueError, pd.errors.ParserError) as err:
        _check_field_counts(path, data, sep, n, what, quotechar)
        _diagnose_values(path, data, sep, names, numeric, na_values, quotechar)
        _check_quotes(path, data, quotechar)
        raise DataFormatError(
            f"{path}: could not parse the data rows ({err}); expected {sep!r}-separated "
            f"fields, {what}"
        ) from err
    # The C parser rejects lines with too many fields but pads lines with too few with NaN; a
    # total separator count catches those without splitting the lines in Python.
    quoted = data.contains(b"'") or data.contains(b'"')
    if quoted or data.count(sep.encode()) != (n - 1) * len(frame):
        _check_field_counts(path, data, sep, n, what, quotechar)
    numbers = data.numbers(len(frame))
    if len(numbers) != len(frame):  # defensive: the parser and the line split must agree
        raise DataFormatError(
            f"{path}: parsed {len(frame)} rows but found {len(numbers)} lines; expected one row "
            "per line"
        )
    _check_finite(path, frame, numbers, names, numeric)
    frame.columns = list(names)
    for j, is_num in enumerate(numeric):
        if not is_num:
            col = frame.iloc[:, j]
            frame[names[j]] = col.str.strip().str.strip('"')
    frame.attrs["path"] = str(path)
    frame.attrs["line_numbers"] = numbers
    return frame


def _check_quotes(path, data: _Block, quotechar: str) -> None:
    q = quotechar.encode()
    for ln, number in zip(data.lines, data.numbers(len(data.lines)), strict=True):
        if ln.replace(b"\\" + q, b"").count(q) % 2:
            raise DataFormatError(
                f"{_where(path, int(number))}: an unbalanced quote ({quotechar}); expected "
                "quotes in pairs around a field"
            )


def _check_finite(path, frame: pd.DataFrame, numbers, names, numeric) -> None:
    # The C parser reads 'inf', 'Infinity' and overflowing numbers ('1e999') as infinities;
    # none is a valid value of these formats (missing values are '?' or NaN).
    cols = [j for j, is_num in enumerate(numeric) if is_num]
    if not cols:
        return
    if len(cols) == frame.shape[1]:
        values = frame.to_numpy(np.float64, copy=False)
    else:
        values = frame.iloc[:, cols].to_numpy(np.float64)
    bad = np.isinf(values)
    if bad.any():
        i, c = (int(k[0]) for k in np.nonzero(bad))
        j = cols[c]
        raise DataFormatError(
            f"{_where(path, int(numbers[i]))}: column {j + 1} ({names[j]!r}) expected a finite "
            f"number, found {values[i, c]:g} (an infinity, or a number too large for float64)"
        )


# ----------------------------------------------------------------------------------- ARFF


def _parse_attribute(rest: str, path, line: int) -> tuple[str, str]:
    rest = rest.strip()
    if not rest:
        raise DataFormatError(
            f"{_where(path, line)}: expected '@attribute <name> <type>', found '@attribute'"
        )
    if rest[0] in "'\"":
        q = rest[0]
        end = rest.find(q, 1)
        if end < 0:
            raise DataFormatError(
                f"{_where(path, line)}: unterminated quoted attribute name; expected a closing {q}"
            )
        name, type_ = rest[1:end], rest[end + 1 :].strip()
    else:
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise DataFormatError(
                f"{_where(path, line)}: expected '@attribute <name> <type>', found "
                f"'@attribute {rest}'"
            )
        name, type_ = parts[0], parts[1].strip()
    if not type_:
        raise DataFormatError(
            f"{_where(path, line)}: attribute {name!r} has no type; expected numeric, string, ..."
        )
    t = type_.lower()
    if t in _NUMERIC_TYPES:
        kind = "numeric"
    elif t == "string" or t.startswith("date") or t.startswith("{"):
        kind = "string"
    else:
        raise DataFormatError(
            f"{_where(path, line)}: attribute {name!r} has unknown type {type_!r} "
            "(expected numeric, real, integer, string, date or {nominal})"
        )
    return name, kind


def read_arff(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a dense ARFF file.

    Tolerates what ordinary tools write: CRLF (or CR-only) line endings, a UTF-8 byte-order
    mark (or UTF-16 with one), blank lines, trailing spaces, ``%`` comments, quoted attribute
    names, either spelling of the time attribute (the names are kept as written).

    Args:
        path: the ``.arff`` file.

    Returns:
        A DataFrame with one column per attribute, in file order: numeric attributes as
        float64 (``?`` -> NaN), string/nominal/date attributes as ``str``.
        ``attrs["relation"]`` holds the relation name (``attrs["relation_line"]`` its
        line), ``attrs["path"]`` the file and ``attrs["line_numbers"]`` the 1-based file line
        of every row (int64 ``[rows]``).

    Raises:
        DataFormatError: empty or truncated file (no line break after the last line), NUL
            bytes, malformed header, a row with the wrong number of fields, a non-numeric or
            infinite value in a numeric attribute, no data rows.
    """
    raw = _read_bytes(path)
    if not raw or raw.isspace():
        raise DataFormatError(f"{path}: file is empty; expected an ARFF header ('@relation')")
    relation: str | None = None
    relation_line = 0
    names: list[str] = []
    kinds: list[str] = []
    pos = 0
    line_no = 0
    data_start: int | None = None
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        nxt = len(raw) if end < 0 else end + 1
        line_no += 1
        text = _decode(raw[pos:nxt], path, line_no).strip()
        pos = nxt
        if not text or text.startswith("%"):
            continue
        low = text.lower()
        if low.startswith("@relation"):
            if relation is not None:
                raise DataFormatError(
                    f"{_where(path, line_no)}: a second '@relation' line (the first is line "
                    f"{relation_line}); expected one ARFF header"
                )
            relation, relation_line = _unquote(text[len("@relation") :]), line_no
        elif low.startswith("@attribute"):
            if relation is None:
                raise DataFormatError(
                    f"{_where(path, line_no)}: '@attribute' before '@relation'; expected the "
                    "ARFF header to start with '@relation <name>'"
                )
            name, kind = _parse_attribute(text[len("@attribute") :], path, line_no)
            if name in names:
                raise DataFormatError(
                    f"{_where(path, line_no)}: duplicate attribute name {name!r}; expected "
                    "unique attribute names"
                )
            names.append(name)
            kinds.append(kind)
        elif low.startswith("@data"):
            data_start = pos
            break
        else:
            raise DataFormatError(
                f"{_where(path, line_no)}: expected '@relation', '@attribute', '@data', a "
                f"comment or a blank line in the ARFF header, found {text[:60]!r}"
            )
    if relation is None:
        raise DataFormatError(f"{path}: no '@relation' line; expected an ARFF header")
    if not names:
        raise DataFormatError(
            f"{path}: no '@attribute' lines in the ARFF header; expected one per column"
        )
    if data_start is None:
        raise DataFormatError(
            f"{path}: no '@data' line after the header (line {line_no}); truncated file? "
            "(expected '@data' and then the rows)"
        )
    data_line = line_no
    data = _Block(memoryview(raw)[data_start:], data_line + 1)
    if not data:
        raise DataFormatError(
            f"{_where(path, data_line)}: no data rows after '@data'; truncated file? "
            "(expected one row per frame)"
        )
    if bytes(data.block[:1]) == b"{":
        raise DataFormatError(
            f"{_where(path, data.first_line)}: sparse ARFF rows are not supported; expected "
            "dense comma-separated rows"
        )
    frame = _parse_block(
        path,
        data,
        sep=",",
        names=names,
        numeric=[k == "numeric" for k in kinds],
        what=f"one per attribute declared in the header: {_abbrev(names)}",
    )
    _require_final_line_break(path, raw)
    frame.attrs["relation"] = relation
    frame.attrs["relation_line"] = relation_line
    return frame


def _abbrev(names: Sequence[str], n: int = 4) -> str:
    if len(names) <= n:
        return ", ".join(names)
    return ", ".join(list(names[: n - 1]) + ["…", names[-1]])


# ----------------------------------------------------------------------------------- writing


_ARFF_NAME_OK = re.compile(r"^[A-Za-z0-9_.\-\[\]()/:+]+$")


def _quote_name(name: str) -> str:
    return name if _ARFF_NAME_OK.match(name) else "'" + name.replace("'", "\\'") + "'"


def _quote_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    s = str(value)
    if s and s not in ("?", "nan") and not re.search(r"[\s,;'\"%{}\\]", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_time_name(name) -> bool:
    return str(name).strip().lower() in _TIME_NAMES


def _format_rows(
    frame: pd.DataFrame, sep: str, float_format: str, time_decimals: int, nan_token: str = "?"
) -> list[str]:
    """Formats the rows of ``frame`` (vectorised per column, %-formatting per row in C).

    NaN values of numeric columns are written as ``nan_token``.
    """
    columns = []
    fmts = []
    nan_rows = np.zeros(len(frame), dtype=bool)
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
            columns.append(col.to_numpy(np.int64).tolist())
            fmts.append("%d")
        elif pd.api.types.is_numeric_dtype(col):
            values = col.to_numpy(np.float64)
            if _is_time_name(name):
                values = np.round(values, time_decimals) + 0.0  # +0.0 turns -0.0 into 0.0
            nan_rows |= np.isnan(values)
            columns.append(values.tolist())
            fmts.append(float_format)
        else:
            columns.append([_quote_value(v) for v in col.tolist()])
            fmts.append("%s")
    row_fmt = sep.join(fmts)
    rows = [row_fmt % row for row in zip(*columns, strict=True)]
    if nan_rows.any():
        if "%s" not in fmts:  # only numbers: a bare 'nan' field is a NaN
            token = re.compile(rf"(?<![^{re.escape(sep)}])nan(?![^{re.escape(sep)}])")
            for i in np.flatnonzero(nan_rows).tolist():
                rows[i] = token.sub(nan_token.replace("\\", r"\\"), rows[i])
        else:  # string fields may contain anything: format field by field
            for i in np.flatnonzero(nan_rows).tolist():
                fields = [col[i] for col in columns]
                rows[i] = sep.join(
                    nan_token if isinstance(v, float) and v != v else f % v
                    for f, v in zip(fmts, fields, strict=True)
                )
    return rows


def _rows_to_bytes(header: list[str], rows: list[str], *, newline: str = "\r\n") -> bytes:
    return (newline.join(header + rows) + newline).encode("utf-8")


def write_arff(
    path: str | os.PathLike,
    frame: pd.DataFrame,
    relation: str,
    *,
    float_format: str = "%.10g",
    time_decimals: int = 9,
) -> None:
    """Writes ``frame`` as an AVEC-style ARFF file (layout of the AVEC 2016 gold standard).

    Layout: ``@relation``, blank line, one ``@attribute`` per column, two blank lines,
    ``@data``, blank line, data rows; CRLF line endings. Numeric columns are declared
    ``numeric``, other columns ``string``. NaN is written as ``?``. A column named
    ``frameTime``/``time`` (any case) is rounded to ``time_decimals`` decimals first, so times
    come out in their shortest form (``0``, ``0.04``, ``300``).

    Args:
        path: the output file (folders are created). Written atomically.
        frame: the table, ``[rows, attributes]``.
        relation: the relation name.
        float_format: %-format of float values; the default keeps 10 significant digits,
            enough to read float32 values back exactly.
        time_decimals: decimals kept in the time column.
    """
    if frame.shape[1] == 0:
        raise ValueError(f"{path}: cannot write an ARFF file without columns")
    header = [f"@relation {_quote_name(relation)}", ""]
    for name in frame.columns:
        kind = "numeric" if pd.api.types.is_numeric_dtype(frame[name]) else "string"
        header.append(f"@attribute {_quote_name(str(name))} {kind}")
    header += ["", "", "@data", ""]
    rows = _format_rows(frame, ",", float_format, time_decimals)
    _atomic_write(path, _rows_to_bytes(header, rows))


def write_gold_standard(
    path: str | os.PathLike,
    stem: str,
    times,
    values,
    *,
    dimension: str,
    float_format: str = "%.10g",
) -> None:
    """Writes a gold-standard ARFF in the exact AVEC 2016 layout.

    ``@relation GOLDSTANDARD_<DIMENSION>``, attributes ``Instance_name string``,
    ``frameTime numeric``, ``GoldStandard numeric``; rows ``<stem>,<time>,<value>``; CRLF;
    9 header lines + one line per frame.

    Args:
        path: the output ``.arff`` file (written atomically).
        stem: the recording name written on every row, e.g. ``train_1``.
        times: frame times in seconds, ``[T]``.
        values: gold-standard values, ``[T]``.
        dimension: ``arousal`` or ``valence`` (any other name is upper-cased as well).
        float_format: %-format of the values.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if times.shape != values.shape:
        raise ValueError(f"{path}: times {times.shape} and values {values.shape} differ")
    frame = pd.DataFrame(
        {
            "Instance_name": pd.Series([stem] * len(times), dtype=object),
            "frameTime": times,
            "GoldStandard": values,
        }
    )
    write_arff(path, frame, f"GOLDSTANDARD_{dimension.upper()}", float_format=float_format)


def read_gold_standard(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a gold-standard ARFF.

    Args:
        path: ``ratings_gold_standard/<dimension>/<stem>.arff``.

    Returns:
        DataFrame with columns ``name`` (str), ``time`` and ``gold`` (float64); ``attrs`` as
        :func:`read_arff`.

    Raises:
        DataFormatError: not the ``Instance_name, frameTime, GoldStandard`` layout (a file
            with only the two numeric attributes is accepted too), or the time attribute is
            not named ``frameTime`` (any case) or ``time``.
    """
    frame = read_arff(path)
    kinds = ["numeric" if pd.api.types.is_float_dtype(frame[c]) else "string" for c in frame]
    if kinds == ["string", "numeric", "numeric"]:
        name = frame.iloc[:, 0]
        rest = frame.iloc[:, 1:]
    elif kinds == ["numeric", "numeric"]:
        name = pd.Series([Path(path).stem] * len(frame), dtype=str)
        rest = frame
    else:
        found = ", ".join(f"{c} {k}" for c, k in zip(frame.columns, kinds, strict=True))
        raise DataFormatError(
            f"{path}: expected attributes 'Instance_name string, frameTime numeric, "
            f"GoldStandard numeric', found {found}"
        )
    if not _is_time_name(rest.columns[0]):
        j = frame.columns.get_loc(rest.columns[0])
        raise DataFormatError(
            f"{path}: attribute {j + 1} is {rest.columns[0]!r}; expected the frame time "
            f"('frameTime') there, then the gold standard (attributes found: "
            f"{', '.join(map(str, frame.columns))})"
        )
    out = pd.DataFrame(
        {
            "name": name.to_numpy(dtype=object),
            "time": rest.iloc[:, 0].to_numpy(),
            "gold": rest.iloc[:, 1].to_numpy(),
        }
    )
    out["name"] = out["name"].astype(str)
    out.attrs.update(frame.attrs)
    return out


# --------------------------------------------------------------------------------- ratings


def read_ratings(path: str | os.PathLike, *, sep: str = ";") -> pd.DataFrame:
    """Reads an individual-ratings CSV.

    Args:
        path: ``ratings_individual/<dimension>/<stem>.csv``.
        sep: field separator.

    Returns:
        DataFrame with columns ``time`` then one float64 column per rater, names stripped of
        the spaces of the real header (``FM1``, …, ``FF3``). ``attrs["path"]`` and
        ``attrs["line_numbers"]`` as :func:`read_arff`.

    Raises:
        DataFormatError: empty or truncated file, header without a ``time`` column or raters,
            duplicate rater, wrong field count, non-numeric, infinite or missing value.
    """
    raw = _read_bytes(path)
    if not raw or raw.isspace():
        raise DataFormatError(
            f"{path}: file is empty; expected a header 'time{sep}FM1 {sep}…' and data rows"
        )
    end = raw.find(b"\n")
    head_raw = raw if end < 0 else raw[:end]
    header = _decode(head_raw, path, 1).strip()
    names = [n.strip().strip('"').strip() for n in header.split(sep)]
    if names[0].lower() != "time":
        other = next((c for c in ",;\t" if c != sep and c in header), None)
        hint = f" (the header is {other!r}-separated?)" if other else ""
        raise DataFormatError(
            f"{_where(path, 1)}: expected the header to start with 'time{sep}', found "
            f"{header[:60]!r}{hint}"
        )
    names[0] = "time"
    if len(names) < 2 or any(not n for n in names[1:]):
        raise DataFormatError(
            f"{_where(path, 1)}: expected rater names after 'time' separated by {sep!r}, "
            f"found {header[:60]!r}"
        )
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise DataFormatError(
            f"{_where(path, 1)}: duplicate columns {sorted(dup)}; expected one column per rater"
        )
    data = _Block(memoryview(raw)[end + 1 :] if end >= 0 else b"", 2)
    if not data:
        raise DataFormatError(
            f"{path}: no data rows after the header; truncated file? (expected one row per frame)"
        )
    frame = _parse_block(
        path,
        data,
        sep=sep,
        names=names,
        numeric=[True] * len(names),
        what=f"one per header column: {_abbrev(names)}",
        quotechar='"',
    )
    _require_final_line_break(path, raw)
    values = frame.to_numpy()
    if np.isnan(values).any():
        i, j = (int(k[0]) for k in np.nonzero(np.isnan(values)))
        raise DataFormatError(
            f"{_where(path, int(frame.attrs['line_numbers'][i]))}: column {j + 1} "
            f"({names[j]!r}) expected a "
            "number, found a missing value"
        )
    return frame


def write_ratings(path: str | os.PathLike, frame: pd.DataFrame, *, float_format="%.10g"):
    """Writes an individual-ratings CSV in the AVEC 2016 layout.

    The header is ``time;FM1 ;FM2 ;…;FF3``: a space after every rater name but the last,
    like the released files. CRLF line endings; written atomically.

    Args:
        path: the output ``.csv``.
        frame: columns ``time`` then one column per rater, ``[T, 1 + K]``.
        float_format: %-format of the rating values.
    """
    cols = [str(c).strip() for c in frame.columns]
    if not cols or cols[0].lower() != "time" or len(cols) < 2:
        raise ValueError(f"{path}: expected columns 'time' then the raters, got {cols}")
    header = ";".join(["time"] + [c + " " for c in cols[1:-1]] + [cols[-1]])
    rows = _format_rows(frame.rename(columns={frame.columns[0]: "time"}), ";", float_format, 9)
    _atomic_write(path, _rows_to_bytes([header], rows))


# ------------------------------------------------------------------------------- time grid


def check_time_grid(
    times,
    *,
    path: str | os.PathLike,
    line_numbers=None,
    frame_period: float | None = None,
    column: str = "time",
    rtol: float = 1e-3,
) -> float:
    """Checks that a time column is finite, strictly increasing and evenly spaced.

    Args:
        times: frame times in seconds, ``[T]``.
        path: the file the times come from (for messages).
        line_numbers: 1-based file line of every row, ``[T]`` (for messages); row indices
            are reported when omitted.
        frame_period: the expected step; inferred from the median step when None.
        column: the column name (for messages).
        rtol: tolerance on every step, relative to the frame period.

    Returns:
        The frame period (the given one, or the inferred one rounded to 9 decimals).

    Raises:
        DataFormatError: naming the first offending line.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)

    def where(i: int) -> str:
        if line_numbers is not None:
            return _where(path, int(line_numbers[i]))
        return f"{path}, data row {i + 1}"

    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise DataFormatError(f"{where(int(bad[0]))}: {column!r} expected a finite time")
    if t.size == 0:
        raise DataFormatError(f"{path}: no frames; expected at least one")
    steps = np.diff(t)
    nonpos = np.flatnonzero(steps <= 0)
    if nonpos.size:
        i = int(nonpos[0]) + 1
        raise DataFormatError(
            f"{where(i)}: {column!r} must be strictly increasing; found {t[i]:g} after "
            f"{t[i - 1]:g} (expected each frame once, in time order)"
        )
    if frame_period is None:
        if t.size < 2:
            raise DataFormatError(
                f"{path}: cannot infer the frame period from a single frame; expected two "
                "frames or more, or pass frame_period"
            )
        frame_period = round(float(np.median(steps)), 9)
    if frame_period <= 0:
        raise ValueError(f"frame_period must be positive, got {frame_period}")
    off = np.flatnonzero(np.abs(steps - frame_period) > rtol * frame_period)
    if off.size:
        i = int(off[0]) + 1
        raise DataFormatError(
            f"{where(i)}: {column!r} expected a step of {frame_period:g} s, found "
            f"{t[i]:g} - {t[i - 1]:g} = {steps[i - 1]:.6g} s"
        )
    return float(frame_period)
