"""Stage 1: reading and checking sensor CSV files at the boundary."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rareevent.errors import RareEventError
from rareevent.load import (
    Columns,
    Reading,
    ReadOptions,
    SensorData,
    columns_for_model,
    decimal_reading,
    file_sha256,
    load_csv,
    read_frames,
    resolve_columns,
    sniff,
    text_sample,
    time_reading,
    validate_frame,
)
from rareevent.options import InputSpec, ReadOptions


def write(folder: Path, data: bytes | str, name: str = "data.csv") -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def load_error(path: Path, **kwargs) -> str:
    with pytest.raises(RareEventError) as info:
        load_csv(path, InputSpec(**kwargs))
    message = str(info.value)
    assert path.name in message
    return message


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "text",
    [
        "timestamp,s1,s2,label\n2026-01-01 00:00,1.5,-2,0\n2026-01-01 00:01,2.5,3e1,1\n",
        "timestamp;s1;s2;label\n2026-01-01 00:00;1.5;-2;0\n2026-01-01 00:01;2.5;3e1;1\n",
        "timestamp\ts1\ts2\tlabel\n2026-01-01 00:00\t1.5\t-2\t0\n2026-01-01 00:01\t2.5\t3e1\t1\n",
        "\ufefftimestamp,s1,s2,label\r\n2026-01-01 00:00,1.5,-2,0\r\n2026-01-01 00:01,2.5,3e1,1\r\n",
        "\ufefftimestamp;s1;s2;label\r\n2026-01-01 00:00;1.5;-2;0\r\n2026-01-01 00:01;2.5;3e1;1",
        "timestamp\ts1\ts2\tlabel\r\n2026-01-01 00:00\t1.5\t-2\t0\r\n2026-01-01 00:01\t2.5\t3e1\t1\r\n",
    ],
    ids=[
        "comma",
        "semicolon",
        "tab",
        "bom-crlf",
        "bom-crlf-semicolon-no-final-newline",
        "tab-crlf",
    ],
)
def test_delimiters_bom_and_line_endings(tmp_path: Path, text: str) -> None:
    data = load_csv(write(tmp_path, text))
    assert isinstance(data, SensorData)
    assert data.columns.features == ["s1", "s2"]
    assert data.columns.time == "timestamp"
    assert data.columns.label == "label"
    assert data.X.dtype == np.float64
    np.testing.assert_array_equal(data.X, [[1.5, -2.0], [2.5, 30.0]])
    np.testing.assert_array_equal(data.y, [0, 1])
    np.testing.assert_array_equal(
        data.time,
        np.array(["2026-01-01T00:00", "2026-01-01T00:01"], dtype="datetime64[ns]"),
    )
    np.testing.assert_array_equal(data.rows, [0, 1])
    assert data.n_filled == 0
    assert len(data) == 2


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_sniff_finds_delimiter_and_header(tmp_path: Path, delimiter: str) -> None:
    fmt = sniff(
        write(
            tmp_path,
            delimiter.join(["a", " b", "c"])
            + "\n1"
            + delimiter
            + "2"
            + delimiter
            + "3\n",
        )
    )
    assert fmt.delimiter == delimiter
    assert fmt.header == ["a", "b", "c"]


def test_semicolon_file_with_decimal_commas_is_not_split_on_commas(
    tmp_path: Path,
) -> None:
    # more ';' than ',' in the header: ';' wins, so '1,5' is one cell: a decimal comma (issue 15)
    path = write(tmp_path, "a;b\n1,5;2\n")
    assert sniff(path).delimiter == ";"
    np.testing.assert_array_equal(load_csv(path).X, [[1.5, 2.0]])
    # with the decimal point forced it is the cell it was before, and the hint names `decimal`
    message = load_error(path, read=ReadOptions(decimal="."))
    assert "non-numeric value '1,5' in column 'a' at line 2" in message
    assert "pass `decimal=,`" in message


def test_quoted_cells_and_spaces_after_delimiter(tmp_path: Path) -> None:
    data = load_csv(write(tmp_path, 'a, b\n"1", 2\n3,  4.25\n'))
    assert data.columns.features == ["a", "b"]
    np.testing.assert_array_equal(data.X, [[1.0, 2.0], [3.0, 4.25]])


@pytest.mark.parametrize(
    ("header", "time", "label", "features"),
    [
        ("timestamp,s1,label", "timestamp", "label", ["s1"]),
        ("Time,s1,Y", "Time", "Y", ["s1"]),
        ("date,s1,anomaly", "date", "anomaly", ["s1"]),
        ("s1,datetime,s2", "datetime", None, ["s1", "s2"]),
        ("s1,s2", None, None, ["s1", "s2"]),
        (
            "s1,y,label",
            None,
            "y",
            ["s1", "label"],
        ),  # 'y' comes first in the conventional names
    ],
)
def test_default_time_and_label_columns(
    tmp_path: Path,
    header: str,
    time: str | None,
    label: str | None,
    features: list[str],
) -> None:
    n = header.count(",") + 1
    rows = ",".join(["0"] * n) + "\n" + ",".join(["1"] * n) + "\n"
    data = load_csv(write(tmp_path, header + "\n" + rows))
    assert (data.columns.time, data.columns.label, data.columns.features) == (
        time,
        label,
        features,
    )


def test_explicit_time_and_label(tmp_path: Path) -> None:
    path = write(tmp_path, "t,s1,event\n1,0.5,0\n2,0.25,1\n")
    data = load_csv(path, InputSpec(time="t", label="event"))
    assert data.columns.features == ["s1"]
    np.testing.assert_array_equal(data.time, [1.0, 2.0])
    np.testing.assert_array_equal(data.y, [0, 1])
    # without the options both are sensors
    assert load_csv(path).columns.features == ["t", "s1", "event"]


def test_drop_excludes_text_columns_and_conventional_names(tmp_path: Path) -> None:
    path = write(
        tmp_path, "timestamp,site,a,b,anomaly\n2026-01-01,x,1,2,0\n2026-01-02,y,3,4,1\n"
    )
    message = load_error(path)
    assert "non-numeric value 'x' in column 'site' at line 2" in message
    assert "use `drop` to exclude text columns" in message
    data = load_csv(path, InputSpec(drop=["site"]))
    assert data.columns.features == ["a", "b"]
    assert data.columns.dropped == ["site"]
    assert data.columns.label == "anomaly"
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    # dropping the conventional time column means no time axis
    data = load_csv(path, InputSpec(drop=["site", "timestamp"]))
    assert data.columns.time is None
    assert data.time is None


@pytest.mark.parametrize("option", ["time", "label", "drop"])
def test_unknown_column_option(tmp_path: Path, option: str) -> None:
    path = write(tmp_path, "a,b\n1,2\n")
    value = ["nope"] if option == "drop" else "nope"
    message = load_error(path, **{option: value})
    assert f"`{option}` names unknown column 'nope'" in message
    assert "columns are a, b" in message


def test_no_feature_columns_left(tmp_path: Path) -> None:
    assert "no feature columns left" in load_error(write(tmp_path, "time,label\n1,0\n"))
    assert "no feature columns left" in load_error(
        write(tmp_path, "a,b\n1,2\n", "x.csv"), drop=["a", "b"]
    )


def test_same_column_as_time_and_label(tmp_path: Path) -> None:
    assert "cannot be both time and label" in load_error(
        write(tmp_path, "a,b\n1,0\n"), time="b", label="b"
    )


# ---------------------------------------------------------------- cell errors


def test_non_numeric_cell_names_column_and_line(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "a,b\n1,2\n3,4\n5,x\n"))
    assert "non-numeric value 'x' in column 'b' at line 4" in message
    # a mostly-text column gets the `drop` hint, a single bad cell does not
    assert "drop" not in message
    message = load_error(write(tmp_path, "a,b\n1,2\n3,4\n5,6\n7,1.2.3\n", "d.csv"))
    assert "'1.2.3' in column 'b' at line 5" in message


def test_blank_cell_without_fill(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "a,b\n1,2\n,4\n5,6\n"))
    assert "blank or NaN value in column 'a' at line 3" in message
    assert "`fill=ffill`" in message
    assert "column 'b' at line 2" in load_error(
        write(tmp_path, "a,b\n1,nan\n", "n.csv")
    )


def test_short_row_is_a_ragged_row_not_a_blank_cell(tmp_path: Path) -> None:
    assert "line 3 has 2 fields, the header has 3" in load_error(
        write(tmp_path, "a,b,c\n1,2,3\n4,5\n")
    )


def test_empty_last_cell_is_a_blank_cell(tmp_path: Path) -> None:
    assert "blank or NaN value in column 'c' at line 3" in load_error(
        write(tmp_path, "a,b,c\n1,2,3\n4,5,\n")
    )


FILL_TEXT = "a,b\n1,10\n,20\n3,\n,40\n"


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        ("ffill", [[1, 10], [1, 20], [3, 20], [3, 40]]),
        ("interpolate", [[1, 10], [2, 20], [3, 30], [3, 40]]),
    ],
)
def test_fill_repairs(tmp_path: Path, fill: str, expected: list[list[float]]) -> None:
    data = load_csv(write(tmp_path, FILL_TEXT), InputSpec(fill=fill))
    np.testing.assert_array_equal(data.X, expected)
    assert data.n_filled == 3
    np.testing.assert_array_equal(data.rows, [0, 1, 2, 3])


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_fill_leading_blank_takes_the_next_value(tmp_path: Path, fill: str) -> None:
    data = load_csv(write(tmp_path, "a,b\n,10\n2,20\n4,\n"), InputSpec(fill=fill))
    np.testing.assert_array_equal(data.X, [[2, 10], [2, 20], [4, 20]])
    assert data.n_filled == 2


def test_fill_drop_removes_rows_and_keeps_labels_time_rows_aligned(
    tmp_path: Path,
) -> None:
    data = load_csv(
        write(
            tmp_path, "time,a,b,label\n1,1,10,0\n2,,20,1\n3,3,30,0\n4,4,,1\n5,5,50,0\n"
        ),
        InputSpec(fill="drop"),
    )
    np.testing.assert_array_equal(data.X, [[1, 10], [3, 30], [5, 50]])
    np.testing.assert_array_equal(data.y, [0, 0, 0])
    np.testing.assert_array_equal(data.time, [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(data.rows, [0, 2, 4])
    assert data.n_filled == 2
    np.testing.assert_array_equal(
        load_csv(write(tmp_path, FILL_TEXT, "f.csv"), InputSpec(fill="drop")).X,
        [[1, 10]],
    )


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity"])
def test_infinite_value(tmp_path: Path, cell: str) -> None:
    assert "infinite value in column 'b' at line 3" in load_error(
        write(tmp_path, f"a,b\n1,2\n3,{cell}\n")
    )


def test_value_out_of_float32_range(tmp_path: Path) -> None:
    assert "value out of range in column 'b' at line 3" in load_error(
        write(tmp_path, "a,b\n1,2\n3,1e39\n")
    )


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("2", "'2'"), ("-1", "'-1'"), ("0.5", "'0.5'"), ("yes", "'yes'"), ("", "'nan'")],
)
def test_label_must_be_zero_or_one(tmp_path: Path, cell: str, shown: str) -> None:
    message = load_error(write(tmp_path, f"a,label\n1,0\n2,{cell}\n3,1\n"))
    assert f"label column 'label' must be 0 or 1, found {shown}" in message
    assert "at line 3" in message


def test_label_accepts_float_zero_one(tmp_path: Path) -> None:
    data = load_csv(write(tmp_path, "a,label\n1,0.0\n2,1.0\n"))
    assert data.y.dtype == np.int8
    np.testing.assert_array_equal(data.y, [0, 1])


# ---------------------------------------------------------------- time axis


def test_time_going_backwards(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "time,a\n1,1\n3,2\n2,3\n"))
    assert "time in column 'time' goes backwards at line 4" in message


def test_time_repeating(tmp_path: Path) -> None:
    assert "time in column 'time' repeats at line 4" in load_error(
        write(tmp_path, "time,a\n1,1\n2,2\n2,3\n")
    )
    message = load_error(
        write(
            tmp_path,
            "timestamp,a\n2026-01-01T00:00:00,1\n2026-01-01 00:00:00,2\n",
            "d.csv",
        )
    )
    assert "repeats at line 3" in message


def test_unparseable_time(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "time,a\n2026-01-01,1\nnotatime,2\n"))
    assert "cannot parse time 'notatime' in column 'time' at line 3" in message


def test_numeric_time_axis(tmp_path: Path) -> None:
    data = load_csv(write(tmp_path, "time,a\n0.5,1\n1.5,2\n10,3\n"))
    assert data.time.dtype == np.float64
    np.testing.assert_array_equal(data.time, [0.5, 1.5, 10.0])


# ---------------------------------------------------------------- file errors


def test_header_only(tmp_path: Path) -> None:
    assert "has a header but no data rows" in load_error(write(tmp_path, "a,b\r\n"))


@pytest.mark.parametrize("data", [b"", b"  \n\n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    assert "file is empty" in load_error(write(tmp_path, data))


def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in load_error(tmp_path / "absent.csv")


def test_folder(tmp_path: Path) -> None:
    folder = tmp_path / "adir.csv"
    folder.mkdir()
    assert "is a folder" in load_error(folder)


def test_duplicate_and_empty_column_names(tmp_path: Path) -> None:
    assert "duplicate column name 'a' in the header (line 1)" in load_error(
        write(tmp_path, "a,b, a\n1,2,3\n")
    )
    assert "column 2 of the header (line 1) has no name" in load_error(
        write(tmp_path, "a,,b\n1,2,3\n", "e.csv")
    )


def test_binary_file(tmp_path: Path) -> None:
    assert "binary file" in load_error(write(tmp_path, b"PK\x03\x04\x00\x00\x01\x02"))


def test_non_utf8_bytes(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, b"a,b\n1,2\n3,\xe9\n"))
    assert "line 3 is not UTF-8 text" in message
    assert "UTF-8" in message


def test_non_utf8_byte_after_first_read_buffer_names_the_right_line(
    tmp_path: Path,
) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(25_000))  # ~270 kB
    path = write(tmp_path, b"a,b\n" + rows.encode() + b"1,\xe9\n2,3\n")
    assert "line 25002 is not UTF-8 text" in load_error(path)


def test_pipe_delimiter_leaves_one_column(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "a|b|c\n1|2|3\n"))
    assert "found only one column 'a|b|c'" in message
    assert "separate columns with ',', ';' or a tab" in message


def test_single_column_file_is_fine(tmp_path: Path) -> None:
    np.testing.assert_array_equal(load_csv(write(tmp_path, "a\n1\n2\n")).X, [[1], [2]])


def test_ragged_row_with_too_many_fields(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "a,b\n1,2\n3,4\n5,6,7\n"))
    assert "line 4 has 3 fields, the header has 2" in message


@pytest.mark.parametrize("header", ["a ,b", "a,b ", "\ta,b"])
def test_header_with_surrounding_whitespace(tmp_path: Path, header: str) -> None:
    data = load_csv(write(tmp_path, header + "\n1,2\n"))
    assert data.columns.features == ["a", "b"]


def test_file_sha256(tmp_path: Path) -> None:
    path = write(tmp_path, b"abc")
    assert (
        file_sha256(path)
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    big = write(tmp_path, b"x" * ((1 << 20) + 5), "big.bin")
    assert file_sha256(big) == hashlib.sha256(b"x" * ((1 << 20) + 5)).hexdigest()


def test_columns_for_model(tmp_path: Path) -> None:
    trained = Columns(features=["s1", "s2"], time="timestamp", label="label")
    fmt = sniff(write(tmp_path, "s2,extra,s1,timestamp\n1,2,3,4\n"))
    cols = columns_for_model(fmt, trained)
    assert cols.features == ["s1", "s2"]
    assert (cols.time, cols.label, cols.ignored) == ("timestamp", None, ["extra"])
    with pytest.raises(RareEventError, match="missing trained feature column"):
        columns_for_model(sniff(write(tmp_path, "s1,x\n1,2\n", "m.csv")), trained)


# ---------------------------------------------------------------- chunks


def chunks(path: Path, chunk_rows: int):
    fmt = sniff(path)
    columns = resolve_columns(fmt)
    return fmt, columns, list(read_frames(fmt, columns, chunk_rows=chunk_rows))


@pytest.mark.parametrize(
    ("previous", "word"), [(2.0, "repeats"), (3.0, "goes backwards")]
)
def test_validate_frame_checks_order_across_chunk_border(
    tmp_path: Path, previous: float, word: str
) -> None:
    fmt, columns, frames = chunks(
        write(tmp_path, "time,a\n1,10\n2,20\n2,30\n4,40\n"), 2
    )
    assert [len(f) for f in frames] == [2, 2]
    first = validate_frame(frames[0], fmt, columns)
    alone = validate_frame(frames[1], fmt, columns)  # fine on its own
    np.testing.assert_array_equal(alone.rows, [2, 3])
    if previous == 2.0:
        assert first.time[-1] == previous
    with pytest.raises(
        RareEventError, match=rf"time in column 'time' {word} at line 4"
    ):
        validate_frame(frames[1], fmt, columns, previous_time=previous)


def test_validate_frame_datetime_order_across_chunk_border(tmp_path: Path) -> None:
    text = "timestamp,a\n2026-01-01 00:00,1\n2026-01-01 00:02,2\n2026-01-01 00:01,3\n2026-01-01 00:03,4\n"
    fmt, columns, frames = chunks(write(tmp_path, text), 2)
    first = validate_frame(frames[0], fmt, columns)
    with pytest.raises(RareEventError, match="goes backwards at line 4"):
        validate_frame(frames[1], fmt, columns, previous_time=first.time[-1])


def test_validate_frame_line_numbers_in_later_chunk(tmp_path: Path) -> None:
    fmt, columns, frames = chunks(write(tmp_path, "a,b\n1,10\n2,20\n3,30\n4,x\n"), 2)
    with pytest.raises(
        RareEventError, match="non-numeric value 'x' in column 'b' at line 5"
    ):
        validate_frame(frames[1], fmt, columns)


@pytest.mark.parametrize(
    ("fill", "without_anchor", "with_anchor"),
    [
        ("ffill", [[4, 30], [4, 30]], [[2, 30], [4, 30]]),
        ("interpolate", [[4, 30], [4, 30]], [[3, 30], [4, 30]]),
    ],
)
def test_validate_frame_anchor_repairs_leading_nan(
    tmp_path: Path, fill: str, without_anchor, with_anchor
) -> None:
    fmt, columns, frames = chunks(write(tmp_path, "a,b\n1,10\n2,20\n,30\n4,\n"), 2)
    first = validate_frame(frames[0], fmt, columns, fill=fill)
    with pytest.raises(
        RareEventError, match="blank or NaN value in column 'a' at line 4"
    ):
        validate_frame(frames[1], fmt, columns)
    np.testing.assert_array_equal(
        validate_frame(frames[1], fmt, columns, fill=fill).X, without_anchor
    )
    block = validate_frame(frames[1], fmt, columns, fill=fill, anchor=first.X[-1:])
    np.testing.assert_array_equal(block.X, with_anchor)
    assert block.n_filled == 2
    np.testing.assert_array_equal(block.rows, [2, 3])


# ---------------------------------------------------------------- fuzzing

TOKENS = [
    b"1",
    b"-2.5",
    b"",
    b"nan",
    b"abc",
    b"inf",
    b"2026-01-01",
    b",",
    b";",
    b"\t",
    b'"',
    b"\r\n",
    b" ",
    b"0",
    b"1e400",
    b"\xff",
]
VALUES = [
    b"1",
    b"-2.5",
    b"0",
    b"1",
    b"0",
    b"3.25",
    b"",
    b"nan",
    b"abc",
    b"inf",
    b"2026-01-01",
    b"1e400",
    b"2026-01-02 10:00",
]
NAMES = [
    b"a",
    b"b",
    b"s1",
    b"time",
    b"label",
    b"y",
    b"timestamp",
    b"",
    b"a",
    b"abc",
    b"1",
    b'"q"',
    b"a ",
    b" b",
    b"\ta",
    b'"x',
    b"a|b",
]
# mostly plausible values, sometimes a random run of tokens (quotes, delimiters, bad bytes)
CELL = (
    st.sampled_from(VALUES)
    | st.sampled_from(VALUES)
    | st.sampled_from(VALUES)
    | st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3).map(b"".join)
)


@st.composite
def csv_like(draw, header: st.SearchStrategy | None = None) -> bytes:
    """A small grid: optional BOM, a header, ragged rows of cells, a delimiter and line ending."""
    delimiter = draw(st.sampled_from([b",", b";", b"\t", b"|"]))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    if header is None:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4))
    else:
        names = draw(header)
    width = len(names)
    rows = draw(
        st.lists(
            st.lists(CELL, min_size=max(width - 1, 1), max_size=width + 1), max_size=5
        )
    )
    lines = [delimiter.join(names)] + [delimiter.join(row) for row in rows]
    text = eol.join(lines) + draw(st.sampled_from([b"", eol]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text


CLEAN_HEADER = st.sampled_from(
    [[b"time", b"a", b"b", b"label"], [b"a"], [b"timestamp", b"s1", b"y"], [b"a", b"b"]]
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def load_or_refuse(path: Path, data: bytes, **kwargs) -> None:
    path.write_bytes(data)
    try:
        result = load_csv(path, InputSpec(**kwargs))
    except RareEventError:
        return
    assert isinstance(result, SensorData)
    assert result.X.dtype == np.float64
    assert np.isfinite(result.X).all()
    assert len(result.rows) == len(result.X)


@pytest.mark.slow
@FUZZ
@given(
    data=csv_like(CLEAN_HEADER),
    fill=st.sampled_from([None, "ffill", "interpolate", "drop"]),
)
def test_fuzz_rows_under_a_clean_header(
    tmp_path: Path, data: bytes, fill: str | None
) -> None:
    load_or_refuse(tmp_path / "fuzz.csv", data, fill=fill)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=40),
        st.lists(st.sampled_from(TOKENS), max_size=30).map(b"".join),
        csv_like(),
    )
)
def test_fuzz_any_bytes_load_or_raise_rare_event_error(
    tmp_path: Path, data: bytes
) -> None:
    load_or_refuse(tmp_path / "fuzz.csv", data)


def test_trailing_blank_line_is_not_a_data_row(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,2\n3,4\n\n")
    np.testing.assert_array_equal(
        load_csv(path, InputSpec(fill="ffill")).X, [[1, 2], [3, 4]]
    )


# ---------------------------------------------------------------- reading: decimal marks, date order, epoch times (issue 15)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_decimal_commas_are_detected_in_semicolon_and_tab_files(
    tmp_path: Path, delimiter: str
) -> None:
    text = "Zeitstempel;Druck;Temp\n01.01.2026 00:00;0,006286511054669665;21,0\n01.01.2026 01:00;-1,5e-3;22\n".replace(
        ";", delimiter
    )
    data = load_csv(write(tmp_path, text), InputSpec(time="Zeitstempel"))
    np.testing.assert_array_equal(
        data.X, [[0.006286511054669665, 21.0], [-0.0015, 22.0]]
    )
    assert (data.reading.decimal, data.reading.decimal_settled) == (",", True)


def test_comma_file_keeps_the_decimal_point(tmp_path: Path) -> None:
    data = load_csv(
        write(tmp_path, 'a,b\n"1,5",2\n'), InputSpec(read=ReadOptions(decimal=","))
    )
    np.testing.assert_array_equal(data.X, [[1.5, 2.0]])
    message = load_error(write(tmp_path, 'a,b\n"1,5",2\n', "c.csv"))
    assert (
        "non-numeric value '1,5' in column 'a' at line 2" in message
        and "`decimal=,`" in message
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a;b\n1.234,5;0,5\n-12.345.678;2\n", [[1234.5, 0.5], [-12345678, 2]]),
        ("a;b\n1,234.5;0.5\n1,234,567;2\n", [[1234.5, 0.5], [1234567, 2]]),
        (
            "a;b\n1.234;0,5\n",
            [[1234, 0.5]],
        ),  # a lone group is thousands once other cells settle the mark
    ],
    ids=["comma-decimal", "dot-decimal", "settled-by-other-cells"],
)
def test_thousands_separators_in_whole_groups(
    tmp_path: Path, text: str, expected: list[list[float]]
) -> None:
    np.testing.assert_array_equal(load_csv(write(tmp_path, text)).X, expected)


def test_ambiguous_thousands_separator_is_refused_until_the_mark_is_forced(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "a;b\n2;1\n1,234;2\n")
    message = load_error(path)
    assert "ambiguous number '1,234' in column 'a' at line 3" in message
    assert "`decimal=.` " in message and "`decimal=,`" in message
    np.testing.assert_array_equal(
        load_csv(path, InputSpec(read=ReadOptions(decimal="."))).X, [[2, 1], [1234, 2]]
    )
    np.testing.assert_array_equal(
        load_csv(path, InputSpec(read=ReadOptions(decimal=","))).X, [[2, 1], [1.234, 2]]
    )


@pytest.mark.parametrize("cell", ["1.23.4", "12,34.5", "1.2345,6", "1,5.5"])
def test_broken_groups_are_not_numbers(tmp_path: Path, cell: str) -> None:
    assert f"non-numeric value '{cell}' in column 'a' at line 3" in load_error(
        write(tmp_path, f"a;b\n0,5;1\n{cell};2\n")
    )


def test_a_dot_decimal_in_a_comma_file_gets_the_decimal_hint(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "a;b\n0,5;1\n0,25;1\n0.5;2\n"))
    assert "non-numeric value '0.5' in column 'a' at line 4" in message
    assert "read with decimal mark ','; pass `decimal=.`" in message
    assert "decimal=" not in load_error(
        write(tmp_path, "a;b\n0,5;1\n0,25;1\nabc;2\n", "t.csv")
    )


@pytest.mark.parametrize("value", ["x", ";"])
def test_bad_decimal_option(tmp_path: Path, value: str) -> None:
    with pytest.raises(RareEventError, match=r"^decimal .*use ',' or '\.'"):
        load_csv(write(tmp_path, "a\n1\n"), InputSpec(read=ReadOptions(decimal=value)))


def dated(
    tmp_path: Path, start: str, end: str, time_format: str, name: str = "h.csv"
) -> Path:
    """Hourly rows (daily without %H) from ``start`` to ``end``, dates written with ``time_format``, dot decimals."""
    times = pd.date_range(start, end, freq="h" if "%H" in time_format else "D")
    frame = pd.DataFrame(
        {"Zeitstempel": times.strftime(time_format), "x": np.arange(len(times)) * 0.25}
    )
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_day_first_dates_are_read_from_the_whole_column(tmp_path: Path) -> None:
    # the first 288 rows (01.01 to 12.01) fit both orders; the day 13 at line 290 settles it
    data = load_csv(
        dated(tmp_path, "2026-01-01", "2026-01-25", "%d.%m.%Y %H:%M"),
        InputSpec(time="Zeitstempel"),
    )
    np.testing.assert_array_equal(
        data.time, pd.date_range("2026-01-01", "2026-01-25", freq="h").to_numpy()
    )
    assert data.reading.time_format == "%d.%m.%Y %H:%M"
    assert (data.reading.date_order, data.reading.date_order_assumed) == (
        "day-first",
        False,
    )
    assert data.reading.order_note("Zeitstempel") is None


def test_month_first_dates_are_read_from_the_whole_column(tmp_path: Path) -> None:
    data = load_csv(
        dated(tmp_path, "2026-01-01", "2026-01-25", "%m/%d/%Y %H:%M:%S"),
        InputSpec(time="Zeitstempel"),
    )
    assert data.time[-1] == np.datetime64("2026-01-25T00:00")
    assert (
        data.reading.time_format,
        data.reading.date_order,
        data.reading.date_order_assumed,
    ) == ("%m/%d/%Y %H:%M:%S", "month-first", False)


@pytest.mark.parametrize(
    ("time_format", "order", "last", "other"),
    [
        (
            "%d.%m.%Y %H:%M",
            "day-first",
            "2026-01-12T00:00",
            "`time_format='%m.%d.%Y %H:%M'`",
        ),
        ("%d-%m-%y", "day-first", "2026-01-12T00:00", "`time_format='%m-%d-%y'`"),
        (
            "%d/%m/%Y",
            "month-first",
            "2026-12-01T00:00",
            "`dayfirst`",
        ),  # '/' dates follow pandas' month-first default
    ],
)
def test_ambiguous_dates_say_which_order_was_assumed(
    tmp_path: Path, time_format: str, order: str, last: str, other: str
) -> None:
    # day-first dates from 01.01 to 12.01: no first field above 12, so no value settles the order
    data = load_csv(
        dated(tmp_path, "2026-01-01", "2026-01-12", time_format),
        InputSpec(time="Zeitstempel"),
    )
    assert (data.reading.date_order, data.reading.date_order_assumed) == (order, True)
    assert data.time[-1] == np.datetime64(last)
    note = data.reading.order_note("Zeitstempel")
    assert f"read {order}" in note and other in note


def test_dayfirst_and_time_format_force_the_reading(tmp_path: Path) -> None:
    path = dated(tmp_path, "2026-01-01", "2026-01-03", "%m/%d/%Y %H:%M")
    data = load_csv(
        path, InputSpec(time="Zeitstempel", read=ReadOptions(dayfirst=True))
    )
    assert data.time[-1] == np.datetime64("2026-03-01T00:00")
    assert (
        data.reading.time_format,
        data.reading.date_order,
        data.reading.date_order_assumed,
    ) == ("%d/%m/%Y %H:%M", "day-first", False)
    data = load_csv(
        path,
        InputSpec(time="Zeitstempel", read=ReadOptions(time_format="%m/%d/%Y %H:%M")),
    )
    assert data.time[-1] == np.datetime64("2026-01-03T00:00")
    message = load_error(
        path, time="Zeitstempel", read=ReadOptions(time_format="%Y-%m-%d %H:%M")
    )
    assert (
        "cannot parse time '01/01/2026 00:00' in column 'Zeitstempel' at line 2: it does not match the time format '%Y-%m-%d %H:%M'"
        in message
    )


def test_dayfirst_on_iso_times_is_refused(tmp_path: Path) -> None:
    message = load_error(
        write(tmp_path, "time,a\n2026-01-01,1\n2026-01-02,2\n"),
        read=ReadOptions(dayfirst=True),
    )
    assert (
        "`dayfirst`: the times in column 'time' are not dates like 31.01.2026 (line 2: '2026-01-01')"
        in message
    )


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (
            dict(time_format="%d.%m.%Y", dayfirst=True),
            "`time_format` and `dayfirst` contradict each other",
        ),
        (
            dict(dayfirst=True, time_unit="s"),
            "`dayfirst` and `time_unit` contradict each other",
        ),
        (dict(time_format="%Q"), "time_format '%Q' is not a strftime format"),
        (dict(time_format="d.m.Y"), "time_format 'd.m.Y' has no % code"),
        (dict(time_unit="us"), "time_unit 'us': use one of s, ms"),
    ],
)
def test_bad_time_options(tmp_path: Path, options: dict, fragment: str) -> None:
    with pytest.raises(RareEventError, match=re.escape(fragment)):
        load_csv(
            write(tmp_path, "time,a\n1,1\n"), InputSpec(read=ReadOptions(**options))
        )


@pytest.mark.parametrize(
    ("text", "line", "value", "expected"),
    [
        (
            "time,a\n01.01.2026 00:00,1\n01.01.2026 01:00,2\n2026-01-01 02:00,3\n",
            4,
            "2026-01-01 02:00",
            "the time format '%d.%m.%Y %H:%M'",
        ),
        (
            "time,a\n01.01.2026 00:00,1\n01.01.2026 01:00:00,2\n",
            3,
            "01.01.2026 01:00:00",
            "the time format '%d.%m.%Y %H:%M'",
        ),
        (
            "time,a\n2026-01-01 00:00,1\n2026-01-01 01:00,2\n02.01.2026 00:00,3\n",
            4,
            "02.01.2026 00:00",
            "ISO 8601 like the first time",
        ),
        # the first day above 12 (line 3) makes the column day-first; a month above 12 later is another format
        (
            "time,a\n01.01.2026,1\n13.01.2026,2\n01.14.2026,3\n",
            4,
            "01.14.2026",
            "the time format '%d.%m.%Y'",
        ),
    ],
    ids=["iso-after-day-first", "seconds-appear", "day-first-after-iso", "both-orders"],
)
def test_mixed_time_formats_name_the_first_line_that_differs(
    tmp_path: Path, text: str, line: int, value: str, expected: str
) -> None:
    message = load_error(write(tmp_path, text))
    assert (
        f"cannot parse time '{value}' in column 'time' at line {line}: it does not match {expected}"
        in message
    )
    assert "hint: a time column holds one format" in message


@pytest.mark.parametrize(
    ("unit", "values"),
    [("s", ["1767225600", "1767225660"]), ("ms", ["1767225600000", "1767225660000"])],
)
def test_time_unit_reads_epoch_numbers_as_datetimes(
    tmp_path: Path, unit: str, values: list[str]
) -> None:
    path = write(tmp_path, f"time,a\n{values[0]},1\n{values[1]},2\n")
    data = load_csv(path, InputSpec(read=ReadOptions(time_unit=unit)))
    np.testing.assert_array_equal(
        data.time,
        np.array(["2026-01-01T00:00", "2026-01-01T00:01"], dtype="datetime64[ns]"),
    )
    assert data.reading.time_unit == unit
    assert (
        load_csv(path).time.dtype == np.float64
    )  # without the option: plain numbers, as before


def test_time_unit_errors(tmp_path: Path) -> None:
    message = load_error(
        write(tmp_path, "time,a\n1767225600000,1\n"), read=ReadOptions(time_unit="s")
    )
    assert (
        "time '1767225600000' in column 'time' at line 2 is out of range as s since 1970"
        in message
    )
    assert "`time_unit=ms`" in message
    message = load_error(
        write(tmp_path, "time,a\n1767225600,1\n2026-01-01,2\n", "d.csv"),
        read=ReadOptions(time_unit="s"),
    )
    assert (
        "cannot read time '2026-01-01' in column 'time' at line 3 as a number of s since 1970"
        in message
    )


def test_reading_from_a_run_is_applied_and_options_win(tmp_path: Path) -> None:
    path = dated(tmp_path, "2026-01-01", "2026-01-03", "%d.%m.%Y %H:%M")
    fmt = sniff(path)
    columns = resolve_columns(fmt, time="Zeitstempel")
    run = Reading(
        decimal=",",
        decimal_settled=True,
        time_format="%m.%d.%Y %H:%M",
        date_order="month-first",
    )
    none = ReadOptions()
    sample = text_sample(fmt, columns)
    assert (
        decimal_reading(sample, fmt, columns, none, run).decimal == "."
    )  # a ',' file cannot hold decimal commas
    assert (
        time_reading(sample, fmt, columns, run, none, run, list).time_format
        == "%m.%d.%Y %H:%M"
    )  # fits every sampled time
    forced = time_reading(
        sample, fmt, columns, run, ReadOptions(dayfirst=True), run, list
    )
    assert (forced.time_format, forced.date_order) == ("%d.%m.%Y %H:%M", "day-first")
    assert (
        Reading.from_record(None) == Reading()
    )  # a run saved before readings existed reads files as before
    assert Reading.from_record(run.to_record()) == run


def test_the_runs_order_breaks_a_tie_when_its_format_does_not_fit(
    tmp_path: Path,
) -> None:
    path = dated(
        tmp_path, "2026-01-01", "2026-01-12", "%d/%m/%Y"
    )  # '/' alone would be read month-first
    fmt = sniff(path)
    columns = resolve_columns(fmt, time="Zeitstempel")
    run = Reading(time_format="%d.%m.%Y %H:%M", date_order="day-first")
    reading = time_reading(
        text_sample(fmt, columns),
        fmt,
        columns,
        Reading(),
        ReadOptions(),
        run,
        lambda: (
            frame["Zeitstempel"] for frame in read_frames(fmt, columns, 5, text=True)
        ),
    )
    assert (reading.time_format, reading.date_order, reading.date_order_assumed) == (
        "%d/%m/%Y",
        "day-first",
        False,
    )
