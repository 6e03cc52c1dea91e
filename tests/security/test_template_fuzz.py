"""Properties under the real bash: no parameter value ever runs as code; safe ones arrive intact."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from runner.errors import ParameterError
from runner.project.params import resolve_params, template_problems
from runner.project.records import EntryPoint, Parameter
from tests.security.shell import files_made_by, run_bash

VALUE_MARK = "VMARK"  # only hostile values name this file
TEMPLATE_MARKS = {"TMARK", "TMARKV"}  # dormant payloads the templates themselves carry
INERT = re.compile(r"[A-Za-z0-9_.,+\-:/=@%]*")
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")

# Template pieces, in format syntax ({p}, {q} are placeholders; {{ }} literal braces).
ATOMS = [
    # plain words
    *["{p}", "{q}", "x{p}y", "--a={p}", "{p}{q}", "w", "-x", "X={p}", "{p}=1", "~{p}", "*{p}"],
    # quotes of every kind
    *["'{p}'", "'a {p} b'", '"{p}"', '"x {p} $HOME"', '"${{HOME}}{p}"', "$'{p}'", "$'a\\' {p} '"],
    *["$'\\{p}'", '$"{p}"', '"\\{p}"', '"${p}"', '"`echo {p}`"', "'it''s {p}'", "$'\\x27{p}'"],
    # backslashes and comments
    *["\\{p}", "\\ {p}", "\\ #'{p}'", "\\\\{p}", "{p}\\", "# {p} '", "#{p}", "# it's {p}"],
    # command substitutions and backticks
    *["$(echo {p})", '"$(printf %s {p})"', "$(echo '{p}')", '$(echo "{p}")', "$({p})"],
    *["<(echo {p})", "$(echo $(echo {p}))", "$( (echo {p}) )", "`echo {p}`", "`{p}`"],
    *["`echo '{p}'`", "$(echo {p} # c\n)", "$(case {p} in x) :;; esac)"],
    # ${...}, arithmetic, [[ ]], eval, let, subscripts, brace expansion
    *["${{X:-{p}}}", "${{X{p}}}", "${{#X}}", '"${{X:-{p}}}"', "${{V:{p}}}", "$(( {p} + 1 ))"],
    *["$(({p}))", "$[{p}]", "(( {p} ))", "$(( $(echo {p}) ))", "[[ {p} == x ]]", "[[ 1 -eq {p} ]]"],
    *['[[ -n "{p}" ]]', "[ {p} = x ]", "eval echo {p}", "let x={p}", 'eval "echo {p}"'],
    *["echo eval {p}", "a[{p}]=1", "{p}[0]=1", "{{a,{p}}}", "{{1..{p}}}", "${p}", "$${p}"],
    # keywords a value might try to become
    *["for x {p} 1; do :; done", "case {p} in x) :;; esac", "if {p}; then :; fi"],
    "{p} true; then touch TMARK; fi",
    # loose syntax
    *["'", '"', "`", "$(", ")", "(", "{{", "}}", "\\", "$", "#", "<<", "|", "&", "EOF", "\tEOF"],
    *["cat <<EOF", "cat <<'EOF'", "cat <<-EOF", 'cat <<"E"OF', "cat <<<{p}", "cat <<E{p}"],
    # here-documents
    "cat <<EOF\n{p}\nEOF\n",
    "cat <<'EOF'\n{p}\n$(touch TMARK)\nEOF\n",
    "cat <<EOF\nE{p}\n\\$(touch TMARK)\nEOF\n",
    "cat <<-EOF\n\t{p}\n\t$(echo hi)\n\tEOF\n",
    "cat <<EOF\n{p}\\\nEOF\n\\$(touch TMARK)\nEOF\n",
    "cat <<A <<'B'\n{p}\nA\n{q}\n'$(touch TMARK)'\nB\n",
    "cat <<EOF\n{p}\\\nEOF\n{q}\nEOF\n",
    "cat <<EOF\nE\\\n{p}\n{q}\nEOF\n",
    '"$(case x in a) echo " {p} ";; esac)"',
    "$(echo # ) {p} '\n)",
    # dormant payloads: text that runs only if a value changes the structure around it
    *["'$(touch TMARK)'", "# $(touch TMARK)", "\\$(touch TMARK)", '"\\$(touch TMARK)"'],
    "$'\\'$(touch TMARK)'",
]
SEPARATORS = [" ", " ", "; ", " | ", " && ", " || ", "\n", "\n", "\n", "\t", ""]
# Small tokens, mixed at random: mostly broken shell, which is where scanners go wrong.
TOKENS = [
    *["{p}", "{q}", "'", '"', "$'", '$"', "`", "$(", "$((", "${{", "$[", "(", ")", "))", "]"],
    *["}}", "{{", "\\", "\\ ", "\\\n", "#", " ", " ", "\n", "\n", "\t", ";", "|", "&&", "<<"],
    *["<<-", "<<<", "EOF", "'EOF'", "cat", "echo", "x", "=", "[[", "]]", "eval", "let", "case"],
    *["in", "esac", "a)", ";;", "$", "V", "a[", "touch TMARK", "for", "do", "done", "if", "then"],
    *["fi", "-eq", "1", ",", "..", "~", "*"],
]
PRELUDES = ["", "", "V='a[$(touch TMARKV)]'\n"]  # arithmetic on $V would run its subscript

HOSTILE = [
    *["$(touch VMARK)", "`touch VMARK`", ";touch VMARK", "x; touch VMARK", "'; touch VMARK; '"],
    *['"; touch VMARK; "', "$'\\x27; touch VMARK'", "\ntouch VMARK\n", "a[$(touch VMARK)]"],
    *["EOF\ntouch VMARK", "\\", "a\\", "'", '"', "`", "EOF", "!", "*", "?", "[a]", "~", "{a,b}"],
    *["a,b", "1..3", "V", "X", "", " ", "case", "if", "in", "esac", ")", "(", "$", "${V}"],
    *["$((V))", "-1", "1e5", "0", "%s", "=", "a=b", "#", "#'", "\t", "E", "OF", "-x", "$V"],
]
hostile_text = st.text(alphabet="$`'\"\\;|&(){}[]<>#!*? \t\nabxEOFV=,.-:/@%+019", max_size=10)
payloads = st.builds(
    lambda before, after: before + "touch VMARK" + after,
    st.sampled_from(["$(", "`", ";", "\n", "'; ", '"; ', "a[$(", ")|", "&& ", "}; "]),
    st.sampled_from([")", "`", ";", "\n", " '", ' "', "", ")]", "#", " #"]),
)
inert = st.one_of(st.from_regex(r"[A-Za-z0-9_.,+\-:/=@%]{0,8}", fullmatch=True), st.integers())
values = st.one_of(st.sampled_from(HOSTILE), payloads, hostile_text, inert.map(str))


@st.composite
def templates(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(PRELUDES))]
    if draw(st.integers(0, 3)) == 0:
        return "".join(parts + draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12)))
    for _ in range(draw(st.integers(1, 3))):
        parts += [draw(st.sampled_from(ATOMS)), draw(st.sampled_from(SEPARATORS))]
    return "".join(parts)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, list[dict[str, str]]]:
    """A template, and values for it: hostile ones, and words of the template itself."""
    template = draw(templates())
    words = sorted(set(re.findall(r"[A-Za-z_]+", template)) - {"p", "q"}) or ["V"]
    value = st.one_of(values, st.sampled_from(words), st.sampled_from(words).map(str.upper))
    given = st.fixed_dictionaries({"p": value, "q": value}, optional={"extra": value})
    return template, draw(st.lists(given, min_size=1, max_size=4))


def render(template: str, given: dict[str, str]) -> str:
    params = (Parameter("p", "string", None), Parameter("q", "string", None))
    return resolve_params(EntryPoint("main", template, params), given, cwd=Path.cwd()).command


@settings(
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=cases())
def test_no_value_ever_runs_as_code(case: tuple[str, list[dict[str, str]]]) -> None:
    template, attempts = case
    if template_problems(template, ["p", "q"]):
        event("template refused at load time")
        return
    for values_given in attempts:
        assert code_run_by_values(template, values_given) == set()


def code_run_by_values(template: str, given: dict[str, str]) -> set[str]:
    """The marker files that exist only because of the values: VALUE_MARK when a value ran,
    or a template payload that benign values of the same shape leave dormant."""
    try:
        command = render(template, given)
    except ParameterError as exc:
        assert "of entry point 'main'" in exc.message
        event("values refused")
        return set()
    event("ran under bash")
    note(f"command: {command!r}")
    made = files_made_by(command)
    woken = made & TEMPLATE_MARKS
    if woken:  # the template's own code may run; a value must never wake a dormant payload
        benign = {name: "1" for name in given}  # same shape: appended extras complete syntax
        woken -= files_made_by(render(template, benign))
    return (made & {VALUE_MARK}) | woken


# (template, kind, expected output with {v} standing for the value)
FORMS = [
    ("printf '[%s]\\n' {p}", "plain", "[{v}]\n"),
    ("printf '[%s]\\n' x{p}y", "plain", "[x{v}y]\n"),
    ("printf '[%s]\\n' --a={p}", "plain", "[--a={v}]\n"),
    ("printf '[%s]\\n' {{a,{p}}}", "plain", "[a]\n[{v}]\n"),
    ("printf '[%s]\\n' \"x{p}y\"", "text", "[x{v}y]\n"),
    ("printf '[%s]\\n' 'x{p}y'", "text", "[x{v}y]\n"),
    ("printf '[%s]\\n' $'x{p}y'", "text", "[x{v}y]\n"),
    ("printf '[%s]\\n' $\"x{p}y\"", "text", "[x{v}y]\n"),
    ("printf '[%s]\\n' \"$(printf %s {p})\"", "text, not empty", "[{v}]\n"),
    ("printf '[%s]\\n' `printf %s {p}`", "text, not empty", "[{v}]\n"),
    ("printf '[%s]\\n' \\{p}", "text, not empty", "[{v}]\n"),
    ("cat <<EOF\nx{p}y\nEOF\n", "text", "x{v}y\n"),
    ("cat <<'EOF'\nx{p}y\nEOF\n", "text", "x{v}y\n"),
    ("cat <<-EOF\n\tx{p}y\n\tEOF\n", "text", "x{v}y\n"),
    ("printf '[%s]\\n' \"${{UNSET_X:-{p}}}\"", "number", "[{v}]\n"),
]
any_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=12)


def allowed(kind: str, value: str) -> bool:
    if kind == "plain":
        return True
    if kind == "number":
        return bool(NUMBER.fullmatch(value))
    return bool(INERT.fullmatch(value)) and (bool(value) or kind == "text")


@settings(max_examples=600, deadline=None, database=None)
@given(form=st.sampled_from(FORMS), value=st.one_of(values, any_text))
def test_accepted_values_arrive_intact(form: tuple[str, str, str], value: str) -> None:
    template, kind, expected = form
    try:
        command = render(template, {"p": value, "q": ""})
    except ParameterError:
        assert not allowed(kind, value), "a value the rule allows was refused"
        return
    assert allowed(kind, value), "a value the rule refuses was accepted"
    with tempfile.TemporaryDirectory() as tmp:
        done = run_bash(command, Path(tmp))
    assert done.stdout.decode() == expected.replace("{v}", value)


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.one_of(values, any_text))
def test_undeclared_parameters_arrive_intact(value: str) -> None:
    command = render("printf '[%s]\\n' {p}", {"p": "x", "q": "", "k": value})
    with tempfile.TemporaryDirectory() as tmp:
        assert run_bash(command, Path(tmp)).stdout.decode() == f"[x]\n[--k]\n[{value}]\n"
