"""A Griffe extension for the API reference (``mkdocs.yml``): sync twins and reST roles.

1. ``run = make_sync(async_run, "run")`` is a plain assignment to static analysis, so the
   reference would show ``run`` and ``shell`` as bare attributes. Each public attribute whose
   value is a ``make_sync(...)`` call becomes a function with the coroutine's parameters and
   the docstring ``make_sync`` generated at import time. Only the modules holding such twins
   are imported; everything else is read statically (importing ``procfound.__main__`` would
   run the command line).
2. The docstrings use reST roles (``:class:`ProcessError```), which Markdown shows verbatim;
   they are rendered as inline code instead.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_TWIN = re.compile(r"make_sync\((\w+),")
_ROLE = re.compile(r":(?:class|func|meth|attr|data|exc|mod):`~?([^`]+)`")


class SyncTwins(griffe.Extension):
    """Document generated sync twins as functions; render reST roles as inline code."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for module in _modules(pkg):
            for name, member in list(module.members.items()):
                if member.is_alias or name.startswith("_"):
                    continue
                if isinstance(member, griffe.Attribute):
                    match = _TWIN.match(str(member.value))
                    if match:
                        module.set_member(name, _twin(module, member, match.group(1), loader))
            for obj in _objects(module):
                if obj.docstring is not None:
                    obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)

    # Griffe 1 names this hook on_package_loaded; running it twice changes nothing.
    on_package_loaded = on_package


def _twin(
    module: griffe.Module, static: griffe.Attribute, coroutine: str, loader: griffe.GriffeLoader
) -> griffe.Function:
    source = module.members[coroutine]
    assert isinstance(source, griffe.Function), f"{module.path}.{coroutine} is not a function"
    live = getattr(importlib.import_module(module.path), static.name)
    return griffe.Function(
        static.name,
        lineno=static.lineno,
        endlineno=static.endlineno,
        parameters=source.parameters,
        returns=source.returns,
        docstring=griffe.Docstring(
            inspect.cleandoc(live.__doc__ or ""),
            lineno=static.lineno,
            parser=loader.docstring_parser,
            parser_options=loader.docstring_options,
        ),
    )


def _modules(module: griffe.Module) -> list[griffe.Module]:
    found = [module]
    for member in module.members.values():
        if not member.is_alias and isinstance(member, griffe.Module):
            found.extend(_modules(member))
    return found


def _objects(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and not isinstance(member, griffe.Module):
            assert isinstance(member, griffe.Object)
            found.extend(_objects(member))
    return found
