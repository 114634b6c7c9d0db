"""How every ``msprof`` command presents its ``--help``: metavars that say
what a value is (``DIR``, ``N``, ``[trace|summary]``) instead of the Python
type typer prints by default (``<str>``, ``<int>``, ``<bool>`` beside a
flag), and examples under the options."""
from __future__ import annotations

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

# Typer's default labels are Python type names; these are the conventional
# metavars of command-line tools (a flag takes no value, so shows none).
_TYPE_METAVARS = {"str": "TEXT", "int": "N", "float": "NUMBER", "Path": "PATH"}


class _Argument(TyperArgument):
    """An argument whose name (its metavar) says it all: typer would add
    its Python type beside it."""

    def display_type_rich(self, ctx):
        return None


def _set_metavar(param) -> None:
    if isinstance(param, TyperArgument) and param.metavar is not None:
        param.__class__ = _Argument
    if param.metavar is not None:
        return
    if getattr(param, "is_flag", False):
        param.metavar = ""
        return
    desc = param.type_descriptor
    if desc.is_choice:
        choices = "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
        param.metavar = f"[{choices}]"
        return
    label = param.bare_type()
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    param.metavar = _TYPE_METAVARS.get(label, label.upper())


class Command(TyperCommand):
    """A command whose help shows real metavars."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            _set_metavar(p)
        return params


class Group(TyperGroup):
    """The top-level ``msprof`` group, with the same metavars."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            _set_metavar(p)
        return params


def examples(*lines: str) -> str:
    """An epilog listing example command lines, one per line."""
    return "Examples:\n\n" + "\n".join(f"  {line}" for line in lines)


def command(app: typer.Typer, *example_lines: str, **settings):
    """``app.command`` with msprof's help conventions and these examples."""
    return app.command(cls=Command, epilog=examples(*example_lines), **settings)
