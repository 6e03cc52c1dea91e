"""Parameters: typed validation, canonical values, and commands that deliver values literally."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runner.errors import ParameterError, SpecError, UsageError
from runner.project.params import (
    ResolvedParams,
    fits_type,
    parse_param_args,
    render_command,
    resolve_params,
    template_problems,
)
from runner.project.records import EntryPoint, Parameter

GREETER = EntryPoint(
    "greeter",
    "python greeter.py {greeting} {name}",
    (Parameter("greeting", "string", "hi"), Parameter("name", "string", None)),
)
PROBE = "import json, sys; print(json.dumps(sys.argv[1:]))"


def entry(command: str, *params: Parameter) -> EntryPoint:
    return EntryPoint("main", command, params)


def resolve(ep: EntryPoint, *, cwd: Path | None = None, **given: str) -> ResolvedParams:
    return resolve_params(ep, given, cwd=cwd or Path.cwd())


def param_error(ep: EntryPoint, *, cwd: Path | None = None, **given: str) -> str:
    with pytest.raises(ParameterError) as info:
        resolve(ep, cwd=cwd, **given)
    return info.value.message


def given_error(ep: EntryPoint, given: dict[str, str]) -> str:
    with pytest.raises(ParameterError) as info:
        resolve_params(ep, given, cwd=Path.cwd())
    return info.value.message


def run_probe(command: str, cwd: Path) -> list[str]:
    """Run a rendered command through bash; the probe prints the argv it received."""
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=True
    )
    result: list[str] = json.loads(done.stdout)
    return result


# --- MLflow behaviour ------------------------------------------------------------------------


def test_defaults_and_extras_render_like_mlflow() -> None:
    resolved = resolve(GREETER, name="friend", excitement="10")
    assert resolved.declared == {"greeting": "hi", "name": "friend"}
    assert resolved.extra == {"excitement": "10"}
    assert resolved.command == "python greeter.py hi friend --excitement 10"
    assert resolved.recorded == {"greeting": "hi", "name": "friend", "excitement": "10"}


def test_missing_required_parameters_are_listed_in_declaration_order() -> None:
    ep = entry("x {b} {a}", Parameter("b", "string", None), Parameter("a", "int", None))
    assert param_error(ep) == "No value given for missing parameters: 'b', 'a'"
    assert param_error(GREETER) == "No value given for missing parameters: 'name'"


def test_keys_are_case_sensitive() -> None:
    ep = entry("train {alpha}", Parameter("alpha", "float", None))
    resolved = resolve(ep, alpha="0.77", ALPHA="0.89")
    assert resolved.declared == {"alpha": "0.77"}
    assert resolved.extra == {"ALPHA": "0.89"}
    assert resolved.command == "train 0.77 --ALPHA 0.89"


def test_recorded_values_are_raw_not_shell_quoted() -> None:
    ep = entry("echo {s} {d}", Parameter("s", "string", None), Parameter("d", "string", "a b"))
    resolved = resolve(ep, s="hello world", e="it's")
    assert resolved.recorded == {"s": "hello world", "d": "a b", "e": "it's"}
    assert resolved.command == "echo 'hello world' 'a b' --e 'it'\"'\"'s'"


def test_literal_braces() -> None:
    ep = entry("echo {{1:2}} {x} {{x}}", Parameter("x", "string", None))
    assert resolve(ep, x="v").command == "echo {1:2} v {x}"


def test_script_entry_point_gets_extras_only() -> None:
    ep = EntryPoint("train.py", "python train.py")
    assert resolve(ep, lr="0.1", b="x y").command == "python train.py --lr 0.1 --b 'x y'"


def test_empty_value_stays_one_argument() -> None:
    ep = entry("echo {x}", Parameter("x", "string", None))
    assert resolve(ep, x="").command == "echo ''"


# --- types -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0.5", "-0.99", "1e-05", "3", ".5", "1.", "+2E3"])
def test_float_accepts_python_float_syntax(value: str) -> None:
    ep = entry("t {lr}", Parameter("lr", "float", None))
    assert resolve(ep, lr=value).declared == {"lr": value}


@pytest.mark.parametrize("value", ["abc", "1.5.2", "", " 1", "1\n", "1_000", "0x10"])
def test_float_rejects_other_text(value: str) -> None:
    ep = entry("t {lr}", Parameter("lr", "float", None))
    assert param_error(ep, lr=value) == f"parameter 'lr': expected float, got {value!r}"


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "NaN"])
def test_float_rejects_nan_and_infinity(value: str) -> None:
    ep = entry("t {lr}", Parameter("lr", "float", None))
    assert param_error(ep, lr=value) == (
        f"parameter 'lr': expected float, got {value!r} (nan and infinity are refused)"
    )


def test_float_rejects_values_that_overflow_to_infinity() -> None:
    ep = entry("t {lr}", Parameter("lr", "float", None))
    assert param_error(ep, lr="1e999") == (
        "parameter 'lr': expected float, got '1e999' "
        "(it overflows to infinity; nan and infinity are refused)"
    )
    assert param_error(ep, lr="-1e400").startswith("parameter 'lr': expected float, got '-1e400'")
    assert resolve(ep, lr="1e-999").declared == {"lr": "1e-999"}  # underflow to 0 is fine


ARABIC_123 = "\u0661\u0662\u0663"  # Python's int() and re's \\d accept these digits
FULLWIDTH_12 = "\uff11\uff12"


@pytest.mark.parametrize(
    ("ptype", "value"), [("int", ARABIC_123), ("float", ARABIC_123), ("int", FULLWIDTH_12)]
)
def test_numbers_take_ascii_digits_only(ptype: str, value: str) -> None:
    ep = entry("t {n}", Parameter("n", ptype, None))
    assert param_error(ep, n=value) == (
        f"parameter 'n': expected {ptype}, got {value!r} (only the ASCII digits 0-9 are accepted)"
    )
    signed = "-" + ARABIC_123
    assert param_error(ep, n=signed) == f"parameter 'n': expected {ptype}, got {signed!r}"


def test_fits_type_refuses_what_the_run_would_refuse() -> None:
    assert not fits_type("int", ARABIC_123)
    assert not fits_type("float", "1e999")
    assert not fits_type("float", "\u0663.\u0665")
    assert fits_type("int", "-12")
    assert fits_type("float", "2.5e-3")


def test_int_accepts_integers_and_rejects_fractions() -> None:
    ep = entry("t {n}", Parameter("n", "int", None))
    assert resolve(ep, n="-12").command == "t -12"
    assert param_error(ep, n="1.5") == "parameter 'n': expected int, got '1.5'"
    assert param_error(ep, n="1\n") == "parameter 'n': expected int, got '1\\n'"


@pytest.mark.parametrize("value", ["true", "False", "1", "0", "YES", "no"])
def test_bool_accepts_common_spellings_and_keeps_them(value: str) -> None:
    ep = entry("t {flag}", Parameter("flag", "bool", None))
    assert resolve(ep, flag=value).declared == {"flag": value}


def test_bool_rejects_other_words() -> None:
    ep = entry("t {flag}", Parameter("flag", "bool", None))
    assert param_error(ep, flag="maybe") == "parameter 'flag': expected bool, got 'maybe'"


def test_all_type_errors_are_reported_together() -> None:
    ep = entry("t {a} {b}", Parameter("a", "int", None), Parameter("b", "float", None))
    assert param_error(ep, a="x", b="y") == (
        "parameter 'a': expected int, got 'x'\nparameter 'b': expected float, got 'y'"
    )


def test_unknown_types_behave_as_string() -> None:
    ep = entry("t {a}", Parameter("a", "action", None))
    assert resolve(ep, a="anything goes").command == "t 'anything goes'"


def test_uri_needs_a_scheme_and_is_passed_through() -> None:
    ep = entry("t {uri}", Parameter("uri", "uri", None))
    assert resolve(ep, uri="s3://b/k").command == "t s3://b/k"
    assert resolve(ep, uri="file:///tmp/x").command == "t file:///tmp/x"
    assert param_error(ep, uri="/tmp/x") == "Expected URI for parameter uri but got /tmp/x"


# --- path parameters -------------------------------------------------------------------------


def test_relative_path_resolves_against_cwd_and_records_the_original(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.csv").write_text("x")
    ep = entry("t {p}", Parameter("p", "path", None))
    resolved = resolve(ep, cwd=tmp_path, p="data/in.csv")
    assert resolved.command == f"t {shlex.quote(str(tmp_path / 'data' / 'in.csv'))}"
    assert resolved.recorded == {"p": "data/in.csv"}


def test_path_default_also_resolves_against_cwd(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("x")
    ep = entry("t {p}", Parameter("p", "path", "d.txt"))
    assert resolve(ep, cwd=tmp_path).command == f"t {shlex.quote(str(tmp_path / 'd.txt'))}"


def test_file_uri_path_becomes_a_local_path(tmp_path: Path) -> None:
    target = tmp_path / "my file.txt"
    target.write_text("x")
    ep = entry("t {p}", Parameter("p", "path", None))
    uri = f"file://{str(target).replace(' ', '%20')}"
    resolved = resolve(ep, cwd=tmp_path, p=uri)
    assert resolved.command == f"t {shlex.quote(str(target))}"
    assert resolved.recorded == {"p": uri}


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    ep = entry("t {p}", Parameter("p", "path", None))
    assert param_error(ep, cwd=tmp_path, p="nope.csv") == (
        "Got value nope.csv for parameter p, but no such file or directory was found."
    )


def test_remote_path_is_not_supported_yet(tmp_path: Path) -> None:
    ep = entry("t {p}", Parameter("p", "path", None))
    with pytest.raises(ParameterError) as info:
        resolve(ep, cwd=tmp_path, p="s3://bucket/key.csv")
    assert info.value.message == (
        "parameter 'p': downloading remote path parameters (s3://) is not supported yet"
    )
    assert info.value.hint == "download the file first and pass its local path"


def test_file_uri_on_another_host_is_refused(tmp_path: Path) -> None:
    ep = entry("t {p}", Parameter("p", "path", None))
    assert param_error(ep, cwd=tmp_path, p="file://server/share/x") == (
        "parameter 'p': file URIs on other hosts are not supported"
    )


# --- injection -------------------------------------------------------------------------------

HOSTILE = [
    "x; touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "a\nb",
    'it\'s "quoted"',
    "'; touch pwned; '",
    "{name}",
    "--flag",
    "*",
    "~",
    "a  b\tc",
    "",
    "\\",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_arrive_as_one_literal_argument(tmp_path: Path, value: str) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    python = shlex.quote(sys.executable)
    ep = entry(f"{python} probe.py {{name}} end", Parameter("name", "string", None))
    resolved = resolve(ep, cwd=tmp_path, name=value, extra=value)
    assert run_probe(resolved.command, tmp_path) == [value, "end", "--extra", value]
    assert not (tmp_path / "pwned").exists()


def test_script_entry_point_receives_extras_as_argv(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(PROBE)
    ep = EntryPoint("train.py", f"{shlex.quote(sys.executable)} train.py")
    command = resolve(ep, cwd=tmp_path, lr="0.1", b="x y").command
    assert run_probe(command, tmp_path) == ["--lr", "0.1", "--b", "x y"]


def test_render_never_evaluates_format_fields() -> None:
    with pytest.raises(SpecError) as info:
        render_command("main", "echo {a.__class__}", {"a": "x"})
    assert info.value.message == (
        "entry point 'main': command uses undeclared placeholder {a.__class__}"
    )


def test_render_reports_broken_templates() -> None:
    with pytest.raises(SpecError) as info:
        render_command("main", "echo }", {})
    assert info.value.message == (
        "entry point 'main': invalid command template: Single '}' encountered in format string"
    )


# --- undeclared keys and limits --------------------------------------------------------------


@pytest.mark.parametrize("key", ["weird key", "x;touch /tmp/k", "-flag", "1abc", "a$b", "a\n"])
def test_invalid_extra_names_are_refused(key: str) -> None:
    assert given_error(GREETER, {"name": "x", key: "1"}) == (
        f"invalid parameter name {key!r}: undeclared parameter names must match "
        "^[A-Za-z_][A-Za-z0-9_.-]*$"
    )


def test_extra_names_with_dots_and_dashes_are_fine() -> None:
    assert resolve_params(GREETER, {"name": "x", "a.b-c": "1"}, cwd=Path.cwd()).command.endswith(
        " --a.b-c 1"
    )


def test_nul_bytes_are_refused() -> None:
    assert param_error(GREETER, name="a\0b") == "parameter 'name' contains a NUL byte"
    assert (
        given_error(GREETER, {"name": "x", "k\0": "v"}) == "parameter 'k\\x00' contains a NUL byte"
    )


def test_value_size_is_capped() -> None:
    with pytest.raises(ParameterError) as info:
        resolve(GREETER, name="x" * 100_001)
    assert info.value.message == (
        "value of parameter 'name' is too long (100001 bytes > 100000 bytes)"
    )
    assert info.value.hint == "pass large inputs as a file with a path parameter"


def test_total_size_is_capped() -> None:
    given = {"name": "x"} | {f"k{i}": "x" * 99_000 for i in range(11)}
    assert given_error(GREETER, given) == (
        "parameters are too large in total (1089028 bytes > 1000000 bytes)"
    )


# --- template checks used by the spec loader -------------------------------------------------


def test_template_problems_accepts_plain_placeholders() -> None:
    assert template_problems("python x.py {a} --b={b} {{lit}} $(cat {a})", ["a", "b"]) == []


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("x {0}", "positional placeholder {0} is not allowed; use a parameter name"),
        ("x {}", "positional placeholder {} is not allowed; use a parameter name"),
        ("x {a.b}", "placeholder {a.b} uses attribute or index access, which is not allowed"),
        ("x {a[0]}", "placeholder {a[0]} uses attribute or index access, which is not allowed"),
        ("x {a!r}", "placeholder {a!r} uses a conversion or format spec, which is not allowed"),
        ("x {a:>5}", "placeholder {a:>5} uses a conversion or format spec, which is not allowed"),
        ("x {nope}", "placeholder {nope} is not a declared parameter of this entry point"),
        ("x }", "invalid command template: Single '}' encountered in format string"),
        ("cat <<{a}\nx\n", "placeholder {a} is in a here-document delimiter, which is not allowed"),
        ("cat <<'E{a}'\n", "placeholder {a} is in a here-document delimiter, which is not allowed"),
        ("x\0 {a}", "the command contains a NUL character"),
    ],
)
def test_template_problems(template: str, problem: str) -> None:
    assert template_problems(template, ["a"]) == [problem]


@pytest.mark.parametrize(
    "template",
    [
        "python -c '{a}'",
        'echo "x {a}"',
        "echo `cat {a}`",
        "echo $'{a}' $\"{a}\"",
        "cat <<EOF\n{a}\nEOF\n",
        "echo $(( {a} + 1 )) ${{X:-{a}}}",
        "echo \\{a} ${a}",
    ],
)
def test_placeholders_inside_other_syntax_load_fine(template: str) -> None:
    # Since their values are checked when the command is rendered (MLflow runs these too).
    assert template_problems(template, ["a"]) == []


def test_quote_tracking_understands_escapes_and_comments() -> None:
    template = "# don't worry\necho \\' {a} \"it's\" {a} 'x\"y' {a} # it's {a}\n{a}"
    assert template_problems(template, ["a"]) == []


# --- values where a placeholder is not a plain word --------------------------------------------

INERT = "letters, digits and _ . , + - : / = @ %"


def render_error(template: str, **values: str) -> str:
    with pytest.raises(ParameterError) as info:
        render_command("main", template, values)
    return info.value.message


def test_inert_values_go_into_quotes_as_they_are() -> None:
    template = "python -c 'import sys; sys.exit({code})' \"{name}\" $'{name}'"
    assert render_command("main", template, {"code": "3", "name": "run-1/a.b"}) == (
        "python -c 'import sys; sys.exit(3)' \"run-1/a.b\" $'run-1/a.b'"
    )


def test_other_values_inside_quotes_are_refused_with_the_reason() -> None:
    assert render_error('echo "x{s}y"', s="a b") == (
        "parameter 's' of entry point 'main' is used inside double quotes in the command, "
        f"so its value may only contain {INERT}; got 'a b'"
    )
    assert render_error("echo 'é{s}'", s="é") == (
        "parameter 's' of entry point 'main' is used inside single quotes in the command, "
        f"so its value may only contain {INERT}; got 'é'"
    )


def test_each_refused_parameter_is_reported_once() -> None:
    assert render_error("echo '{a}' '{a}' # {b}", a="x y", b="$b") == "\n".join(
        [
            "parameter 'a' of entry point 'main' is used inside single quotes in the command, "
            f"so its value may only contain {INERT}; got 'x y'",
            "parameter 'b' of entry point 'main' is used inside a comment in the command, "
            f"so its value may only contain {INERT}; got '$b'",
        ]
    )


def test_arithmetic_takes_numbers_only() -> None:
    assert render_command("main", "echo $(( {n} * 2 ))", {"n": "-4"}) == "echo $(( -4 * 2 ))"
    assert render_error("echo $(( {n} * 2 ))", n="n") == (
        "parameter 'n' of entry point 'main' is used inside an arithmetic expression in the "
        "command, so its value must be a number; got 'n'"
    )


def test_empty_values_are_fine_inside_quotes_but_not_where_they_join_syntax() -> None:
    assert render_command("main", "echo '{s}' \"{s}\"", {"s": ""}) == "echo '' \"\""
    assert render_error("echo ${s}(x)", s="") == (
        "parameter 's' of entry point 'main' is used right after $ in the command, "
        "so its value may not be empty"
    )


def test_command_substitutions_take_inert_values() -> None:
    assert render_command("main", "cat $(ls {d})", {"d": "data/x"}) == "cat $(ls data/x)"
    assert render_error("cat $(ls {d})", d="a b") == (
        "parameter 'd' of entry point 'main' is used inside $(...) in the command, "
        f"so its value may only contain {INERT}; got 'a b'"
    )
    assert render_error("x=$({d} -v)", d="if") == (
        "parameter 'd' of entry point 'main' is used as a command name or keyword inside $(...) "
        "in the command, so its value must be a number; got 'if'"
    )


def test_plain_words_that_could_read_as_syntax_are_always_quoted() -> None:
    values = {"tool": "python3", "v": "x,y", "w": "if"}
    assert render_command("main", "{tool} t.py X={v}", values) == "'python3' t.py X=x,y"
    assert render_command("main", "X={v} {tool}", values) == "X='x,y' 'python3'"
    assert render_command("main", "echo {{a,{v}}} {v} {w}", values) == "echo {a,'x,y'} x,y 'if'"


def test_undeclared_parameters_need_a_command_that_ends_plainly() -> None:
    ep = entry("python t.py # {a}", Parameter("a", "string", "1"))
    assert given_error(ep, {"k": "v"}) == (
        "undeclared parameters ('k') cannot be added to the command of entry point 'main': "
        "it does not end as a plain shell word (it ends inside quotes, a comment, "
        "a here-document or an expansion)"
    )
    ep = entry("python t.py '{a}' # c\necho", Parameter("a", "string", "1"))
    assert resolve(ep, k="v").command == "python t.py '1' # c\necho --k v"


# --- the -P command-line syntax --------------------------------------------------------------


def test_parse_param_args_splits_on_the_first_equals() -> None:
    assert parse_param_args(["name=friend=you", "q='x'", "e="]) == {
        "name": "friend=you", "q": "'x'", "e": "",
    }  # fmt: skip


def test_parse_param_args_needs_an_equals() -> None:
    with pytest.raises(UsageError) as info:
        parse_param_args(["alpha"])
    assert info.value.message == "Invalid format for -P parameter: 'alpha'. Use -P name=value."


def test_parse_param_args_refuses_repeats() -> None:
    with pytest.raises(UsageError) as info:
        parse_param_args(["alpha=1", "alpha=2"])
    assert info.value.message == "Repeated parameter: 'alpha'"


def test_parse_param_args_refuses_an_empty_name() -> None:
    with pytest.raises(UsageError) as info:
        parse_param_args(["=x"])
    assert info.value.message == "Invalid -P parameter '=x': the name before '=' is empty."


def test_resolve_does_not_depend_on_process_cwd(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    ep = entry("t {p}", Parameter("p", "path", None))
    assert resolve(ep, cwd=tmp_path, p="f").command == f"t {tmp_path / 'f'}"
    assert os.getcwd() != str(tmp_path)


def test_resolved_paths_list_the_absolute_path_inputs(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    entry = EntryPoint(
        "main",
        "cat {data} {name}",
        (Parameter("data", "path", None), Parameter("name", "string", "n")),
    )
    resolved = resolve_params(entry, {"data": "in.txt"}, cwd=tmp_path)
    assert resolved.paths == (str(tmp_path / "in.txt"),)
    assert resolved.recorded["data"] == "in.txt"
