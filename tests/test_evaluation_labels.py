"""Labels CSV: parsing, targets per task kind, and errors that name the file and line."""

from __future__ import annotations

import numpy as np
import pytest

from mediafm.evaluation.labels import LabelsError, read_labels, targets, write_labels


def _write(tmp_path, text):
    p = tmp_path / "labels.csv"
    p.write_text(text)
    return p


def test_roundtrip_and_targets(tmp_path):
    p = tmp_path / "l.csv"
    write_labels(p, [("a", 0.0, 1.5, "calm|tense"), ("b", 2.0, 3.0, "sad"), ("a", 4.0, 5.0, "calm")])
    rows = read_labels(p)
    assert [r.clip.title for r in rows] == ["a", "b", "a"]
    assert rows[0].clip.end == 1.5 and rows[0].line == 2
    t = targets(rows, "multilabel")
    assert t.classes == ("calm", "sad", "tense")
    np.testing.assert_array_equal(t.y, [[1, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_comments_blank_lines_and_kinds(tmp_path):
    p = _write(tmp_path, "# made by hand\ntitle,start,end,label\n\nx,0,1,1\ny,1,2,0\nz,2,3,true\n")
    rows = read_labels(p)
    np.testing.assert_array_equal(targets(rows, "binary").y, [1, 0, 1])
    mc = targets(read_labels(_write(tmp_path, "title,start,end,label\nx,0,1,b\ny,0,1,a\n")), "multiclass")
    assert mc.classes == ("a", "b") and list(mc.y) == [1, 0]
    rk = targets(read_labels(_write(tmp_path, "title,start,end,label\nx,0,1,0.5\ny,0,1,-2\n")), "rank")
    np.testing.assert_allclose(rk.y, [0.5, -2.0])


@pytest.mark.parametrize("text,match", [
    ("", "empty labels file"),
    ("name,from,to,label\nx,0,1,a\n", "line 1: header must be"),
    ("title,start,end,label\nx,0,1\n", "line 2: expected 4 fields"),
    ("title,start,end,label\nx,0,1,a\nx,zero,1,a\n", "line 3: start/end must be seconds"),
    ("title,start,end,label\nx,5,1,a\n", "line 2: need 0 <= start < end"),
    ("title,start,end,label\nx,0,1,\n", "line 2: empty label"),
    ("title,start,end,label\n", "no labelled clips"),
])
def test_parse_errors_name_file_and_line(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(LabelsError, match=match) as err:
        read_labels(p)
    assert str(p) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(LabelsError, match="does not exist"):
        read_labels(tmp_path / "nope.csv")


@pytest.mark.parametrize("kind,label,match", [
    ("rank", "high", "line 2: rank task needs a number"),
    ("binary", "maybe", "line 2: binary task needs 0/1"),
    ("multiclass", "a|b", "line 2: multiclass task needs one class"),
])
def test_label_does_not_fit_task(tmp_path, kind, label, match):
    p = _write(tmp_path, f"title,start,end,label\nx,0,1,{label}\n")
    with pytest.raises(LabelsError, match=match):
        targets(read_labels(p), kind, p)
