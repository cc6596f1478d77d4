"""Tests of the AVEC 2016 readers and writers (hand-written fixtures, independent checks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddat_jax.data.avec2016 import (
    DIMENSIONS,
    FRAME_PERIOD,
    MODALITIES,
    PARTITIONS,
    RATERS,
    DataFormatError,
    check_time_grid,
    read_arff,
    read_gold_standard,
    read_ratings,
    write_arff,
    write_gold_standard,
    write_ratings,
)


def _write(path, text: str, newline: str = "\n"):
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# ------------------------------------------------------------------------------ constants


def test_constants():
    assert MODALITIES["audio"] == 88 and MODALITIES["video_geometric"] == 632
    assert set(MODALITIES) == {
        "audio",
        "video_appearance",
        "video_geometric",
        "ECG",
        "HRHRV",
        "EDA",
        "SCL",
        "SCR",
    }
    assert DIMENSIONS == ("arousal", "valence")
    assert RATERS == ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")
    assert PARTITIONS == ("train", "dev", "test")
    assert FRAME_PERIOD == 0.04


# --------------------------------------------------------------------------- gold standard


GOLD_EXPECTED = (
    b"@relation GOLDSTANDARD_AROUSAL\r\n"
    b"\r\n"
    b"@attribute Instance_name string\r\n"
    b"@attribute frameTime numeric\r\n"
    b"@attribute GoldStandard numeric\r\n"
    b"\r\n"
    b"\r\n"
    b"@data\r\n"
    b"\r\n"
    b"train_1,0,-0.019902\r\n"
    b"train_1,0.04,-0.019902\r\n"
    b"train_1,0.08,-7.5656e-05\r\n"
    b"train_1,0.12,0\r\n"
    b"train_1,0.16,0.01843115\r\n"
)


def test_write_gold_standard_exact_layout(tmp_path):
    path = tmp_path / "train_1.arff"
    times = np.arange(5) * 0.04  # 0.12000000000000001 must print as 0.12
    values = [-0.019902, -0.019902, -7.5656e-05, 0.0, 0.01843115]
    write_gold_standard(path, "train_1", times, values, dimension="arousal")
    assert path.read_bytes() == GOLD_EXPECTED
    # 9 header lines + one line per frame.
    assert len(path.read_bytes().split(b"\r\n")) - 1 == 9 + 5


def test_write_gold_standard_valence_and_large_times(tmp_path):
    path = tmp_path / "dev_3.arff"
    write_gold_standard(path, "dev_3", [299.96, 300.0], [0.5, -0.25], dimension="valence")
    lines = path.read_bytes().split(b"\r\n")
    assert lines[0] == b"@relation GOLDSTANDARD_VALENCE"
    assert lines[9:11] == [b"dev_3,299.96,0.5", b"dev_3,300,-0.25"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_read_gold_standard(tmp_path):
    path = tmp_path / "g.arff"
    path.write_bytes(GOLD_EXPECTED)
    frame = read_gold_standard(path)
    assert list(frame.columns) == ["name", "time", "gold"]
    assert frame["name"].tolist() == ["train_1"] * 5
    np.testing.assert_array_equal(frame["time"], [0, 0.04, 0.08, 0.12, 0.16])
    np.testing.assert_array_equal(
        frame["gold"], [-0.019902, -0.019902, -7.5656e-05, 0.0, 0.01843115]
    )
    assert frame.attrs["relation"] == "GOLDSTANDARD_AROUSAL"


def test_read_gold_standard_wrong_attributes(tmp_path):
    path = _write(tmp_path / "g.arff", "@relation x\n@attribute a string\n@data\nfoo\n")
    with pytest.raises(DataFormatError, match=r"g\.arff.*Instance_name string"):
        read_gold_standard(path)


# ----------------------------------------------------------------------------------- ARFF


def test_read_arff_tolerant_header(tmp_path):
    text = (
        "% a comment before the header\n"
        "@RELATION 'my features'\n"
        "\n"
        "@ATTRIBUTE frametime NUMERIC\n"
        "@attribute 'feat one' real\n"
        '@attribute "feat two" integer\n'
        "% comment between attributes\n"
        "@attribute name string\n"
        "\n\n@DATA\n\n"
        "% comment in the data\n"
        "0,1.5,2,a\n"
        "\n"
        "0.04,?,3,'b c'\n"
        "0.08, -2e-3 ,4,d\n"
        "\n\n"
    )
    path = _write(tmp_path / "f.arff", text, "\r\n")
    frame = read_arff(path)
    assert list(frame.columns) == ["frametime", "feat one", "feat two", "name"]
    assert frame.attrs["relation"] == "my features"
    assert frame["frametime"].dtype == np.float64
    np.testing.assert_array_equal(frame["feat one"], [1.5, np.nan, -0.002])
    np.testing.assert_array_equal(frame["feat two"], [2.0, 3.0, 4.0])
    assert frame["name"].tolist() == ["a", "b c", "d"]
    np.testing.assert_array_equal(frame.attrs["line_numbers"], [14, 16, 17])


@pytest.mark.parametrize("time_name", ["frameTime", "frametime"])
def test_read_arff_time_spelling(tmp_path, time_name):
    text = f"@relation r\n@attribute {time_name} numeric\n@attribute f numeric\n@data\n0,1\n"
    frame = read_arff(_write(tmp_path / "a.arff", text))
    assert frame.columns[0] == time_name
    assert frame.shape == (1, 2)


def test_write_arff_layout(tmp_path):
    frame = pd.DataFrame(
        {
            "frameTime": np.arange(3) * 0.04,
            "f1": [1.0, np.nan, -7.5656e-05],
            "feat 2": np.array([0.5, 2.0, 300.0], dtype=np.float32),
        }
    )
    path = tmp_path / "out.arff"
    write_arff(path, frame, "features")
    assert path.read_bytes() == (
        b"@relation features\r\n\r\n"
        b"@attribute frameTime numeric\r\n"
        b"@attribute f1 numeric\r\n"
        b"@attribute 'feat 2' numeric\r\n"
        b"\r\n\r\n@data\r\n\r\n"
        b"0,1,0.5\r\n"
        b"0.04,?,2\r\n"
        b"0.08,-7.5656e-05,300\r\n"
    )


def test_write_arff_string_columns(tmp_path):
    names = ["a", "b c", "nan", "a,nan,b"]
    frame = pd.DataFrame({"name": names, "x": [1.0, np.nan, 2.0, np.nan]})
    path = tmp_path / "s.arff"
    write_arff(path, frame, "r")
    text = path.read_bytes().decode()
    assert "@attribute name string" in text
    assert "a,1\r\n'b c',?\r\n'nan',2\r\n'a,nan,b',?\r\n" in text
    back = read_arff(path)
    assert back["name"].tolist() == names
    np.testing.assert_array_equal(back["x"], [1.0, np.nan, 2.0, np.nan])


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 5)),
        elements=st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
            st.just(np.nan),
        ),
    )
)
def test_arff_round_trip_float64(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("rt") / "x.arff"
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(values.shape[1])])
    frame.insert(0, "frameTime", np.arange(len(values)) * 0.04)
    write_arff(path, frame, "rt")
    back = read_arff(path)
    assert list(back.columns) == list(frame.columns)
    np.testing.assert_allclose(back["frameTime"], np.arange(len(values)) * 0.04, rtol=1e-12)
    # 10 significant digits are written.
    np.testing.assert_allclose(back.iloc[:, 1:].to_numpy(), values, rtol=1e-9, atol=1e-300)


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 12), st.integers(1, 5)),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
    )
)
def test_arff_round_trip_float32_exact(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("rt32") / "x.arff"
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(values.shape[1])])
    write_arff(path, frame, "rt")
    back = read_arff(path).to_numpy().astype(np.float32)
    np.testing.assert_array_equal(back, values)


# -------------------------------------------------------------------------------- ratings


RATINGS_TEXT = (
    "time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3\n"
    "0;0.1;0.2;0.3;0.4;0.5;0.6\n"
    "0.04;-0.1;-0.2;-0.3;-0.4;-0.5;-0.6\n"
    "0.08;1;0;0;0;0;-1\n"
)


def test_read_ratings_strips_header_spaces(tmp_path):
    path = _write(tmp_path / "train_1.csv", RATINGS_TEXT, "\r\n")
    frame = read_ratings(path)
    assert list(frame.columns) == ["time", "FM1", "FM2", "FM3", "FF1", "FF2", "FF3"]
    assert all(frame[c].dtype == np.float64 for c in frame.columns)
    np.testing.assert_array_equal(frame["time"], [0, 0.04, 0.08])
    np.testing.assert_array_equal(frame.iloc[1, 1:], [-0.1, -0.2, -0.3, -0.4, -0.5, -0.6])
    np.testing.assert_array_equal(frame.attrs["line_numbers"], [2, 3, 4])


def test_write_ratings_exact_header(tmp_path):
    frame = pd.DataFrame([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], columns=["time", *RATERS])
    path = tmp_path / "r.csv"
    write_ratings(path, frame)
    assert path.read_bytes() == (
        b"time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3\r\n0;0.1;0.2;0.3;0.4;0.5;0.6\r\n"
    )
    pd.testing.assert_frame_equal(read_ratings(path), frame, check_like=False, check_exact=True)


@settings(max_examples=20, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 10), st.integers(1, 6)),
        elements=st.floats(-1, 1, allow_subnormal=False),
    )
)
def test_ratings_round_trip(tmp_path_factory, values):
    raters = [f"R{i}" for i in range(values.shape[1])]
    frame = pd.DataFrame(values, columns=raters)
    frame.insert(0, "time", np.arange(len(values)) * 0.04)
    path = tmp_path_factory.mktemp("ratings") / "r.csv"
    write_ratings(path, frame)
    header = path.read_bytes().split(b"\r\n", 1)[0].decode()
    assert header == "time;" + "".join(r + " ;" for r in raters[:-1]) + raters[-1]
    back = read_ratings(path)
    assert list(back.columns) == ["time", *raters]
    np.testing.assert_allclose(back[raters].to_numpy(), values, rtol=1e-9, atol=1e-300)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("name", "text", "pattern"),
    [
        ("empty.arff", "", r"empty\.arff: file is empty"),
        ("blank.arff", "\n \n", r"blank\.arff: file is empty"),
        ("nodata.arff", "@relation x\n@attribute a numeric\n", r"nodata\.arff: no '@data'"),
        ("norel.arff", "@attribute a numeric\n@data\n1\n", r"norel\.arff, line 1: '@attr"),
        ("noattr.arff", "@relation x\n@data\n1\n", r"noattr\.arff: no '@attribute'"),
        (
            "norows.arff",
            "@relation x\n@attribute a numeric\n@data\n\n",
            r"norows\.arff, line 3: no data rows",
        ),
        (
            "type.arff",
            "@relation x\n@attribute a foo\n@data\n1\n",
            r"type\.arff, line 2: attribute 'a' has unknown type 'foo'",
        ),
        (
            "junk.arff",
            "@relation x\nhello\n@data\n1\n",
            r"junk\.arff, line 2: expected '@relation', '@attribute', '@data'",
        ),
        (
            "few.arff",
            "@relation x\n@attribute a numeric\n@attribute b numeric\n@data\n1,2\n3\n4,5\n",
            r"few\.arff, line 6: expected 2 ','-separated fields .*found 1",
        ),
        (
            "many.arff",
            "@relation x\n@attribute a numeric\n@attribute b numeric\n@data\n1,2\n3,4,5\n",
            r"many\.arff, line 6: expected 2 ','-separated fields .*found 3",
        ),
        (
            "trunc.arff",
            "@relation x\n@attribute a numeric\n@attribute b numeric\n@data\n1,2\n3",
            r"trunc\.arff, line 6: expected 2 .*found 1 \(truncated file\?\)",
        ),
        (
            "text.arff",
            "@relation x\n@attribute a numeric\n@attribute b numeric\n@data\n1,2\n\n3,abc\n",
            r"text\.arff, line 7: column 2 \('b'\) expected a number or '\?', found 'abc'",
        ),
        (
            "emptyfield.arff",
            "@relation x\n@attribute a numeric\n@attribute b numeric\n@data\n1,2\n3,\n",
            r"emptyfield\.arff, line 6: column 2 \('b'\) .* found an empty field",
        ),
        (
            "quoted.arff",
            "@relation x\n@attribute s string\n@attribute b numeric\n@data\n'a,b',2\n'c',2,3\n",
            r"quoted\.arff, line 6: expected 2 ','-separated fields .*found 3",
        ),
        (
            "sparse.arff",
            "@relation x\n@attribute a numeric\n@data\n{0 1}\n",
            r"sparse\.arff, line 4: sparse ARFF",
        ),
        (
            "dup.arff",
            "@relation x\n@attribute a numeric\n@attribute a numeric\n@data\n1,2\n",
            r"dup\.arff, line 3: duplicate attribute name 'a'",
        ),
    ],
)
def test_read_arff_bad_input(tmp_path, name, text, pattern):
    path = _write(tmp_path / name, text, "\r\n")
    with pytest.raises(DataFormatError, match=pattern):
        read_arff(path)


def test_read_arff_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.arff"):
        read_arff(tmp_path / "nope.arff")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"r\.csv: file is empty"),
        ("FM1;FM2\n1;2\n", r"r\.csv, line 1: expected the header to start with 'time;'"),
        ("time\n1\n", r"r\.csv, line 1: expected rater names after 'time'"),
        ("time;FM1 ;FM1\n0;1;2\n", r"r\.csv, line 1: duplicate columns \['FM1'\]"),
        ("time;FM1 ;FM2\n", r"r\.csv: no data rows after the header"),
        ("time;FM1 ;FM2\n0;1;2\n0.04;1\n", r"r\.csv, line 3: expected 3 ';'-separated"),
        ("time;FM1 ;FM2\n0;1;2\n0.04;1;x\n", r"r\.csv, line 3: column 3 \('FM2'\) .*'x'"),
        ("time;FM1 ;FM2\n0;1;2\n0.04;?;1\n", r"r\.csv, line 3: column 2 \('FM1'\).*missing"),
    ],
)
def test_read_ratings_bad_input(tmp_path, text, pattern):
    path = _write(tmp_path / "r.csv", text)
    with pytest.raises(DataFormatError, match=pattern):
        read_ratings(path)


# ------------------------------------------------------------------------------ time grid


def test_check_time_grid_infers_period():
    assert check_time_grid(np.arange(10) * 0.04, path="f") == 0.04
    assert check_time_grid(np.arange(10) * 0.1 + 0.1, path="f") == 0.1
    assert check_time_grid([5.0], path="f", frame_period=0.04) == 0.04


@pytest.mark.parametrize(
    ("times", "kwargs", "pattern"),
    [
        ([0, 0.04, 0.04, 0.08], {}, r"f, line 12: 'time' must be strictly increasing"),
        ([0, 0.04, 0.02, 0.08], {}, r"f, line 12: 'time' must be strictly increasing"),
        ([0, 0.04, 0.08, 0.2], {}, r"f, line 13: 'time' expected a step of 0.04 s"),
        ([0, 0.1, 0.2], {"frame_period": 0.04}, r"f, line 11: 'time' expected a step of 0.04"),
        ([0, np.nan, 0.08], {}, r"f, line 11: 'time' expected a finite time"),
        ([0.0], {}, r"f: cannot infer the frame period"),
        ([], {}, r"f: no frames"),
    ],
)
def test_check_time_grid_errors(times, kwargs, pattern):
    lines = np.arange(len(times)) + 10
    with pytest.raises(DataFormatError, match=pattern):
        check_time_grid(times, path="f", line_numbers=lines, **kwargs)
