"""Every command the documentation shows parses with its module's own parser, so that a renamed or removed flag
fails here instead of in a reader's terminal.

Commands are collected from README.md, docs/*.md and the docstrings of tfnets, apps and benchmarks: code blocks,
indented code lines and inline code spans, where a shell command starts with `python -m apps.…`, `python -m tfnets.…`,
`python -m benchmarks…` or `tfnets-launch`. Nothing runs: each command's arguments go through the parser only
(`parse_command`, the one place that knows how each module builds it); a module named without arguments must
answer `--help`. Templates are filled in: `<name>` and all-capitals metavars (`N`, `DIR`) become `1`, `...` is
dropped and `[optional]` brackets are removed.
"""

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest

from tfnets.errors import TfnetsError
from tfnets.experiment import launch

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("apps", "tfnets", "benchmarks")
MODULE = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# `<name>`, or a capitalised word such as N, FILE or DIR; a single other letter is a value (`--part C`).
PLACEHOLDER = re.compile(r"<[^<>]+>|[A-Z][A-Z0-9_]+$|[NKP]$")
OPERATORS = {"|", "||", "&&", ";", "&"}
# `python -m <package>` runs the package's __main__; where that runs the command on import, its parser lives here.
PARSER_MODULE = {
    "benchmarks": "benchmarks.bench",
    "tfnets.data": "tfnets.data.__main__",
    "tfnets.check": "tfnets.check.__main__",
}


# -- what the documentation shows ---------------------------------------------------------------------------------


def _code_lines(text):
    """`(line number, text)` of fenced code lines (not json/python blocks) and indented code lines, `\\`-joined."""
    lines, fence, out, pending = text.splitlines(), None, [], None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            continue
        in_code = (fence is not None and fence not in ("json", "python")) or line.startswith("    ")
        if not in_code:
            pending = None
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + " " + stripped)
        else:
            pending = (number, stripped)
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1])
            continue
        out.append(pending)
        pending = None
    return out


def _inline_spans(text):
    """`(line number, text)` of single-backtick code spans outside fenced blocks (a span may wrap a line)."""
    outside = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return [
        (outside.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()))
        for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", outside)
    ]


def _commands(snippet):
    """The argv lists of the `python -m <our module>` / `tfnets-launch` commands a shell snippet runs."""
    try:
        tokens = shlex.split(snippet, comments=True)
    except ValueError:
        return []  # not shell (prose with an apostrophe); a command in it would not be copyable anyway
    found, current = [], []
    for token in [*tokens, ";"]:
        if token not in OPERATORS:
            current.append(token)
            continue
        while current and ENV_ASSIGNMENT.match(current[0]):
            current.pop(0)
        if current[:1] == ["tfnets-launch"]:
            found.append(["python", "-m", "tfnets.experiment.launch", *current[1:]])
        elif len(current) > 2 and Path(current[0]).name.startswith("python") and current[1] == "-m":
            if current[2].split(".")[0] in PACKAGES:
                found.append(current)
        current = []
    return found


