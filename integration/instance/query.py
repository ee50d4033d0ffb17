"""Parse and evaluate encoded queries (``sysparm_query``).

Grammar, as the platform reads it:

- ``^`` joins terms with AND, ``^OR`` ties a term to the one just before it,
  so ``a=1^b=2^ORb=3`` means ``a=1 AND (b=2 OR b=3)``;
- ``^NQ`` starts a new group, ORed with the groups before it;
- ``ORDERBY<field>`` and ``ORDERBYDESC<field>`` terms chain into a sort order;
- a term is ``<field><OPERATOR><value>`` with no spaces around the operator.

Terms whose field is not in the table are dropped with a warning and the
rest of the query still runs, as the platform does unless
``glide.invalid_query.returns_no_rows`` (here ``invalid_query_returns_no_rows``)
is set, in which case the query matches nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from integration.instance import catalog, dates

logger = logging.getLogger(__name__)

# Operators the platform has but this double does not evaluate; a term using
# one is dropped like a term on an unknown field.
UNSUPPORTED = ["IN_HIERARCHY", "DATEPART", "MORETHAN", "LESSTHAN", "VALCHANGES", "CHANGESFROM",
               "CHANGESTO"]
# The first operator that matches wins, so an operator that starts with another
# comes before it: ">=" before ">", INSTANCEOF and IN_HIERARCHY before IN.
OPERATORS = [*UNSUPPORTED,
    "NOT LIKE", "NOTLIKE", "NOT IN", "ISNOTEMPTY", "ISEMPTY", "EMPTYSTRING", "ANYTHING",
    "STARTSWITH", "ENDSWITH", "BETWEEN", "NSAMEAS", "SAMEAS", "NOTON", "ON",
    "GT_OR_EQUALS_FIELD", "LT_OR_EQUALS_FIELD", "GT_FIELD", "LT_FIELD",
    "RELATIVEGT", "RELATIVELT", "INSTANCEOF", "DYNAMIC", "LIKE", "IN",
    "!=", ">=", "<=", "=", ">", "<",
]
# sys_id of the out-of-box "Me" dynamic filter option.
DYNAMIC_ME = "90d1921e5f510100a9ad2572f2b477fe"
VALUELESS = {"ISEMPTY", "ISNOTEMPTY", "EMPTYSTRING", "ANYTHING"}
_TERM = re.compile(
    r"^([a-z0-9_.]+)(" + "|".join(re.escape(op) for op in OPERATORS) + r")(.*)$", re.DOTALL
)


class QuerySyntaxError(ValueError):
    """A term that has no recognisable ``<field><OPERATOR>`` shape."""


@dataclass(frozen=True)
class Condition:
    """One ``<field><OPERATOR><value>`` term."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{self.value}"


@dataclass
class EncodedQuery:
    """A parsed query: NQ groups of AND terms, each term a list of ORed conditions."""

    groups: list[list[list[Condition]]] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    matches_nothing: bool = False

    @property
    def conditions(self) -> list[Condition]:
        return [c for group in self.groups for term in group for c in term]


def parse(text: str) -> EncodedQuery:
    """Parse an encoded query; terms without a field and operator are kept in ``dropped``."""
    query = EncodedQuery()
    if not text:
        return query
    for group_text in text.split("^NQ"):
        group: list[list[Condition]] = []
        for term_text in group_text.split("^"):
            _add_term(query, group, term_text)
        if group:
            query.groups.append(group)
    return query


def _add_term(query: EncodedQuery, group: list[list[Condition]], term_text: str) -> None:
    if not term_text or term_text == "EQ":
        return
    if term_text.startswith("ORDERBYDESC"):
        query.order_by.append((term_text[len("ORDERBYDESC"):], True))
        return
    if term_text.startswith("ORDERBY"):
        query.order_by.append((term_text[len("ORDERBY"):], False))
        return
    is_or = term_text.startswith("OR") and bool(group)
    condition_text = term_text[2:] if is_or else term_text
    try:
        condition = parse_condition(condition_text)
    except QuerySyntaxError:
        query.dropped.append(term_text)
        return
    if is_or:
        group[-1].append(condition)
    else:
        group.append([condition])


