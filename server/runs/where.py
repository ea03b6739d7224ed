"""The `where` query language of GET /api/runs: a tokenizer and a recursive-descent parser that build a
SQLAlchemy expression. User text never reaches SQL: keys are looked up in fixed tables and every value
is a bound parameter, so the same clause runs on SQLite and PostgreSQL.

Grammar (keywords are case-insensitive)::

    query      := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" or ")" | comparison
    comparison := key op value | key "in" "(" value ("," value)* ")" | key "contains" value
    op         := "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := 'text' | "text" | number | true | false

Keys: run fields (status, kind, name, notes, tags, backbone, id, sweep, parent, worker, step,
total_steps, params, attempt, eta_seconds and the dates created_at, queued_at, started_at, finished_at,
compared with ISO text such as '2026-12-01'), summary metrics: declared ones by name (`knn_top1`,
`loss`), any other as `metrics.<name>` (latest value) or `best.<name>` (best value), and config options of
any run kind (`lr`, or `config.lr`; `config.loss` for distillation's option of that name). `tags contains 'x'` (or `tags = 'x'`) asks for a tag; `contains` elsewhere is
a case-insensitive substring. A comparison with a run that lacks the key is false, so `not` is its
complement. Errors name the offending token and its position (0-based).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, not_, null, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from lowdino.config import CONFIG_MODELS, RunKind
from lowdino.contract.metrics import EVAL_METRIC_SUFFIX, METRIC_GOALS
from server.errors import UnstatedGrammarError
from server.storage.models import Run
from server.vocabulary import RunStatus

MAX_WHERE_CHARS = 1000
# Parentheses nest at most this deep: deeper text would only exhaust the parser's stack.
MAX_DEPTH = 32
KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "true", "false"})
OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<punct>[(),])""",
    re.VERBOSE,
)


class WhereError(UnstatedGrammarError):
    """A `where` query that cannot be parsed or names an unknown key (409, field `where`)."""

    def __init__(self, problem: str, *, position: int, token: str, fix: str) -> None:
        shown = token if token else "end of query"
        message = f"{problem} at position {position} ({shown!r}); {fix}"
        super().__init__(f"where: {message}", field_errors={"where": message})
        self.position = position
        self.token = token


@dataclass(frozen=True)
class Token:
    kind: str  # name, keyword, number, string, op, punct, end
    text: str
    position: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            if char in "'\"":
                raise WhereError(
                    "unterminated text", position=position, token=text[position:], fix=f"close it with {char}"
                )
            raise WhereError(
                f"unexpected character {char!r}",
                position=position,
                token=char,
                fix="use keys, = != < <= > >=, in, contains, and / or / not, parentheses and quoted text",
            )
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "number":
            tokens.append(Token("number", raw, position, float(raw)))
        elif kind == "string":
            tokens.append(Token("string", raw, position, raw[1:-1]))
        elif kind == "name" and raw.lower() in KEYWORDS:
            tokens.append(Token("keyword", raw, position, raw.lower()))
        elif kind != "space":
            tokens.append(Token(kind, raw, position, raw))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# ----- keys -----
@dataclass(frozen=True)
class Key:
    """What a key names: a column of `runs` of some type, or a value inside one of its JSON documents."""

    kind: str  # text, number, date, status, kind, tags, json
    column: Any
    path: tuple[str, ...] = ()
    numeric_only: bool = False  # metrics: numbers only


TEXT_COLUMNS = {
    "id": Run.id,
    "name": Run.name,
    "notes": Run.notes,
    "backbone": Run.backbone,
    "sweep": Run.sweep_id,
    "parent": Run.parent_id,
    "worker": Run.worker_name,
}
NUMBER_COLUMNS = {
    "step": Run.step,
    "total_steps": Run.total_steps,
    "params": Run.params,
    "attempt": Run.attempt,
    "eta_seconds": Run.eta_seconds,
}
DATE_COLUMNS = {
    "created_at": Run.created_at,
    "queued_at": Run.queued_at,
    "started_at": Run.started_at,
    "finished_at": Run.finished_at,
}
RUN_FIELDS = (*TEXT_COLUMNS, *NUMBER_COLUMNS, *DATE_COLUMNS, "status", "kind", "tags")


def config_keys() -> frozenset[str]:
    return frozenset(name for model in CONFIG_MODELS.values() for name in model.model_fields)


def _is_declared_metric(name: str) -> bool:
    return name in METRIC_GOALS or name.endswith(EVAL_METRIC_SUFFIX)


