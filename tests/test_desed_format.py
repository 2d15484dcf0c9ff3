import pytest

from matsed_lite.data.desed_format import (DataError, Event, parse_durations, parse_strong, parse_unlabeled,
                                      parse_weak, read_strong, read_weak, write_durations,
                                      write_strong, write_unlabeled, write_weak)


def _tsv(path, text):
    path.write_text(text)
    return path


def test_round_trip_of_all_four_kinds(tmp_path):
    events = [Event("a.wav", 0.5, 1.25, "Dog"), Event("a.wav", 2.0, 9.5, "Blender"),
              Event("b.wav", 0.0, 0.25, "Cat")]
    write_strong(tmp_path / "s.tsv", events, empty_files=["c.wav"])
    got = read_strong(tmp_path / "s.tsv", classes=["Blender", "Cat", "Dog"])
    assert got.events == events
    assert got.filenames == ["a.wav", "b.wav", "c.wav"]
    assert got.events_by_file()["c.wav"] == []
    assert got.labels == ["Blender", "Cat", "Dog"]

    write_weak(tmp_path / "w.tsv", {"x.wav": ["Dog", "Cat", "Dog"], "y.wav": []})
    assert read_weak(tmp_path / "w.tsv") == {"x.wav": ("Cat", "Dog"), "y.wav": ()}
    write_unlabeled(tmp_path / "u.tsv", ["u1.wav", "u2.wav"])
    assert parse_unlabeled(tmp_path / "u.tsv") == (["u1.wav", "u2.wav"], [])
    write_durations(tmp_path / "d.tsv", {"a.wav": 10.0, "b.wav": 3.5})
    assert parse_durations(tmp_path / "d.tsv") == ({"a.wav": 10.0, "b.wav": 3.5}, [])


def test_strong_problems_name_file_row_and_cause(tmp_path):
    path = _tsv(tmp_path / "strong.tsv",
                "filename\tonset\toffset\tevent_label\n"
                "ok.wav\t1.0\t2.0\tDog\n"          # row 2
                "a.wav\t3.0\t2.0\tDog\n"           # row 3: onset >= offset
                "b.wav\t-1.0\t2.0\tDog\n"          # row 4: negative
                "c.wav\t1.0\t12.0\tDog\n"          # row 5: past duration
                "d.wav\t1.0\t2.0\tUnicorn\n"       # row 6: unknown label
                "e.wav\tone\t2.0\tDog\n"           # row 7: not a number
                "f.wav\t1.0\n")                    # row 8: malformed
    labels, problems = parse_strong(path, classes=["Dog"], durations={"c.wav": 10.0})
    assert [e.filename for e in labels.events] == ["ok.wav"]
    rows = {p.row: p.message for p in problems}
    assert set(rows) == {3, 4, 5, 6, 7, 8}
    assert "onset 3 is not before offset 2" in rows[3]
    assert "negative" in rows[4]
    assert "past the end of c.wav (10 s)" in rows[5]
    assert "'Unicorn' is not in the class list" in rows[6]
    assert "'one' is not a number" in rows[7]
    assert "expected 4 tab-separated fields" in rows[8]
    assert all(str(path) in str(p) for p in problems)
    with pytest.raises(DataError, match=r"strong.tsv, row 3: onset"):
        read_strong(path, classes=["Dog"], durations={"c.wav": 10.0})


def test_header_empty_file_and_missing_file(tmp_path):
    bad = _tsv(tmp_path / "bad.tsv", "file\tonset\toffset\tlabel\nx.wav\t0\t1\tDog\n")
    _, problems = parse_strong(bad)
    assert len(problems) == 1 and problems[0].row == 1 and "header" in problems[0].message
    _, problems = parse_weak(_tsv(tmp_path / "empty.tsv", ""))
    assert "empty file" in problems[0].message and problems[0].row is None
    _, problems = parse_unlabeled(tmp_path / "nope.tsv")
    assert problems[0].message == "file not found"


def test_weak_duplicates_and_unknown_labels(tmp_path):
    path = _tsv(tmp_path / "weak.tsv", "filename\tevent_labels\na.wav\tDog,Cat\na.wav\tDog\n"
                                       "b.wav\tDog,Horse\n")
    got, problems = parse_weak(path, classes=["Cat", "Dog"])
    assert got == {"a.wav": ("Cat", "Dog")}
    assert [(p.row, "twice" in p.message or "Horse" in p.message) for p in problems] == [(3, True), (4, True)]


def test_writers_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "s.tsv"
    write_strong(target, [Event("a.wav", 0, 1, "Dog")])
    before = target.read_text()

    class Boom(Exception):
        pass

    def bad_events():
        yield Event("b.wav", 0, 1, "Dog")
        raise Boom

    with pytest.raises(Boom):
        write_strong(target, bad_events())
    assert target.read_text() == before  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["s.tsv"]  # no temp left behind