def parse_condition(text: str) -> Condition:
    """Split ``<field><OPERATOR><value>``; raise QuerySyntaxError when there is no operator."""
    match = _TERM.match(text)
    if not match:
        raise QuerySyntaxError(f"no field and operator in query term {text!r}")
    if match.group(2) in UNSUPPORTED:
        raise QuerySyntaxError(f"operator {match.group(2)} is not supported in {text!r}")
    return Condition(match.group(1), match.group(2), match.group(3))


def drop_invalid_fields(query: EncodedQuery, table: str, *, returns_no_rows: bool) -> EncodedQuery:
    """Remove conditions and sort keys on unknown fields, warning about each one."""
    for group in query.groups:
        for term in group:
            for condition in list(term):
                if not _condition_is_valid(table, condition):
                    term.remove(condition)
                    query.dropped.append(str(condition))
        group[:] = [term for term in group if term]
    query.groups = [group for group in query.groups if group]
    for name, descending in list(query.order_by):
        if catalog.resolve_field(table, name) is None:
            query.order_by.remove((name, descending))
            query.dropped.append(("ORDERBYDESC" if descending else "ORDERBY") + name)
    if query.dropped:
        logger.warning("Dropped invalid terms from a query on %s: %s", table, ", ".join(query.dropped))
        query.matches_nothing = returns_no_rows
    return query


def _condition_is_valid(table: str, condition: Condition) -> bool:
    if catalog.resolve_field(table, condition.field) is None:
        return False
    if condition.operator in {"SAMEAS", "NSAMEAS"} or condition.operator.endswith("_FIELD"):
        return catalog.resolve_field(table, condition.value) is not None
    return True


ValueReader = Callable[[dict, str], str]


