"""The ``msprof`` console script: the Typer app, its commands, and the one
place where a user mistake (:class:`~msprof.errors.MsprofError`) becomes a
single ``msprof: error: ...`` line and an exit status."""
from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Optional

import typer

import msprof
from msprof.cli.help import Group, examples
from msprof.errors import MsprofError

# The base of the usage errors typer raises (click's ClickException, which
# newer typers carry inside): found through a public subclass of it.
_UsageErrors = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    name="msprof",
    cls=Group,
    help="eBPF profiler for deep-learning training: run records a profile "
    "directory (attach, one of a running job), the other commands read one.",
    epilog=examples("sudo msprof run examples/lenet_digits.py",
                    "msprof report msprof-20261128-180000",
                    "msprof --install-completion bash"),
    no_args_is_help=True,
    # --install-completion / --show-completion: shell completion of
    # commands, options and their choices (bash, zsh, fish, powershell).
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"msprof {msprof.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """eBPF profiler for deep-learning training."""


def _unavailable(name: str, why: str):
    def command() -> None:
        raise MsprofError(f"'msprof {name}' is unavailable: {why}")
    command.__doc__ = f"(unavailable: {why})"
    return command


def _register(name: str) -> None:
    """Adds the command defined in ``msprof.cli.commands.<name>``; a command
    whose module is absent is left out, one that cannot be imported says so
    when used."""
    module = f"msprof.cli.commands.{name}"
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return
        app.command(name)(_unavailable(name, f"missing module {e.name}"))
        return
    except ImportError as e:
        app.command(name)(_unavailable(name, str(e).splitlines()[0]))
        return
    mod.register(app)


for _name in ("run", "attach", "report", "diff", "flame", "export", "doctor"):
    _register(_name)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        # Not standalone: a usage mistake (a missing argument, a value that
        # is not one of the choices) comes back here to be said in one line.
        status = app(args=argv, prog_name="msprof", standalone_mode=False)
    except _UsageErrors as e:
        if type(e).__name__ == "NoArgsIsHelpError":      # bare `msprof`: the help
            print(e.format_message(), file=sys.stderr)
        else:
            hint = f" (see '{e.ctx.command_path} --help')" if getattr(e, "ctx", None) else ""
            # (typer words a value off the choices "Value error, 'x' is not one of ...")
            message = e.format_message().replace("Value error, ", "")
            print(f"msprof: error: {message}{hint}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Abort:
        print("msprof: aborted", file=sys.stderr)
        sys.exit(1)
    except MsprofError as e:
        print(f"msprof: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("msprof: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # `msprof report ... | head`: the reader left; nothing to report, and
        # Python's final flush of stdout must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