def _documents():
    """`(where, text)` of README.md, docs/*.md and every docstring of our packages."""
    yield "README.md", (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        yield f"docs/{page.name}", page.read_text()
    for package in PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(source.read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        line = node.body[0].lineno if node.body else 1
                        yield f"{source.relative_to(ROOT)}:{line} ({getattr(node, 'name', 'module')})", doc


def documented_commands():
    """`(where, argv)` of every documented command, `argv` starting with `python -m <module>`."""
    found = []
    for where, text in _documents():
        is_markdown = where.endswith(".md")
        snippets = _code_lines(text) + _inline_spans(text)
        for line, snippet in snippets:
            for argv in _commands(snippet):
                found.append((f"{where}:{line}" if is_markdown else where, argv))
    return found


def fill_in(arguments):
    """A documented argument list as a user would type it: placeholders filled, `...` and `[ ]` removed."""
    filled, optional = [], False
    for token in arguments:
        if token.startswith("[") and not token.startswith("[]"):
            token, optional = token[1:], True
        if optional and token.endswith("]"):
            token, optional = token[:-1], False
        if token in ("...", ""):
            continue
        filled.append("1" if PLACEHOLDER.fullmatch(token) else token)
    return filled


# -- how each module parses its arguments ---------------------------------------------------------------------------


def parse_command(module_name, arguments):
    """Parse `arguments` as `python -m module_name arguments` would, without running anything.

    Returns `(parser, namespace, inner)`: `inner` is the command a launcher runs (checked in turn), else None.
    Raises SystemExit (argparse), TfnetsError or LaunchError when the command would be refused.
    """
    if module_name == "tfnets.experiment.launch":
        args, command = launch.parse_args(arguments)
        return launch.build_parser(), args, command
    module = importlib.import_module(PARSER_MODULE.get(module_name, module_name))
    if arguments[:1] == ["predict"] and hasattr(module, "predict_parser"):  # an app's predict subcommand
        parser = module.predict_parser()
        return parser, parser.parse_args(arguments[1:]), None
    if hasattr(module, "Config"):  # an app: its declared configuration, checked as `main` checks it
        if "--config" in arguments:  # the file is the user's (a run folder's config.json): parse the flags only
            at = arguments.index("--config")
            arguments = arguments[:at] + arguments[at + 2 :]
        return module.Config.parser(), module.Config.from_argv(arguments), None
    parser = module.build_parser()
    return parser, parser.parse_args(arguments), None


def misplaced_values(parser, args):
    """Options whose default is a file of some kind (`README.md`) given a value that is not (`never`): the value
    was meant for another flag."""
    wrong = []
    for action in parser._actions:
        default, value = action.default, getattr(args, action.dest, None)
        if not isinstance(default, str) or not isinstance(value, str) or value == default:
            continue
        suffix = re.search(r"\.[A-Za-z]+$", default)
        if suffix and not value.endswith(suffix.group(0)):
            wrong.append(f"{action.option_strings[0]} {value!r} (a {suffix.group(0)} file, like {default!r})")
    return wrong


def check(argv, capsys):
    """None when `argv` (`python -m module args...`) parses, else why not."""
    module_name, arguments = argv[2], fill_in(argv[3:])
    if not MODULE.match(module_name):
        return None  # a template's module (apps.<name>, apps.X): nothing to parse
    if not arguments:
        arguments = ["--help"]  # a module named in passing (`python -m apps.predict`): it must exist and parse
    try:
        parser, args, inner = parse_command(module_name, arguments)
    except SystemExit as stop:
        if stop.code == 0:
            return None  # --help
        return capsys.readouterr().err.strip() or f"exit {stop.code}"
    except (TfnetsError, launch.LaunchError, ModuleNotFoundError) as err:
        return f"{type(err).__name__}: {err}"
    wrong = misplaced_values(parser, args)
    if wrong:
        return "value of another flag given to " + "; ".join(wrong)
    if inner and len(inner) > 2 and inner[1] == "-m" and inner[2].split(".")[0] in PACKAGES:
        return check(inner, capsys)
    return None


COMMANDS = documented_commands()


def test_the_documentation_shows_commands_of_every_kind():
    modules = {argv[2] for _, argv in COMMANDS}
    assert {"apps.notmnist_cnn", "apps.predict", "apps.results", "benchmarks", "tfnets.data"} <= modules
    assert "tfnets.experiment.launch" in modules and any(argv[3:4] == ["predict"] for _, argv in COMMANDS)
    assert len(COMMANDS) > 100


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[f"{where} {shlex.join(argv[2:])}" for where, argv in COMMANDS])
def test_a_documented_command_parses(where, argv, capsys):
    problem = check(argv, capsys)
    assert problem is None, f"{where}: `{shlex.join(argv)}` does not parse: {problem}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["apps.results", "--runs", "other/runs", "--readme", "never"], "value of another flag given to --readme"),
        (["apps.notmnist_cnn", "--l2", "0.1", "--keep_prob", "0.75"], "unrecognized arguments: --keep_prob"),
        (["apps.notmnist_mlp", "--sweep", "lr=0.1"], "unknown sweep parameter 'lr'"),
        (
            ["tfnets.experiment.launch", "--workers", "2", "--", "python", "-m", "apps.mnist_cnn", "--droput"],
            "--droput",
        ),
        (["apps.no_such_app"], "No module named 'apps.no_such_app'"),
    ],
)
def test_drifted_commands_are_caught(argv, message, capsys):
    problem = check(["python", "-m", *argv], capsys)
    assert problem is not None and message in problem


def test_templates_are_filled_in_as_a_user_would():
    assert fill_in(["saved_models/x", "a.png", "[more.png", "...]", "[--top-k", "3]"]) == [
        "saved_models/x",
        "a.png",
        "more.png",
        "--top-k",
        "3",
    ]
    assert fill_in(["--data-dir", "DIR", "--sweep", "layers=[100],[50,50]", "<command>"]) == [
        "--data-dir",
        "1",
        "--sweep",
        "layers=[100],[50,50]",
        "1",
    ]
    assert _commands("find . -name '*.png' | KEY=1 python -m apps.predict m - --format json  # note") == [
        ["python", "-m", "apps.predict", "m", "-", "--format", "json"]
    ]
