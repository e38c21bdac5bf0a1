"""The subset of Go's text/template (as Helm runs it) that the chart's templates may use, exactly.

Supported: ``{{ .Values.a.b }}``, ``{{ $.Values.a }}`` and ``{{ . }}`` references, string literals (``"..."``
and raw ```...```, how a template writes KServe's own ``{{.Name}}``), ``if``/``else``/``end``,
``range``/``end`` (dot is each item, ``$`` the root), parentheses, pipelines, and the functions ``default``,
``list`` and ``not``; the ``{{-``/``-}}`` whitespace trimming. Anything else raises, so a template using more fails
its tests rather than being rendered wrongly.
"""

from __future__ import annotations

import json
import re
from typing import Any

ACTION = re.compile(r"\{\{(-\s)?((?:\"(?:[^\"\\]|\\.)*\"|`[^`]*`|[^\"`}]|\}(?!\}))*?)(\s-)?\}\}", re.S)
TOKEN = re.compile(r"\s*(\"(?:[^\"\\]|\\.)*\"|`[^`]*`|\(|\)|\||\$?\.[A-Za-z0-9_.]*|\$|-?[0-9]+|[A-Za-z_][A-Za-z0-9_]*)")
MISSING = object()


def render(template: str, root: dict[str, Any]) -> str:
    parts = _parse(_lex(template))
    body, rest = _block(parts, 0, closers=())
    assert rest == len(parts), "unbalanced {{ end }}"
    return _run(body, root, root)


def _lex(template: str) -> list[tuple[str, str]]:
    """("text", ...) and ("action", ...) parts, with the trim markers applied to the text around them."""
    parts: list[tuple[str, str]] = []
    position, trim_next = 0, False
    for match in ACTION.finditer(template):
        text = template[position:match.start()]
        text = text.lstrip() if trim_next else text
        parts.append(("text", text.rstrip() if match.group(1) else text))
        parts.append(("action", match.group(2).strip()))
        position, trim_next = match.end(), bool(match.group(3))
    tail = template[position:]
    parts.append(("text", tail.lstrip() if trim_next else tail))
    assert all("{{" not in text for kind, text in parts if kind == "text"), "an action the renderer cannot read"
    return parts


def _parse(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [part for part in parts if part != ("text", "")]


def _block(parts: list[tuple[str, str]], index: int, closers: tuple[str, ...]) -> tuple[list[Any], int]:
    """Nodes until one of ``closers`` (``end``/``else``), and the index of that closer."""
    nodes: list[Any] = []
    while index < len(parts):
        kind, text = parts[index]
        keyword = text.split(None, 1)[0] if kind == "action" and text else ""
        if kind == "text":
            nodes.append(("text", text))
        elif keyword in closers:
            return nodes, index
        elif keyword in ("if", "range"):
            body, index = _block(parts, index + 1, ("end", "else"))
            other: list[Any] = []
            if parts[index][1] == "else":
                other, index = _block(parts, index + 1, ("end",))
            assert parts[index][1] == "end", f"{keyword} without end"
            nodes.append((keyword, text.split(None, 1)[1], body, other))
        elif keyword in ("end", "else"):
            raise AssertionError(f"unexpected {{{{ {text} }}}}")
        else:
            nodes.append(("print", text))
        index += 1
    if closers:
        raise AssertionError(f"missing {{{{ end }}}} (wanted one of {closers})")
    return nodes, index


def _run(nodes: list[Any], dot: Any, root: Any) -> str:
    out: list[str] = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "print":
            out.append(_printed(_evaluate(node[1], dot, root)))
        elif node[0] == "if":
            out.append(_run(node[2] if _truthy(_evaluate(node[1], dot, root)) else node[3], dot, root))
        else:  # range
            items = _evaluate(node[1], dot, root)
            assert items is None or isinstance(items, list), f"range over a {type(items).__name__}"
            out.extend(_run(node[2], item, root) for item in items or [])
            if not items:
                out.append(_run(node[3], dot, root))
    return "".join(out)


def _evaluate(expression: str, dot: Any, root: Any) -> Any:
    tokens = TOKEN.findall(expression)
    assert "".join(tokens).replace(" ", "") == expression.replace(" ", ""), f"cannot read {expression!r}"
    value, rest = _pipeline(tokens, dot, root)
    assert not rest, f"cannot read {expression!r}"
    return value


def _pipeline(tokens: list[str], dot: Any, root: Any) -> tuple[Any, list[str]]:
    value, tokens = _command(tokens, dot, root, piped=MISSING)
    while tokens and tokens[0] == "|":
        value, tokens = _command(tokens[1:], dot, root, piped=value)
    return value, tokens


def _command(tokens: list[str], dot: Any, root: Any, piped: Any) -> tuple[Any, list[str]]:
    head = tokens[0]
    if head in ("default", "list", "not"):
        args: list[Any] = []
        tokens = tokens[1:]
        while tokens and tokens[0] not in ("|", ")"):
            arg, tokens = _term(tokens, dot, root)
            args.append(arg)
        if piped is not MISSING:
            args.append(piped)
        if head == "list":
            return list(args), tokens
        if head == "not":
            assert len(args) == 1, "not takes one argument"
            return not _truthy(args[0]), tokens
        assert len(args) == 2, "default takes two arguments"
        return (args[1] if _truthy(args[1]) else args[0]), tokens
    assert piped is MISSING, f"cannot pipe into {head}"
    return _term(tokens, dot, root)


def _term(tokens: list[str], dot: Any, root: Any) -> tuple[Any, list[str]]:
    head, tokens = tokens[0], tokens[1:]
    if head == "(":
        value, tokens = _pipeline(tokens, dot, root)
        assert tokens and tokens[0] == ")", "unbalanced parentheses"
        return value, tokens[1:]
    if head.startswith('"'):
        return json.loads(head), tokens
    if head.startswith("`"):
        return head[1:-1], tokens
    if re.fullmatch(r"-?[0-9]+", head):
        return int(head), tokens
    if head in ("true", "false"):
        return head == "true", tokens
    if head == "$" or head.startswith(("$.", ".")):
        value = root if head.startswith("$") else dot
        for key in head.lstrip("$").strip(".").split(".") if head.strip("$.") else []:
            assert isinstance(value, dict), f"{head}: nil pointer evaluating .{key}"
            value = value.get(key)  # a missing key is nil, as in Helm
        return value, tokens
    raise AssertionError(f"the chart renderer does not support {head!r}")


def _truthy(value: Any) -> bool:
    return value is not None and value is not False and value != 0 and value != "" and value != [] and value != {}


def _printed(value: Any) -> str:
    assert value is not None, "a reference to a value that is not set (Helm would print <no value>)"
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
