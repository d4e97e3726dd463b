"""OData ``$filter`` parser and evaluator of the Graph simulator (a TEST DOUBLE).

One small tokeniser + recursive-descent parser used by every simulated Graph collection.
It deliberately refuses what it does not understand with :class:`FilterError` (served
as Graph's 400 error body), so a malformed or injected filter is visible as an error
instead of silently widening a query.

Grammar (precedence low → high)::

    expr       := and_expr ( 'or' and_expr )*
    and_expr   := not_expr ( 'and' not_expr )*
    not_expr   := 'not' not_expr | comparison
    comparison := '(' expr ')'
                | func '(' path ',' literal ')'            # startswith / endswith / contains
                | path ( eq|ne|gt|ge|lt|le ) literal
                | path 'in' '(' literal ( ',' literal )* ')'
    literal    := 'string' ('' escapes a quote) | guid | datetime | number
                | true | false | null
    path       := segment ( '/' segment )*                # e.g. status/errorCode

Type-cast segments such as ``microsoft.graph.accessReviewQueryScope`` are skipped when a
path is resolved. The left operand of a comparison must be a property path: comparing
two literals (``'1' eq '1'``, the classic injection) is an error, as in Graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FilterError",
    "Node",
    "compile_filter",
    "parse_datetime",
    "parse_filter",
    "resolve_path",
]


class FilterError(ValueError):
    """The ``$filter`` cannot be parsed or evaluated (→ HTTP 400)."""


# ---------------------------------------------------------------------------------------
# Tokeniser
# ---------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w]))
  | (?P<path>[A-Za-z_][\w.]*(?:/[A-Za-z_][\w.]*)*)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)

_COMPARISON_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_KEYWORDS = _COMPARISON_OPS | {"and", "or", "not", "in", "true", "false", "null"}
_FUNCTIONS = {"startswith", "endswith", "contains"}


@dataclass(frozen=True)
class _Token:
    kind: str  # string guid datetime number path lparen rparen comma eof
    text: str
    pos: int


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise FilterError(f"Invalid filter clause: unterminated string literal at {pos}")
            raise FilterError(f"Invalid filter clause: unexpected character {text[pos]!r} at {pos}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("eof", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any  # str | int | float | bool | None | datetime
    kind: str  # string guid datetime number bool null


@dataclass(frozen=True)
class Compare:
    op: str
    path: str
    literal: Literal


@dataclass(frozen=True)
class In:
    path: str
    literals: tuple[Literal, ...]


@dataclass(frozen=True)
class Func:
    name: str
    path: str
    literal: Literal


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Compare | In | Func | And | Or | Not


def parse_datetime(text: str) -> datetime:
    """Parse an ISO-8601 timestamp as Graph writes it (up to 7 fractional digits, Z)."""
    match = _DATETIME_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    date_part, fraction, zone = match.group(1), match.group(2) or "", match.group(3) or ""
    # Python accepts at most 6 fractional digits; Graph writes 7.
    if len(date_part) == 10:
        date_part += "T00:00:00"
    micro = (fraction[1:] + "000000")[:6] if fraction else ""
    zone = "+00:00" if zone in {"", "Z", "z"} else zone
    parsed = datetime.fromisoformat(date_part + ("." + micro if micro else "") + zone)
    return parsed.astimezone(UTC)


_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(\.\d{1,9})?(Z|z|[+-]\d{2}:?\d{2})?$"
)


class _Parser:
    def __init__(self, text: str, allowed_paths: frozenset[str] | None) -> None:
        self._tokens = _tokenise(text)
        self._index = 0
        self._allowed = allowed_paths

    # -- helpers -----------------------------------------------------------------------
    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, kind: str, what: str) -> _Token:
        token = self._next()
        if token.kind != kind:
            found = token.text or "end of filter"
            raise FilterError(
                f"Invalid filter clause: expected {what} at {token.pos}, found {found!r}"
            )
        return token

    def _is_keyword(self, token: _Token, word: str) -> bool:
        return token.kind == "path" and token.text == word

    # -- grammar -----------------------------------------------------------------------
    def parse(self) -> Node:
        if self._peek().kind == "eof":
            raise FilterError("Invalid filter clause: empty filter")
        node = self._or()
        token = self._peek()
        if token.kind != "eof":
            raise FilterError(f"Invalid filter clause: unexpected {token.text!r} at {token.pos}")
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._is_keyword(self._peek(), "or"):
            self._next()
            node = Or(node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._is_keyword(self._peek(), "and"):
            self._next()
            node = And(node, self._not())
        return node

    def _not(self) -> Node:
        if self._is_keyword(self._peek(), "not"):
            self._next()
            return Not(self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        token = self._peek()
        if token.kind == "lparen":
            self._next()
            node = self._or()
            self._expect("rparen", "')'")
            return node
        if token.kind != "path":
            raise FilterError(
                f"Invalid filter clause: the left operand at {token.pos} must be a property,"
                f" found {token.text or 'end of filter'!r}"
            )
        if token.text in _KEYWORDS:
            raise FilterError(
                f"Invalid filter clause: the left operand at {token.pos} must be a property,"
                f" found keyword {token.text!r}"
            )
        self._next()
        if self._peek().kind == "lparen":
            return self._function(token)
        path = self._check_path(token)
        op_token = self._next()
        if op_token.kind == "path" and op_token.text in _COMPARISON_OPS:
            return Compare(op_token.text, path, self._literal())
        if op_token.kind == "path" and op_token.text == "in":
            self._expect("lparen", "'(' after 'in'")
            literals = [self._literal()]
            while self._peek().kind == "comma":
                self._next()
                literals.append(self._literal())
            self._expect("rparen", "')' closing the 'in' list")
            return In(path, tuple(literals))
        raise FilterError(
            f"Invalid filter clause: expected an operator after {path!r} at {op_token.pos},"
            f" found {op_token.text or 'end of filter'!r}"
        )

    def _function(self, name_token: _Token) -> Node:
        name = name_token.text.lower()
        if name in {"any", "all"} or name_token.text.endswith(("/any", "/all")):
            raise FilterError(
                f"Invalid filter clause: lambda operator {name_token.text!r} is not supported"
            )
        if name not in _FUNCTIONS:
            raise FilterError(f"Invalid filter clause: unknown function {name_token.text!r}")
        self._expect("lparen", "'('")
        path_token = self._expect("path", "a property as the first argument")
        path = self._check_path(path_token)
        self._expect("comma", "','")
        literal = self._literal()
        if literal.kind != "string":
            raise FilterError(f"Invalid filter clause: {name_token.text}() needs a string literal")
        self._expect("rparen", "')'")
        return Func(name, path, literal)

    def _literal(self) -> Literal:
        token = self._next()
        if token.kind == "string":
            return Literal(token.text[1:-1].replace("''", "'"), "string")
        if token.kind == "guid":
            return Literal(token.text.lower(), "guid")
        if token.kind == "datetime":
            try:
                return Literal(parse_datetime(token.text), "datetime")
            except ValueError as exc:
                raise FilterError(f"Invalid filter clause: bad datetime {token.text!r}") from exc
        if token.kind == "number":
            number: int | float = float(token.text) if "." in token.text else int(token.text)
            return Literal(number, "number")
        if token.kind == "path" and token.text in {"true", "false"}:
            return Literal(token.text == "true", "bool")
        if token.kind == "path" and token.text == "null":
            return Literal(None, "null")
        raise FilterError(
            f"Invalid filter clause: expected a literal at {token.pos},"
            f" found {token.text or 'end of filter'!r}"
        )

    def _check_path(self, token: _Token) -> str:
        path = token.text
        if self._allowed is not None and _canonical_path(path) not in self._allowed:
            raise FilterError(
                f"Invalid filter clause: property {path!r} is not supported in this query"
            )
        return path


def _canonical_path(path: str) -> str:
    return "/".join(
        seg.lower() for seg in path.split("/") if not seg.lower().startswith("microsoft.graph.")
    )


def parse_filter(text: str, allowed_paths: Iterable[str] | None = None) -> Node:
    """Parse ``text`` into an AST; ``allowed_paths`` (case-insensitive) limits properties."""
    allowed = frozenset(_canonical_path(p) for p in allowed_paths) if allowed_paths else None
    return _Parser(text, allowed).parse()


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------

_MISSING = object()


def resolve_path(item: Mapping[str, Any], path: str) -> Any:
    """Follow ``a/b/c`` through nested dicts (keys case-insensitive); None when absent."""
    current: Any = item
    for segment in path.split("/"):
        if segment.lower().startswith("microsoft.graph."):
            continue
        if not isinstance(current, Mapping):
            return None
        if segment in current:
            current = current[segment]
            continue
        lowered = segment.lower()
        found: Any = _MISSING
        for key, value in current.items():
            if key.lower() == lowered:
                found = value
                break
        if found is _MISSING:
            return None
        current = found
    return current


def _type_error(op: str, value: Any, literal: Literal) -> FilterError:
    return FilterError(
        "A binary operator with incompatible types was detected. Found operand types"
        f" '{type(value).__name__}' and '{literal.kind}' for operator kind '{op}'."
    )


def _comparable(value: Any, literal: Literal, op: str) -> tuple[Any, Any]:
    """Return (left, right) normalised for comparison, or raise on a type mismatch."""
    lit = literal.value
    if literal.kind == "datetime":
        if isinstance(value, str):
            try:
                return parse_datetime(value), lit
            except ValueError as exc:
                raise _type_error(op, value, literal) from exc
        raise _type_error(op, value, literal)
    if literal.kind in {"string", "guid"}:
        if isinstance(value, str):
            # Directory string comparisons are case-insensitive.
            return value.casefold(), str(lit).casefold()
        raise _type_error(op, value, literal)
    if literal.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(op, value, literal)
        return value, lit
    if literal.kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(op, value, literal)
        return value, lit
    raise _type_error(op, value, literal)


def _compare(op: str, value: Any, literal: Literal) -> bool:
    if literal.kind == "null":
        if op == "eq":
            return value is None
        if op == "ne":
            return value is not None
        raise FilterError(f"Invalid filter clause: operator {op!r} cannot compare with null")
    if value is None:
        return op == "ne"
    left, right = _comparable(value, literal, op)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)


def evaluate(node: Node, item: Mapping[str, Any]) -> bool:
    """True when ``item`` satisfies ``node``."""
    if isinstance(node, And):
        return evaluate(node.left, item) and evaluate(node.right, item)
    if isinstance(node, Or):
        return evaluate(node.left, item) or evaluate(node.right, item)
    if isinstance(node, Not):
        return not evaluate(node.operand, item)
    if isinstance(node, Compare):
        return _compare(node.op, resolve_path(item, node.path), node.literal)
    if isinstance(node, In):
        value = resolve_path(item, node.path)
        return any(_compare("eq", value, literal) for literal in node.literals)
    value = resolve_path(item, node.path)
    if value is None:
        return False
    if not isinstance(value, str):
        raise FilterError(f"Invalid filter clause: {node.name}() needs a string property")
    haystack = value.casefold()
    needle = str(node.literal.value).casefold()
    if node.name == "startswith":
        return haystack.startswith(needle)
    if node.name == "endswith":
        return haystack.endswith(needle)
    return needle in haystack


def uses_function_or_operator(node: Node, names: set[str]) -> bool:
    """True when the AST uses any of ``names`` (function names or 'ne'/'not'/'in')."""
    if isinstance(node, And | Or):
        return uses_function_or_operator(node.left, names) or uses_function_or_operator(
            node.right, names
        )
    if isinstance(node, Not):
        return "not" in names or uses_function_or_operator(node.operand, names)
    if isinstance(node, Compare):
        return node.op in names
    if isinstance(node, In):
        return "in" in names
    return node.name in names


def compile_filter(
    text: str | None, allowed_paths: Iterable[str] | None = None
) -> Callable[[Mapping[str, Any]], bool]:
    """Parse once, return a predicate. ``None``/empty text matches everything."""
    if text is None:
        return lambda _item: True
    node = parse_filter(text, allowed_paths)
    return lambda item: evaluate(node, item)
