"""The command line follows the conventions of the field: choices listed,
metavars that name the value, an example in every --help, shell
completion, ``python -m msprof``, ``msprof run -- COMMAND ...``."""
import os
import re
import subprocess
import sys

import pytest
from conftest import MSPROF, REPO, run_msprof

COMMANDS = ("run", "collect", "attach", "report", "diff", "flame", "export", "doctor")

# (command, option, its choices)
CHOICES = [
    ("run", "--backend", "auto|ebpf|inprocess"), ("run", "--mode", "trace|summary"),
    ("collect", "--backend", "auto|ebpf|inprocess"), ("collect", "--mode", "trace|summary"),
    ("attach", "--mode", "trace|summary"),
    ("report", "--format", "table|json"), ("diff", "--format", "table|json"),
    ("flame", "--metric", "device|launch|comm|memory"), ("flame", "--orientation", "icicle|flame"),
    ("export", "--to", "parquet|csv|chrome|hta|folded"),
    ("export", "--metric", "device|launch|comm|memory"),
]


def _help(*args) -> str:
    r = run_msprof(*args, "--help", env={"COLUMNS": "160"})
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_shows_real_metavars_and_an_example(command):
    out = _help(command)
    # typer's Python type labels, never a metavar a user should read
    assert not re.search(r"<(bool|str|int|float|list\[[^>]*\]|Path)>", out), out
    examples = out[out.index("Examples:"):]
    assert f"msprof {command} " in examples


@pytest.mark.parametrize("command, option, choices", CHOICES)
def test_choices_are_listed_beside_the_option(command, option, choices):
    line = next(line for line in _help(command).splitlines() if f"{option} " in line)
    assert f"[{choices}]" in line, line


def test_top_level_help_lists_every_command_and_completion():
    out = _help()
    for command in COMMANDS:
        assert re.search(rf"│ {command} ", out), command
    assert "--install-completion" in out and "--show-completion" in out


def test_completion_script_and_completions():
    r = run_msprof("--show-completion", "bash")
    assert r.returncode == 0, r.stderr
    assert "_MSPROF_COMPLETE=complete_bash" in r.stdout and "complete " in r.stdout

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_MSPROF_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split(" ")) - 1)}
        out = subprocess.run([MSPROF], env=env, capture_output=True, text=True, timeout=60)
        return out.stdout.split()

    assert complete("msprof run --backend ") == ["auto", "ebpf", "inprocess"]
    assert complete("msprof report x --section ")[:4] == ["overview", "ops", "types", "scopes"]
    assert complete("msprof at") == ["attach"]


def test_python_dash_m_msprof(tmp_path):
    r = subprocess.run([sys.executable, "-m", "msprof", "--version"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "msprof 0.1.0"
    r = subprocess.run([sys.executable, "-m", "msprof", "--help"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=60)
    assert "Usage: msprof [OPTIONS] COMMAND" in r.stdout


def test_run_takes_a_command_after_double_dash(tmp_path):
    out = tmp_path / "p"
    r = run_msprof("run", "-o", out, "-q", "--backend", "inprocess", "--",
                   "python3", "-c", "import sys; print('ran', sys.argv[1:]); sys.exit(3)",
                   "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    assert "ran ['--epochs', '1']" in r.stdout
    assert (out / "meta.json").exists()
    r = run_msprof("run", "-o", tmp_path / "q", "--", "no-such-command-here", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == \
        "msprof: error: script not found: no-such-command-here"


def test_every_command_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for command in COMMANDS:
        assert re.search(rf"msprof {command}\b", readme), command


@pytest.mark.parametrize("args, message", [
    (["flame", "x", "--orientation", "sideways"],
     "Invalid value for '--orientation' / '-o': 'sideways' is not one of 'icicle', 'flame'. "
     "(see 'msprof flame --help')"),
    (["report"], "Missing argument 'DIR'. (see 'msprof report --help')"),
    (["attach", "abc"], "Invalid value for 'PID'"),
])
def test_a_usage_mistake_is_one_line(args, message):
    r = run_msprof(*args)
    assert r.returncode == 2
    assert r.stderr.startswith(f"msprof: error: {message}") and r.stderr.count("\n") == 1, r.stderr


def test_a_command_does_not_build_jsonschemas_iri_grammar():
    """jsonschema imports ``rfc3987_syntax`` for its "iri" format where it
    is installed (Jupyter brings it, as in this venv through HTA), and that
    builds a grammar for 0.8 s at import: msprof's commands start without
    it, and a later import of it still works."""
    code = ("import importlib.util, sys\n"
            "import msprof.cli.main, msprof.analysis.meta_schema as m\n"
            "assert 'rfc3987_syntax' not in sys.modules, 'imported'\n"
            "assert m.jsonschema.Draft202012Validator\n"
            "if importlib.util.find_spec('rfc3987_syntax'):\n"
            "    import rfc3987_syntax\n"
            "    print('importable')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "importable"    # installed here: the check above had teeth
