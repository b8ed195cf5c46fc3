"""A Griffe extension for the API reference (``mkdocs.yml``): sync twins and reST roles.

1. ``run = make_sync(async_run, "run")`` is a plain assignment to static analysis, so the
   reference would show ``run`` and ``shell`` as bare attributes. Each public attribute (of a
   module or a class) whose value is a ``make_sync(...)`` call becomes a function with the
   coroutine's parameters and the docstring ``make_sync`` generated at import time. Likewise
   ``stream = with_stream_parameters(_stream, "stream")``: a function with the parameters of
   the shared template ``_stream_parameters`` and the implementation's docstring and return
   type. Only the modules holding such twins are imported; everything else is read statically
   (importing ``procfound.__main__`` would run the command line).
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
_STREAM = re.compile(r"with_stream_parameters\((\w+),")
_STREAM_TEMPLATE = "_stream_parameters"
_ROLE = re.compile(r":(?:class|func|meth|attr|data|exc|mod):`~?([^`]+)`")


class SyncTwins(griffe.Extension):
    """Document generated sync twins as functions; render reST roles as inline code."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for module in _modules(pkg):
            containers: list[griffe.Module | griffe.Class] = [module]
            containers += [m for m in module.members.values() if isinstance(m, griffe.Class)]
            for container in containers:
                _document_twins(module, container, loader)
            for obj in _objects(module):
                if obj.docstring is not None:
                    obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)

    # Griffe 1 names this hook on_package_loaded; running it twice changes nothing.
    on_package_loaded = on_package


def _document_twins(
    module: griffe.Module, container: griffe.Module | griffe.Class, loader: griffe.GriffeLoader
) -> None:
    for name, member in list(container.members.items()):
        if member.is_alias or name.startswith("_") or not isinstance(member, griffe.Attribute):
            continue
        if match := _TWIN.match(str(member.value)):
            source = container.members[match.group(1)]
            twin = _twin(module, container, member, source, source, loader)
        elif match := _STREAM.match(str(member.value)):
            template = module.members[_STREAM_TEMPLATE]
            twin = _twin(
                module, container, member, template, module.members[match.group(1)], loader
            )
        else:
            continue
        container.set_member(name, twin)


def _twin(
    module: griffe.Module,
    container: griffe.Module | griffe.Class,
    static: griffe.Attribute,
    parameters_from: Any,
    returns_from: Any,
    loader: griffe.GriffeLoader,
) -> griffe.Function:
    for source in (parameters_from, returns_from):
        assert isinstance(source, griffe.Function), f"{source.path} is not a function"
    live: Any = importlib.import_module(module.path)
    if isinstance(container, griffe.Class):
        live = getattr(live, container.name)
    live = getattr(live, static.name)
    return griffe.Function(
        static.name,
        lineno=static.lineno,
        endlineno=static.endlineno,
        parameters=parameters_from.parameters,
        returns=returns_from.returns,
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
