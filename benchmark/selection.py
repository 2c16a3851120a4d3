"""Choosing cells by name, as pytest's `-k` chooses tests.

python -m benchmark run --matrix full -k "emnist and not ambient"

A cell's names are those of every combination it answers for (see
`Matrix.roles`), e.g. `emnist[split=bymerge]-0.143-ambient[network=mlp]-s0`;
a word of the expression matches when it occurs in one of them, ignoring case.
The clean cell answers for severity 0 of every corruption and GAN, so
`-k emnist` keeps the baseline the emnist cells are compared with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from benchmark.errors import ConfigError
from benchmark.matrix import Role

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_OPERATORS = ("and", "or", "not")

Predicate = Callable[[tuple[str, ...]], bool]


def role_name(role: Role, shown: frozenset[str] = frozenset()) -> str:
    """`corruption[params]-severity-gan[params]-sSEED`, the text `-k` matches.

    Only the parameters named in `shown` appear: those a matrix sweeps.
    """
    return (
        f"{role.corruption}{_bracket(role.corruption_params, shown)}-{role.cell.severity:g}-"
        f"{role.gan}{_bracket(role.gan_params, shown)}-s{role.cell.seed}"
    )


def _bracket(params_json: str, shown: frozenset[str]) -> str:
    params = {k: v for k, v in json.loads(params_json).items() if k in shown}
    return "[" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + "]" if params else ""


def cell_names(roles: Iterable[Role]) -> dict[str, tuple[str, ...]]:
    """Every name each cell answers to, by cell id: its label, then its roles' names.

    A parameter appears in the names where its value differs between roles of
    the same plugin, e.g. `gaussian[noise_std=0.1]-0.3-vanilla-s0` in a matrix
    that sweeps `noise_std`.
    """
    roles = list(roles)
    values: dict[tuple[str, str], set[str]] = {}
    for role in roles:
        for plugin, params in (
            (role.corruption, role.corruption_params),
            (role.gan, role.gan_params),
        ):
            for key, value in json.loads(params).items():
                values.setdefault((plugin, key), set()).add(json.dumps(value))
    shown = frozenset(key for (_, key), seen in values.items() if len(seen) > 1)

    names: dict[str, list[str]] = {}
    for role in roles:
        names.setdefault(role.cell.id, [role.cell.label]).append(role_name(role, shown))
    return {cell_id: tuple(found) for cell_id, found in names.items()}


def parse_keyword(expression: str) -> Predicate:
    """Compile a `-k` expression: words joined by `and`, `or`, `not` and parentheses.

    Raises:
        ConfigError: if the expression is empty or malformed.
    """
    tokens = _TOKEN.findall(expression)
    if not tokens:
        raise ConfigError(f"-k {expression!r} is empty; give words joined by and, or, not")
    parser = _Parser(tokens, expression)
    predicate = parser.disjunction()
    if parser.position != len(tokens):
        parser.fail(f"unexpected {tokens[parser.position]!r}")
    return predicate


class _Parser:
    """Recursive descent over `or` < `and` < `not` < word or parenthesis."""

    def __init__(self, tokens: list[str], expression: str) -> None:
        self.tokens = tokens
        self.expression = expression
        self.position = 0

    def fail(self, problem: str) -> None:
        raise ConfigError(
            f"-k {self.expression!r} is not a valid expression: {problem}; "
            "accepted: words joined by and, or, not and parentheses"
        )

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            self.fail("it ends too early")
        self.position += 1
        return token  # type: ignore[return-value]

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda names: any(p(names) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.peek() == "and":
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda names: all(p(names) for p in parts)

    def negation(self) -> Predicate:
        if self.peek() == "not":
            self.take()
            inner = self.negation()
            return lambda names: not inner(names)
        return self.atom()

    def atom(self) -> Predicate:
        token = self.take()
        if token == "(":
            inner = self.disjunction()
            if self.take() != ")":
                self.fail("a parenthesis is not closed")
            return inner
        if token == ")" or token in _OPERATORS:
            self.fail(f"unexpected {token!r}")
        word = token.lower()
        return lambda names: any(word in name.lower() for name in names)