def resolve_key(token: Token) -> Key:
    name = token.text
    if name in TEXT_COLUMNS:
        return Key("text", TEXT_COLUMNS[name])
    if name in NUMBER_COLUMNS:
        return Key("number", NUMBER_COLUMNS[name])
    if name in DATE_COLUMNS:
        return Key("date", DATE_COLUMNS[name])
    if name == "status":
        return Key("status", Run.status)
    if name == "kind":
        return Key("kind", Run.kind)
    if name == "tags":
        return Key("tags", Run.tags)
    prefix, _, rest = name.partition(".")
    configs = config_keys()
    if rest:
        if prefix == "config" and rest in configs:
            return Key("json", Run.config, (rest,))
        if prefix == "metrics":
            return Key("json", Run.latest_metrics, (rest,), numeric_only=True)
        if prefix == "best":
            return Key("json", Run.best_metrics, (rest, "value"), numeric_only=True)
    elif _is_declared_metric(name):  # before config options: `loss` is the metric, `config.loss` the option
        return Key("json", Run.latest_metrics, (name,), numeric_only=True)
    elif name in configs:
        return Key("json", Run.config, (name,))
    known = [*RUN_FIELDS, *sorted(configs), *METRIC_GOALS]
    close = difflib.get_close_matches(rest if prefix == "config" else name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise WhereError(
        f"unknown key {name!r}",
        position=token.position,
        token=name,
        fix=f"{hint}use a run field ({', '.join(RUN_FIELDS)}), a config option (e.g. backbone, lr, "
        "config.<option>) or a metric (e.g. knn_top1, metrics.<name>, best.<name>)",
    )


# ----- JSON values: typed access that is the same SQLAlchemy expression on both databases -----
# The JSON type of a value, as each database names it: a comparison reads a number only where one is
# stored, so PostgreSQL never casts text to float (which would fail the whole query).
_JSON_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "sqlite": {"number": ("integer", "real"), "string": ("text",), "boolean": ("true", "false")},
    "postgresql": {"number": ("number",), "string": ("string",), "boolean": ("boolean",)},
}


def _json_type_is(key: Key, wanted: str, dialect: str) -> ColumnElement[bool]:
    names = _JSON_TYPES["postgresql" if dialect == "postgresql" else "sqlite"][wanted]
    if dialect == "postgresql":
        kind = func.jsonb_typeof(key.column[key.path if len(key.path) > 1 else key.path[0]])
    else:
        path = "$" + "".join(f'."{part}"' for part in key.path)
        kind = func.json_type(key.column, path)
    return kind.in_(names)


def _json_value(key: Key, value: Any, dialect: str) -> Any:
    element = key.column[key.path if len(key.path) > 1 else key.path[0]]
    if isinstance(value, bool):
        wanted, typed = "boolean", element.as_boolean()
    elif isinstance(value, float):
        wanted, typed = "number", element.as_float()
    else:
        wanted, typed = "string", element.as_string()
    return case((_json_type_is(key, wanted, dialect), typed), else_=null())