@dataclass
class Evaluator:
    """Evaluates parsed conditions against stored records of one table."""

    table: str
    read: ValueReader
    script_context: dates.ScriptContext
    case_insensitive: bool = True
    _scripts: dict[str, str] = field(default_factory=dict)

    def matches(self, query: EncodedQuery, record: dict) -> bool:
        """Tell whether a record matches any NQ group of the query."""
        if query.matches_nothing:
            return False
        if not query.groups:
            return True
        return any(self._group_matches(group, record) for group in query.groups)

    def _group_matches(self, group: list[list[Condition]], record: dict) -> bool:
        return all(any(self.check(c, record) for c in term) for term in group)

    def check(self, condition: Condition, record: dict) -> bool:
        """Evaluate one condition against one record."""
        field_def = catalog.resolve_field(self.table, condition.field)
        kind = field_def.type if field_def else catalog.STRING
        actual = self.read(record, condition.field)
        operator = condition.operator
        if operator in VALUELESS:
            return {"ISEMPTY": actual == "", "ISNOTEMPTY": actual != "",
                    "EMPTYSTRING": actual == "", "ANYTHING": True}[operator]
        if operator in {"SAMEAS", "NSAMEAS"} or operator.endswith("_FIELD"):
            return self._compare_fields(condition, record, actual, kind)
        return self._check_value(operator, actual, condition.value, kind)

    def _check_value(self, operator: str, actual: str, raw: str, kind: str) -> bool:
        if operator in {"LIKE", "NOT LIKE", "NOTLIKE", "STARTSWITH", "ENDSWITH"}:
            return self._text_match(operator, actual, self.resolve(raw))
        if operator in {"IN", "NOT IN"}:
            listed = [self.resolve(item) for item in raw.split(",")]
            found = any(_equal(actual, item, kind) for item in listed)
            return found if operator == "IN" else not found
        if operator in {"BETWEEN", "ON", "NOTON"}:
            return self._in_range(operator, actual, raw, kind)
        if operator in {"RELATIVEGT", "RELATIVELT"}:
            moment = dates.relative_moment(raw, self.script_context)
            if moment is None or actual == "":
                return False
            return _compare(">" if operator == "RELATIVEGT" else "<", actual, moment, kind)
        if operator == "INSTANCEOF":
            return catalog.is_instance_of(actual, raw)
        if operator == "DYNAMIC":
            # Only the platform's "Me" dynamic filter is known here.
            return raw == DYNAMIC_ME and actual == self.script_context.user_sys_id
        value = self.resolve(raw)
        if operator == "=":
            return _equal(actual, value, kind)
        if operator == "!=":
            return not _equal(actual, value, kind)
        return actual != "" and _compare(operator, actual, value, kind)

    def _text_match(self, operator: str, actual: str, value: str) -> bool:
        if self.case_insensitive:
            actual, value = actual.lower(), value.lower()
        if operator == "LIKE":
            return value in actual
        if operator in {"NOT LIKE", "NOTLIKE"}:
            return value not in actual
        if operator == "STARTSWITH":
            return actual.startswith(value)
        return actual.endswith(value)

    def _in_range(self, operator: str, actual: str, raw: str, kind: str) -> bool:
        if operator == "BETWEEN":
            low_raw, _, high_raw = raw.partition("@")
        else:
            try:
                _, low_raw, high_raw = dates.split_interval(raw)
            except ValueError:
                logger.warning("Ignoring malformed %s value %r", operator, raw)
                return False
        low, high = self.resolve(low_raw), self.resolve(high_raw)
        if actual == "":
            # An empty date is in no range and, as with SQL NULL, not outside one either.
            return False
        inside = _compare(">=", actual, low, kind) and _compare("<=", actual, high, kind)
        return not inside if operator == "NOTON" else inside

    def _compare_fields(self, condition: Condition, record: dict, actual: str, kind: str) -> bool:
        other = self.read(record, condition.value)
        operator = condition.operator
        if operator == "SAMEAS":
            return actual == other
        if operator == "NSAMEAS":
            return actual != other
        symbol = {"GT_FIELD": ">", "LT_FIELD": "<",
                  "GT_OR_EQUALS_FIELD": ">=", "LT_OR_EQUALS_FIELD": "<="}[operator]
        return actual != "" and other != "" and _compare(symbol, actual, other, kind)

    def resolve(self, raw: str) -> str:
        """Return a literal value, evaluating a ``javascript:`` helper first."""
        if not raw.startswith("javascript:"):
            return raw
        if raw not in self._scripts:
            value = dates.evaluate(raw, self.script_context)
            if value is None:
                logger.warning("Unsupported script in query value %r; it evaluates to empty", raw)
                value = ""
            self._scripts[raw] = value
        return self._scripts[raw]


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _equal(actual: str, expected: str, kind: str) -> bool:
    if kind in catalog.INTEGER_TYPES:
        left, right = _as_number(actual), _as_number(expected)
        if left is not None and right is not None:
            return left == right
    return actual == expected


def _compare(operator: str, actual: str, other: str, kind: str) -> bool:
    """Compare numerically for number fields and lexically for text and datetimes."""
    left: object = actual
    right: object = other
    if kind in catalog.INTEGER_TYPES:
        left_number, right_number = _as_number(actual), _as_number(other)
        if left_number is not None and right_number is not None:
            left, right = left_number, right_number
    elif kind == catalog.DATE:
        # A date field compared with a datetime compares by day.
        right = other[:10]
    return {
        ">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right,
    }[operator]


def sort_key(kind: str, value: str) -> tuple:
    """Return a key that sorts number fields numerically and others as text."""
    if kind in catalog.INTEGER_TYPES:
        number = _as_number(value)
        return (0, number, "") if number is not None else (1, 0.0, value)
    return (0, 0.0, value)
