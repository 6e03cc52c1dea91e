"""Safe YAML loading: hostile input fails fast with file:line:col messages; marks and texts kept."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.project.yamlsafe import Mark, load_yaml, parse_yaml


def parse(text: str) -> object:
    return parse_yaml(text.encode(), "MLproject").data


def error_of(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(SpecError) as info:
        parse_yaml(data, "MLproject")
    return info.value.message


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(8):
        prev, name = chr(97 + level), chr(98 + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# --- plain data, marks and the author's text -------------------------------------------------


def test_scalars_keep_yaml_types_for_validation() -> None:
    assert parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: text\nf: '1'\n") == {
        "a": 1, "b": 1.5, "c": True, "d": None, "e": "text", "f": "1",
    }  # fmt: skip


def test_texts_keep_what_the_author_wrote() -> None:
    doc = parse_yaml(b"version: 1.10\nflag: no\nlr: 1e-1\nq: 'it''s'\nn: null\n", "MLproject")
    assert doc.text(("version",)) == "1.10"
    assert doc.text(("flag",)) == "no"
    assert doc.text(("lr",)) == "1e-1"
    assert doc.text(("q",)) == "it's"
    assert doc.text(("missing",)) is None


def test_marks_are_one_based_and_fall_back_to_the_nearest_ancestor() -> None:
    doc = parse_yaml(b"entry_points:\n  main:\n    command: x\n    list: [a, b]\n", "MLproject")
    assert doc.mark(("entry_points", "main", "command")) == Mark(3, 5)
    assert doc.mark(("entry_points", "main", "list", 1)) == Mark(4, 15)
    assert doc.mark(("entry_points", "main", "command", "deeper")) == Mark(3, 5)
    assert doc.mark(("nothing",)) == Mark(1, 1)
    assert str(Mark(12, 5)) == "12:5"


def test_empty_document_is_none() -> None:
    assert parse("") is None
    assert parse("# only a comment\n") is None


def test_bom_and_crlf_parse_like_lf() -> None:
    lf = "name: x\nentry_points:\n  main:\n    command: echo hi\n"
    crlf = "\ufeff" + lf.replace("\n", "\r\n")
    assert parse(crlf) == parse(lf)
    doc = parse_yaml(crlf.encode(), "MLproject")
    assert doc.mark(("entry_points", "main", "command")) == Mark(4, 5)


def test_aliases_and_merge_keys_are_expanded() -> None:
    text = "base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\nlist: [*b]\n"
    assert parse(text) == {
        "base": {"x": 1, "y": 2},
        "use": {"x": 1, "y": 3},
        "list": [{"x": 1, "y": 2}],
    }


def test_merge_of_a_list_prefers_the_earlier_mapping() -> None:
    text = "a: &a {k: 1}\nb: &b {k: 2, j: 2}\nc: {<<: [*a, *b]}\n"
    assert parse(text)["c"] == {"k": 1, "j": 2}  # type: ignore[index]


def test_standard_explicit_tags_are_allowed() -> None:
    assert parse("a: !!str 1\nb: !!binary aGk=\nc: !!int '7'\n") == {"a": "1", "b": "aGk=", "c": 7}


# --- hostile input ---------------------------------------------------------------------------


def test_duplicate_key_names_both_locations() -> None:
    text = "entry_points:\n  main:\n    command: a\n    parameters: {}\n    command: b\n"
    assert error_of(text) == "MLproject:5:5: duplicate key 'command' (first at 3:5)"


def test_python_object_tag_is_refused() -> None:
    text = "x: !!python/object/new:os.system [touch /tmp/pwned]\n"
    assert error_of(text) == "MLproject:1:4: unsupported YAML tag '!!python/object/new:os.system'"


def test_local_tags_are_refused() -> None:
    assert error_of("a: !Ref b\n") == "MLproject:1:4: unsupported YAML tag '!Ref'"
    assert error_of("a: !!python/tuple [1]\n") == (
        "MLproject:1:4: unsupported YAML tag '!!python/tuple'"
    )


def test_billion_laughs_fails_fast() -> None:
    started = time.perf_counter()
    message = error_of(billion_laughs())
    assert time.perf_counter() - started < 0.1
    assert message == (
        "MLproject: too many aliases/nodes (more than 10000 after expanding aliases)"
    )


def test_node_cap_is_configurable() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml(b"a: [1, 2, 3]\n", "f.yaml", max_nodes=3)
    assert (
        info.value.message == "f.yaml: too many aliases/nodes (more than 3 after expanding aliases)"
    )


def test_recursive_alias_is_refused() -> None:
    assert error_of("a: &a [1, *a]\n") == "MLproject:1:4: recursive alias"


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_before_composing(opener: str) -> None:
    # 200k levels would overflow the C stack inside libyaml's composer. Which check fires first
    # (ours at 100 levels, or libyaml's own limit in PyYAML >= 6.0.4) is not the guarantee:
    # the user gets one SpecError naming the file and a position, about nesting.
    message = error_of(opener * 200_000)
    assert re.match(r"^MLproject:\d+:\d+: .*nesting", message), message


def test_non_scalar_keys_are_refused() -> None:
    assert error_of("? [a, b]\n: c\n") == "MLproject:1:3: mapping keys must be plain scalars"


def test_invalid_merge_source() -> None:
    assert error_of("a: {<<: 1}\n") == (
        "MLproject:1:9: a merge key '<<' needs a mapping or list of mappings"
    )


def test_invalid_utf8_names_the_byte_offset() -> None:
    assert error_of(b"name: caf\xe9\n") == "MLproject: invalid UTF-8 at byte offset 9"


def test_control_characters_are_refused() -> None:
    assert error_of('a: "x\x07"\n') == (
        "MLproject: unacceptable character #x0007: control characters are not allowed "
        "(at character offset 5)"
    )


def test_syntax_error_has_line_and_column() -> None:
    text = "name: x\nentry_points:\n  main:\n    parameters:\n      a: int\n"
    text += "    command: x\n  b: c: d\n"
    assert error_of(text) == "MLproject:7:7: mapping values are not allowed in this context"


def test_syntax_error_includes_context() -> None:
    assert error_of("a: [1, 2\n") == (
        "MLproject:2:1: did not find expected ',' or ']' (while parsing a flow sequence)"
    )
    assert error_of("a: 1\n---\nb: 2\n") == (
        "MLproject:2:1: but found another document (expected a single document in the stream)"
    )


# --- files -----------------------------------------------------------------------------------


def test_load_yaml_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "python_env.yaml"
    path.write_text("python: '3.11'\ndependencies: [numpy]\n")
    doc = load_yaml(path)
    assert doc.name == "python_env.yaml"
    assert doc.data == {"python": "3.11", "dependencies": ["numpy"]}


def test_size_is_checked_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "MLproject"
    path.write_bytes(b"#" * 1_000_001)
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert info.value.message == "MLproject exceeds size limit (1000001 bytes > 1000000 bytes)"


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "MLproject"
    path.write_text("a: 1\n" * 10)
    with pytest.raises(SpecError) as info:
        load_yaml(path, max_bytes=20)
    assert info.value.message == "MLproject exceeds size limit (50 bytes > 20 bytes)"


def test_an_endless_device_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "MLproject"
    path.symlink_to("/dev/zero")
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert info.value.message == "MLproject is a character device, not a file: refused"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "MLproject"
    os.mkfifo(path)
    with pytest.raises(SpecError) as info:
        load_yaml(path)  # a blocking open would hang here: no process ever writes to it
    assert info.value.message == "MLproject is a named pipe (FIFO), not a file: refused"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml(tmp_path)
    assert info.value.message == f"{tmp_path.name} is a directory, not a file: refused"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml(tmp_path / "missing.yaml")
    assert (
        info.value.message == f"cannot read {tmp_path / 'missing.yaml'}: No such file or directory"
    )
