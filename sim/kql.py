"""A small KQL (Kusto) subset for the simulated Log Analytics endpoint (a TEST DOUBLE).

Supported, and nothing else (anything else is a :class:`KqlError` → HTTP 400, never
silently ignored)::

    Table
    | where <cond> [and|or <cond> ...]          (also: filter; parentheses; not(...))
    | summarize [Name=]count() [, [Name=]dcount(Col) | min(Col) | max(Col)] [by ColA, ColB]
    | project ColA, NewName=ColB
    | order by Col [asc|desc] [, ...]            (also: sort by; default desc, as in KQL)
    | take N                                     (also: limit N)
    | top N by Col [asc|desc]
    | distinct ColA, ColB
    | count

Conditions: ``Col op value`` with ``== != =~ !~ > >= < <= in !in in~ !in~ contains
!contains startswith !startswith``, and ``isempty(Col)`` / ``isnotempty(Col)``. Values:
"string" / 'string' literals, numbers, true/false, ``ago(24h)`` (d, h, m, s, ms),
``datetime(2024-01-01T00:00:00Z)``, ``now()``, ``ingestion_time()``. Types are checked against
the table schema (comparing the string column ``ResultType`` with the number 500212 is an
error, as in KQL).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sim.odata import parse_datetime

__all__ = ["KqlError", "Query", "compile_query"]


class KqlError(ValueError):
    """The query is outside the supported subset or wrong (→ HTTP 400)."""

    def __init__(self, message: str, kind: str = "SyntaxError", code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code  # Kusto's own code (SEM0100: a table or column that does not exist)


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>@?"(?:[^"\\]|\\.)*"|@?'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<timespan>\d+(?:\.\d+)?(?:ms|d|h|m|s)\b)
  | (?P<number>\d+(?:\.\d+)?\b)
  | (?P<op>==|!=|=~|!~|>=|<=|>|<|=)
  | (?P<bang>!(?=[A-Za-z]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z]+)*~?)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)

_TIMESPAN_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenise(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None and text[pos] == ";":
            raise KqlError("Multiple statements (';', let) are not supported by the simulator")
        if match is None:
            raise KqlError(
                f"Unsupported or invalid syntax at position {pos}: {text[pos : pos + 20]!r}"
            )
        if match.lastgroup != "ws":
            tokens.append(_Tok(match.lastgroup or "", match.group(), pos))
        pos = match.end()
    tokens.append(_Tok("eof", "", len(text)))
    return tokens


def _unquote(text: str) -> str:
    if text.startswith("@"):
        return text[2:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# A value in an expression is a function of the row and 'now'.
Value = Callable[[dict[str, Any]], Any]
Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class Operand:
    value: Value
    type: str  # string datetime long real bool dynamic timespan null
    column: str | None = None


_NUMERIC = {"long", "int", "real"}


def _compatible(left: str, right: str) -> bool:
    if left == right or "null" in (left, right):
        return True
    if left in _NUMERIC and right in _NUMERIC:
        return True
    return (left == "guid" and right == "string") or (left == "string" and right == "guid")


@dataclass
class Query:
    """A compiled query: run it over rows (dicts) of the named table."""

    table: str
    stages: list[
        Callable[
            [list[dict[str, Any]], list[tuple[str, str]]],
            tuple[list[dict[str, Any]], list[tuple[str, str]]],
        ]
    ]

    def run(
        self, rows: list[dict[str, Any]], columns: list[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        for stage in self.stages:
            rows, columns = stage(rows, columns)
        return rows, columns


class _Parser:
    def __init__(self, text: str, schemas: dict[str, list[tuple[str, str]]], now: datetime) -> None:
        self.tokens = _tokenise(text)
        self.i = 0
        self.schemas = schemas
        self.now = now
        self.columns: list[tuple[str, str]] = []

    def peek(self, offset: int = 0) -> _Tok:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str, text: str | None = None) -> _Tok:
        tok = self.next()
        if tok.kind != kind or (text is not None and tok.text != text):
            raise KqlError(
                f"Expected {what} at position {tok.pos}, found {tok.text or 'end of query'!r}"
            )
        return tok

    def word(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "ident" and tok.text == text

    def column_type(self, name: str) -> str:
        for col, col_type in self.columns:
            if col == name:
                return col_type
        raise KqlError(f"Failed to resolve scalar expression named '{name}'", "SemanticError")

    # ------------------------------------------------------------------ query
    def parse(self) -> Query:
        table_tok = self.expect("ident", "a table name")
        if table_tok.text in {"let", "union", "search", "print", "datatable", "range"}:
            raise KqlError(f"Unsupported KQL statement '{table_tok.text}'")
        if table_tok.text not in self.schemas:
            after = self.peek(1) if self.peek().kind == "pipe" else None
            named = after is not None and after.kind == "ident"
            where = f"'{after.text}' operator: " if after is not None and named else ""
            raise KqlError(
                f"{where}Failed to resolve table or column expression named '{table_tok.text}'",
                "SemanticError",
                "SEM0100",
            )
        self.columns = list(self.schemas[table_tok.text])
        stages = []
        while self.peek().kind == "pipe":
            self.next()
            stages.append(self.operator())
        tok = self.peek()
        if tok.kind != "eof":
            raise KqlError(
                f"Unexpected {tok.text!r} at position {tok.pos} (only '|' may follow an operator)"
            )
        return Query(table_tok.text, stages)

    def operator(self) -> Any:
        tok = self.expect("ident", "a query operator")
        name = tok.text
        if name in {"where", "filter"}:
            predicate = self.condition()
            return lambda rows, cols: ([r for r in rows if predicate(r)], cols)
        if name == "summarize":
            return self.summarize()
        if name == "project":
            return self.project()
        if name in {"order", "sort"}:
            self.expect("ident", "'by'", "by")
            return self.order_by()
        if name in {"take", "limit"}:
            count = int(self.expect("number", "a row count").text)
            return lambda rows, cols: (rows[:count], cols)
        if name == "top":
            count = int(self.expect("number", "a row count").text)
            self.expect("ident", "'by'", "by")
            order = self.order_by()
            return lambda rows, cols: (order(rows, cols)[0][:count], cols)
        if name == "distinct":
            names = self.column_list()
            new_cols = [(n, self.column_type(n)) for n in names]
            self.columns = new_cols

            def distinct(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> Any:
                seen: dict[tuple[Any, ...], dict[str, Any]] = {}
                for row in rows:
                    key = tuple(_hashable(row.get(n)) for n in names)
                    seen.setdefault(key, {n: row.get(n) for n in names})
                return list(seen.values()), new_cols

            return distinct
        if name == "count":
            self.columns = [("Count", "long")]
            return lambda rows, cols: ([{"Count": len(rows)}], [("Count", "long")])
        raise KqlError(
            f"Unsupported KQL operator '{name}': the simulator implements where, summarize,"
            " project, order by/sort by, take/limit, top, distinct and count"
        )

    def column_list(self) -> list[str]:
        names = [self.expect("ident", "a column name").text]
        while self.peek().kind == "comma":
            self.next()
            names.append(self.expect("ident", "a column name").text)
        for name in names:
            self.column_type(name)
        return names

    def project(self) -> Any:
        outputs: list[tuple[str, str]] = []  # (output name, source column)
        while True:
            first = self.expect("ident", "a column name").text
            if self.peek().kind == "op" and self.peek().text == "=":
                self.next()
                source = self.expect("ident", "a column name").text
                outputs.append((first, source))
            else:
                outputs.append((first, first))
            if self.peek().kind == "lparen":
                raise KqlError(
                    "Expressions in project are not supported by the simulator (column names only)"
                )
            if self.peek().kind != "comma":
                break
            self.next()
        new_cols = [(out, self.column_type(src)) for out, src in outputs]
        self.columns = new_cols
        return lambda rows, cols: (
            [{out: r.get(src) for out, src in outputs} for r in rows],
            new_cols,
        )

    def order_by(self) -> Any:
        keys: list[tuple[str, bool]] = []
        while True:
            name = self.expect("ident", "a column name").text
            self.column_type(name)
            descending = True
            if self.word("asc") or self.word("desc"):
                descending = self.next().text == "desc"
            if self.word("nulls"):
                raise KqlError("'nulls first/last' is not supported by the simulator")
            keys.append((name, descending))
            if self.peek().kind != "comma":
                break
            self.next()

        def order(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> Any:
            ordered = list(rows)
            for name, descending in reversed(keys):
                present = [r for r in ordered if r.get(name) is not None]
                missing = [r for r in ordered if r.get(name) is None]
                present.sort(key=operator.itemgetter(name), reverse=descending)
                ordered = present + missing
            return ordered, cols

        return order

    def summarize(self) -> Any:
        aggregations: list[tuple[str, str, str | None]] = []  # (output, function, column)
        while not self.word("by") and self.peek().kind not in {"pipe", "eof"}:
            output = None
            if (
                self.peek().kind == "ident"
                and self.peek(1).kind == "op"
                and self.peek(1).text == "="
            ):
                output = self.next().text
                self.next()
            func = self.expect("ident", "an aggregation function").text
            if func not in {"count", "dcount", "min", "max"}:
                raise KqlError(
                    f"Unsupported aggregation '{func}()':"
                    " the simulator implements count, dcount, min, max"
                )
            self.expect("lparen", "'('")
            column = None
            if func != "count":
                column = self.expect("ident", "a column name").text
                self.column_type(column)
            self.expect("rparen", "')'")
            aggregations.append(
                (output or (f"{func}_" if func == "count" else f"{func}_{column}"), func, column)
            )
            if self.peek().kind == "comma":
                self.next()
        if not aggregations:
            raise KqlError("summarize needs at least one aggregation, e.g. count()")
        by: list[str] = []
        if self.word("by"):
            self.next()
            by = [self.expect("ident", "a column name").text]
            if self.peek().kind == "lparen":
                raise KqlError(
                    "Functions in 'summarize ... by' (e.g. bin()) are not supported"
                    " by the simulator"
                )
            while self.peek().kind == "comma":
                self.next()
                by.append(self.expect("ident", "a column name").text)
            for name in by:
                self.column_type(name)
        new_cols = [(n, self.column_type(n)) for n in by]
        for output, func, column in aggregations:
            new_cols.append(
                (output, "long" if func in {"count", "dcount"} else self.column_type(column or ""))
            )
        self.columns = new_cols

        def summarize(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> Any:
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for row in rows:
                groups.setdefault(tuple(_hashable(row.get(n)) for n in by), []).append(row)
            if not by and not groups:
                groups[()] = []
            out = []
            for members in groups.values():
                result = {n: members[0].get(n) if members else None for n in by}
                for output, func, column in aggregations:
                    values = [
                        m.get(column) for m in members if column and m.get(column) is not None
                    ]
                    if func == "count":
                        result[output] = len(members)
                    elif func == "dcount":
                        result[output] = len({_hashable(v) for v in values})
                    elif func == "min":
                        result[output] = min(values, key=_sort_key) if values else None
                    else:
                        result[output] = max(values, key=_sort_key) if values else None
                out.append(result)
            return out, new_cols

        return summarize

    # ------------------------------------------------------------------ conditions
    def condition(self) -> Predicate:
        left = self.and_condition()
        while self.word("or"):
            self.next()
            right = self.and_condition()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def and_condition(self) -> Predicate:
        left = self.unary_condition()
        while self.word("and"):
            self.next()
            right = self.unary_condition()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def unary_condition(self) -> Predicate:
        tok = self.peek()
        if tok.kind == "lparen":
            self.next()
            inner = self.condition()
            self.expect("rparen", "')'")
            return inner
        if tok.kind == "ident" and tok.text == "not" and self.peek(1).kind == "lparen":
            self.next()
            self.next()
            inner = self.condition()
            self.expect("rparen", "')'")
            return lambda r: not inner(r)
        if (
            tok.kind == "ident"
            and tok.text in {"isempty", "isnotempty", "isnull", "isnotnull"}
            and self.peek(1).kind == "lparen"
        ):
            self.next()
            self.next()
            column = self.expect("ident", "a column name").text
            self.column_type(column)
            self.expect("rparen", "')'")
            if tok.text in {"isempty", "isnull"}:
                return lambda r: r.get(column) in (None, "")
            return lambda r: r.get(column) not in (None, "")
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        tok = self.next()
        negate = False
        if tok.kind == "bang":
            negate = True
            tok = self.next()
        if tok.kind == "op" and not negate and tok.text != "=":
            right = self.operand()
            return self.binary(tok.text, left, right, tok)
        if tok.kind == "ident" and tok.text in {"in", "in~"}:
            self.expect("lparen", "'(' after in")
            values = [self.operand()]
            while self.peek().kind == "comma":
                self.next()
                values.append(self.operand())
            self.expect("rparen", "')'")
            for value in values:
                self._check_types(left, value, tok)
            insensitive = tok.text == "in~"

            def membership(row: dict[str, Any]) -> bool:
                actual = left.value(row)
                candidates = [v.value(row) for v in values]
                if insensitive:
                    found = str(actual).casefold() in {str(c).casefold() for c in candidates}
                else:
                    found = actual in candidates
                return not found if negate else found

            return membership
        if tok.kind == "ident" and tok.text in {
            "contains",
            "startswith",
            "endswith",
            "has",
            "contains_cs",
            "startswith_cs",
        }:
            right = self.operand()
            if right.type != "string":
                raise KqlError(f"'{tok.text}' needs a string on its right", "SemanticError")
            case_sensitive = tok.text.endswith("_cs")
            op = tok.text.removesuffix("_cs")

            def text_match(row: dict[str, Any]) -> bool:
                actual = left.value(row)
                if actual is None:
                    return negate
                # Dynamic values are matched on their JSON text, as Kusto does.
                haystack = actual if isinstance(actual, str) else json.dumps(actual)
                needle = str(right.value(row))
                if not case_sensitive:
                    haystack, needle = haystack.casefold(), needle.casefold()
                if op == "contains":
                    found = needle in haystack
                elif op == "startswith":
                    found = haystack.startswith(needle)
                elif op == "endswith":
                    found = haystack.endswith(needle)
                else:
                    found = (
                        re.search(
                            r"(?<![A-Za-z0-9])" + re.escape(needle) + r"(?![A-Za-z0-9])", haystack
                        )
                        is not None
                    )
                return not found if negate else found

            return text_match
        raise KqlError(f"Unsupported operator {tok.text or 'end of query'!r} at position {tok.pos}")

    def _check_types(self, left: Operand, right: Operand, tok: _Tok) -> None:
        if not _compatible(left.type, right.type):
            raise KqlError(
                f"Cannot compare values of types {left.type} and {right.type} with '{tok.text}'"
                f" at position {tok.pos}. Try adding explicit casts.",
                "SemanticError",
            )

    def binary(self, op: str, left: Operand, right: Operand, tok: _Tok) -> Predicate:
        self._check_types(left, right, tok)
        if op in {"=~", "!~"}:
            if left.type != "string" and left.type != "guid":
                raise KqlError(f"'{op}' compares strings only", "SemanticError")

            def ci(row: dict[str, Any]) -> bool:
                a, b = left.value(row), right.value(row)
                equal = a is not None and b is not None and str(a).casefold() == str(b).casefold()
                return equal if op == "=~" else not equal

            return ci

        def compare(row: dict[str, Any]) -> bool:
            a, b = left.value(row), right.value(row)
            if op == "==":
                return bool(a == b)
            if op == "!=":
                return bool(a != b)
            if a is None or b is None:
                return False
            if op == ">":
                return bool(a > b)
            if op == ">=":
                return bool(a >= b)
            if op == "<":
                return bool(a < b)
            return bool(a <= b)

        return compare

    def operand(self) -> Operand:
        tok = self.next()
        if tok.kind == "string":
            text = _unquote(tok.text)
            return Operand(lambda _r: text, "string")
        if tok.kind == "number":
            number: int | float = float(tok.text) if "." in tok.text else int(tok.text)
            return Operand(lambda _r: number, "real" if isinstance(number, float) else "long")
        if tok.kind == "timespan":
            raise KqlError(
                f"A bare timespan ({tok.text}) is only supported inside ago()", "SemanticError"
            )
        if tok.kind == "ident":
            if tok.text in {"true", "false"}:
                flag = tok.text == "true"
                return Operand(lambda _r: flag, "bool")
            if self.peek().kind == "lparen":
                return self.function(tok)
            column = tok.text
            col_type = self.column_type(column)
            return Operand(lambda r: r.get(column), col_type, column)
        raise KqlError(
            f"Expected a column or a value at position {tok.pos},"
            f" found {tok.text or 'end of query'!r}"
        )

    def function(self, tok: _Tok) -> Operand:
        self.expect("lparen", "'('")
        name = tok.text
        if name == "ago":
            span = self.expect("timespan", "a timespan such as 24h")
            self.expect("rparen", "')'")
            moment = self.now - _timespan(span.text)
            return Operand(lambda _r: moment, "datetime")
        if name == "now":
            self.expect("rparen", "')'")
            moment = self.now
            return Operand(lambda _r: moment, "datetime")
        if name == "ingestion_time":
            # When the row reached the workspace (rows carry it under a hidden key).
            self.expect("rparen", "')'")
            return Operand(lambda r: r.get("__ingestion_time"), "datetime")
        if name == "datetime":
            raw = []
            while self.peek().kind not in {"rparen", "eof"}:
                raw.append(self.next())
            self.expect("rparen", "')'")
            text = _datetime_text(raw)
            try:
                moment = parse_datetime(text)
            except ValueError as exc:
                raise KqlError(f"Invalid datetime literal datetime({text})") from exc
            return Operand(lambda _r: moment, "datetime")
        raise KqlError(
            f"Unsupported function '{name}()': the simulator implements ago(), now(), datetime(),"
            " ingestion_time()"
        )


def _datetime_text(tokens: list[_Tok]) -> str:
    if len(tokens) == 1 and tokens[0].kind == "string":
        return _unquote(tokens[0].text)
    # Unquoted datetime(2024-01-01T00:00:00Z) is tokenised in pieces; glue them back.
    return "".join(t.text for t in tokens)


def _timespan(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)", text)
    if match is None:
        raise KqlError(f"Invalid timespan {text!r}")
    return timedelta(**{_TIMESPAN_UNITS[match.group(2)]: float(match.group(1))})


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return repr(value)
    return value


def _sort_key(value: Any) -> Any:
    return value


def compile_query(text: str, schemas: dict[str, list[tuple[str, str]]], now: datetime) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise KqlError("The query is empty")
    return _Parser(text, schemas, now).parse()