# ----- parser -----
class Parser:
    def __init__(self, text: str, dialect: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.dialect = dialect
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at_keyword(self, word: str) -> bool:
        return self.current.kind == "keyword" and self.current.value == word

    def fail(self, problem: str, fix: str, token: Token | None = None) -> WhereError:
        token = token or self.current
        return WhereError(problem, position=token.position, token=token.text, fix=fix)

    def parse(self) -> ColumnElement[bool]:
        if self.current.kind == "end":
            raise self.fail("empty query", "write a comparison such as knn_top1 > 30, or leave `where` out")
        clause = self.parse_or()
        if self.current.kind != "end":
            raise self.fail("unexpected token", "join comparisons with and / or")
        return clause

    def parse_or(self) -> ColumnElement[bool]:
        parts = [self.parse_and()]
        while self.at_keyword("or"):
            self.advance()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def parse_and(self) -> ColumnElement[bool]:
        parts = [self.parse_not()]
        while self.at_keyword("and"):
            self.advance()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def parse_not(self) -> ColumnElement[bool]:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.fail("too deeply nested", f"use at most {MAX_DEPTH} levels of not / parentheses")
            if self.at_keyword("not"):
                self.advance()
                return not_(self.parse_not())
            if self.current.kind == "punct" and self.current.text == "(":
                opening = self.advance()
                inner = self.parse_or()
                if not (self.current.kind == "punct" and self.current.text == ")"):
                    raise self.fail(
                        "missing ')'", f"close the parenthesis opened at position {opening.position}"
                    )
                self.advance()
                return inner
            return self.parse_comparison()
        finally:
            self.depth -= 1

    def value(self) -> Token:
        token = self.current
        if token.kind in ("string", "number") or (
            token.kind == "keyword" and token.value in ("true", "false")
        ):
            self.advance()
            if token.kind == "keyword":
                return Token("boolean", token.text, token.position, token.value == "true")
            return token
        raise self.fail("expected a value", "give 'quoted text', a number, true or false")

    def parse_comparison(self) -> ColumnElement[bool]:
        key_token = self.current
        if key_token.kind != "name":
            raise self.fail(
                "expected a key", "start each comparison with a key such as backbone, status or knn_top1"
            )
        self.advance()
        key = resolve_key(key_token)
        operator = self.current
        if operator.kind == "op":
            self.advance()
            return self.compare(key, operator.text, self.value())
        if self.at_keyword("contains"):
            self.advance()
            return self.compare(key, "contains", self.value())
        if self.at_keyword("in"):
            self.advance()
            if not (self.current.kind == "punct" and self.current.text == "("):
                raise self.fail("expected '('", "write in ('a', 'b')")
            self.advance()
            values = [self.value()]
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                values.append(self.value())
            if not (self.current.kind == "punct" and self.current.text == ")"):
                raise self.fail("expected ',' or ')'", "separate values with commas and close with )")
            self.advance()
            return or_(*(self.compare(key, "=", value) for value in values))
        raise self.fail(
            f"expected an operator after {key_token.text!r}", "use = != < <= > >=, in (...) or contains"
        )

    # ----- one comparison -----
    def compare(self, key: Key, op: str, token: Token) -> ColumnElement[bool]:
        if op == "!=":
            return not_(self.compare(key, "=", token))
        clause = self.comparison(key, op, token)
        # A missing value compares false (not NULL), so that `not` and `!=` are exact complements.
        return func.coalesce(clause, false())

    def comparison(self, key: Key, op: str, token: Token) -> ColumnElement[bool]:
        value = token.value
        if key.kind == "tags":
            if op not in ("=", "contains") or token.kind != "string":
                raise self.fail(
                    "tags take text with contains, =, != or in", "write tags contains 'baseline'", token
                )
            return self.has_tag(value)
        if key.kind in ("status", "kind"):
            vocabulary = [str(member) for member in (RunStatus if key.kind == "status" else RunKind)]
            if op != "=" or value not in vocabulary:
                raise self.fail(
                    f"{key.kind} is one of {', '.join(vocabulary)}",
                    f"compare it with =, != or in, e.g. {key.kind} = '{vocabulary[0]}'",
                    token,
                )
            return key.column == value
        if op == "contains":
            if token.kind != "string" or key.kind in ("number", "date"):
                raise self.fail("contains takes text", "write e.g. notes contains 'augment'", token)
            pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            column = (
                key.column[key.path if len(key.path) > 1 else key.path[0]].as_string()
                if key.kind == "json"
                else key.column
            )
            return column.ilike(pattern, escape="\\")
        if key.kind == "json":
            if key.numeric_only and token.kind != "number":
                raise self.fail("metrics are numbers", "compare it with a number, e.g. knn_top1 > 30", token)
            return _operator(op)(_json_value(key, value, self.dialect), value)
        if key.kind == "number":
            if token.kind != "number":
                raise self.fail("this key is a number", "compare it with a number", token)
            return _operator(op)(key.column, value)
        if key.kind == "date":
            return _operator(op)(key.column, self.date(token))
        if token.kind != "string":
            raise self.fail("this key is text", "quote the value, e.g. name = 'baseline'", token)
        return _operator(op)(key.column, value)

    def date(self, token: Token) -> datetime:
        try:
            if token.kind != "string":
                raise ValueError
            moment = datetime.fromisoformat(token.value)
        except ValueError:
            raise self.fail(
                "dates are ISO text", "quote a date or time, e.g. created_at > '2026-12-01'", token
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def has_tag(self, tag: str) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            return type_coerce(Run.tags, JSONB()).contains([tag])
        each = func.json_each(Run.tags).table_valued("value")
        return exists(select(1).select_from(each).where(each.c.value == tag))


def _operator(op: str) -> Callable[[Any, Any], ColumnElement[bool]]:
    return {
        "=": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[op]


def where_clause(text: str, *, dialect: str) -> ColumnElement[bool]:
    """The SQL condition `text` states, for `dialect` ('sqlite' or 'postgresql'); WhereError (422) if not."""
    if len(text) > MAX_WHERE_CHARS:
        raise WhereError(
            "query too long",
            position=MAX_WHERE_CHARS,
            token="",
            fix=f"keep it under {MAX_WHERE_CHARS} characters",
        )
    return Parser(text, dialect).parse()
