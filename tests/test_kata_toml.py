"""kata.toml validation: every error names the file and the field, and says what was expected."""

from __future__ import annotations

import pytest

from grader.kata import KataError, discover, find_root, load_kata, select

GOOD = {
    "slug": '"toy"',
    "title": '"Toy"',
    "pillar": '"kernel"',
    "order": "1",
    "difficulty": '"easy"',
    "files": '["toy.py"]',
    "forbid_imports": "[]",
    "timeout": "30",
}


def write_toml(tmp_path, **changes):
    fields = {**GOOD, **changes}
    folder = tmp_path / "exercises" / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)
    path = folder / "kata.toml"
    path.write_text(text)
    return path


def test_a_good_kata_loads(tmp_path):
    kata = load_kata(write_toml(tmp_path))
    assert (kata.slug, kata.order, kata.files, kata.timeout) == ("toy", 1, ("toy.py",), 30.0)
    assert kata.spec_timeout == 10.0


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"slug": None}, ["missing field 'slug'"]),
        ({"slug": '"other"'}, ["'slug'", "folder"]),
        ({"pillar": '"cooking"'}, ["'pillar'", "cooking", "databases"]),
        ({"difficulty": '"trivial"'}, ["'difficulty'", "intro"]),
        ({"order": '"first"'}, ["'order'", "whole number"]),
        ({"order": "true"}, ["'order'"]),
        ({"files": "[]"}, ["'files'", "at least one"]),
        ({"files": '["../escape.py"]'}, ["'files'"]),
        ({"files": '["toy.txt"]'}, ["'files'"]),
        ({"forbid_imports": '["not a module"]'}, ["'forbid_imports'"]),
        ({"timeout": "0"}, ["positive"]),
        ({"timeout": '"soon"'}, ["'timeout'"]),
        ({"colour": '"blue"'}, ["unknown field", "colour"]),
    ],
)
def test_a_malformed_kata_names_file_and_field(tmp_path, changes, words):
    path = write_toml(tmp_path, **changes)
    with pytest.raises(KataError) as err:
        load_kata(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    path = write_toml(tmp_path)
    path.write_text("slug = \n")
    with pytest.raises(KataError, match="not valid TOML"):
        load_kata(path)


def test_duplicate_order_is_refused(tmp_path):
    write_toml(tmp_path)
    other = tmp_path / "exercises" / "two"
    other.mkdir()
    (other / "kata.toml").write_text(
        (tmp_path / "exercises" / "toy" / "kata.toml").read_text().replace('"toy"', '"two"', 1)
    )
    with pytest.raises(KataError, match="same as kata"):
        discover(tmp_path)


def test_unknown_slug_lists_the_known_ones(tmp_path):
    write_toml(tmp_path)
    with pytest.raises(KataError, match="unknown kata 'nope'; known katas: toy"):
        select(discover(tmp_path), ["nope"])


def test_root_is_found_from_a_subfolder(tmp_path):
    write_toml(tmp_path)
    assert find_root(tmp_path / "exercises" / "toy") == tmp_path.resolve()
    with pytest.raises(KataError, match="no backend-katas checkout"):
        find_root(tmp_path / "exercises" / "toy" / ".." / ".." / "..")


def test_no_specs_is_said_plainly(tmp_path):
    kata = load_kata(write_toml(tmp_path))
    with pytest.raises(KataError, match="no hidden specs"):
        kata.spec_files()
