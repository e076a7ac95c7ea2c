"""Name rules of ``repohost.git.names`` (DECISIONS.md "Storage")."""

from __future__ import annotations

import subprocess
import sys

import pytest

from repohost.git.names import (
    MAX_NAME_LENGTH,
    MAX_SEGMENT_LENGTH,
    InvalidName,
    casefold_key,
    split_name,
    validate_gist_access_id,
    validate_gist_filename,
    validate_group_name,
    validate_repo_name,
    validate_segment,
)

VALID = [
    "repo",
    "Repo-1",
    "a",
    "9lives",
    "my_repo",
    "my.repo",
    "group/repo",
    "a/b/c/d",
    "v1.0",
    "x" * MAX_SEGMENT_LENGTH,
    "a.git.backup",
    "rm__notadeletedmarker",
    "2024/repo",
]

INVALID = [
    "",
    "/",
    ".",
    "..",
    "../etc",
    "a/../b",
    "a/./b",
    "/abs",
    "/abs/path",
    "trailing/",
    "a//b",
    ".hidden",
    "group/.hidden",
    ".trash/x",
    ".tmp/x",
    ".rc_gist_store/1",
    "-option",
    "_admin",
    "_12",
    "repo.git",
    "repo.GIT",
    "group.git/repo",
    "with space",
    "tab\tname",
    "new\nline",
    "nul\x00byte",
    "back\\slash",
    "colon:",
    "<test>",
    "q?",
    "ünïcode",
    "日本",
    "ｆｕｌｌｗｉｄｔｈ",
    "rm__20240101_120000_123456__repo",
    "rm__20240101_120000_123456_GROUP_g",
    "12345",
    "0",
    "x" * (MAX_SEGMENT_LENGTH + 1),
    "/".join(["abcdefghij"] * 24),  # 263 characters
]


@pytest.mark.parametrize("name", VALID)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_repo_name(name) == name
    assert validate_group_name(name) == name


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_repo_name(name)
    assert info.value.reason
    with pytest.raises(InvalidName):
        validate_group_name(name)


@pytest.mark.parametrize("value", [None, 12, b"repo", ["repo"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidName):
        validate_repo_name(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidName):
        validate_segment(value)  # type: ignore[arg-type]


def test_full_length_limit_is_255() -> None:
    groups = "/".join(["a" * 50] * 4)
    name = groups + "/" + "d" * (MAX_NAME_LENGTH - len(groups) - 1)
    assert len(name) == MAX_NAME_LENGTH
    assert validate_repo_name(name) == name
    with pytest.raises(InvalidName, match="longer than 255"):
        validate_repo_name(name + "e")


def test_segment_rules_apply_to_one_segment() -> None:
    assert validate_segment("repo") == "repo"
    for bad in ("a/b", "", "..", ".x", "x.git"):
        with pytest.raises(InvalidName):
            validate_segment(bad)


def test_an_all_digit_segment_inside_a_path_is_fine() -> None:
    assert validate_repo_name("group/123") == "group/123"


def test_names_differing_only_in_case_are_valid_but_share_a_key() -> None:
    assert validate_repo_name("Group/Repo") and validate_repo_name("group/repo")
    assert casefold_key("Group/Repo") == casefold_key("group/REPO") == "group/repo"
    assert casefold_key("a/b") != casefold_key("a/c")


@pytest.mark.parametrize(
    ("full", "expected"),
    [("repo", (None, "repo")), ("g/repo", ("g", "repo")), ("a/b/c", ("a/b", "c"))],
)
def test_split_name(full: str, expected: tuple[str | None, str]) -> None:
    assert split_name(full) == expected


@pytest.mark.parametrize("access_id", ["1", "42", "a1B2c3", "x-y_z", "a" * 100])
def test_gist_access_ids(access_id: str) -> None:
    assert validate_gist_access_id(access_id) == access_id


@pytest.mark.parametrize("access_id", ["", ".x", "-x", "_x", "a/b", "..", "a b", "a" * 101, 7])
def test_bad_gist_access_ids(access_id: object) -> None:
    with pytest.raises(InvalidName):
        validate_gist_access_id(access_id)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "filename", ["a.txt", "notes with space.md", "ünï.py", ".hidden", "x" * 255]
)
def test_gist_file_names(filename: str) -> None:
    assert validate_gist_filename(filename) == filename


@pytest.mark.parametrize(
    "filename",
    [
        "",
        "dir/file",
        "/abs",
        "a\\b",
        ".",
        "..",
        ".git",
        ".Git",
        "a\nb",
        "tab\t",
        "del\x7f",
        "x" * 256,
        "é" * 128,
        "\ud800",
        None,
    ],
)
def test_bad_gist_file_names(filename: object) -> None:
    with pytest.raises(InvalidName):
        validate_gist_filename(filename)  # type: ignore[arg-type]


def test_importing_the_package_does_not_import_dulwich() -> None:
    code = (
        "import sys, repohost.git, repohost.git.names, repohost.git.storage, repohost.git.locks;"
        "assert 'dulwich' not in sys.modules, 'dulwich imported';"
        "import repohost.git.read;"
        "assert 'dulwich' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
