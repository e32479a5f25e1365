"""Specification of ``ledger.compiled``: the fast path compiled from the entry schemas accepts only what
marshmallow accepts, loads it to exactly what marshmallow loads, and cannot be built from a rule it does
not understand.

The data are the valid wire entries of every kind (``test_entries.VALID_BODIES``) and systematic mutations
of them drawn by hypothesis: a field removed, an extra field, a value replaced by one of another type (a
bool for an int, a float, a huge int, null, a list, an object), a string at and beyond its length limits,
a string that misses a pattern (control characters, a trailing newline, an invalid calendar date), or a
value moved from another field. Each is held to ``schema.load``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kit import Kit
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates
from test_entries import valid_entry

from ledger.compiled import Check, NotCompilable, StrictBoolean, compile_schema, compiled_source
from ledger.entries import ENVELOPE, SIGNED_ENTRY, _decode_leaf_explained, decode_leaf
from ledger.kinds import KIND_NAMES as KINDS
from ledger.kinds import KINDS as REGISTRY

BODY_SCHEMAS = {name: kind.body for name, kind in REGISTRY.items()}

KIT = Kit()
WIRES = {kind: valid_entry(KIT, kind).to_wire() for kind in KINDS}
COSIGNED = KIT.award("h1", by="chen", cosigner="founder").to_wire()


def schemas_of(wire: dict[str, Any]) -> list[tuple[Schema, Any]]:
    """Every schema ``parse_entry`` loads for ``wire``, with the data it hands that schema."""
    return [
        (SIGNED_ENTRY, wire),
        (ENVELOPE, wire["entry"]),
        (BODY_SCHEMAS[wire["entry"]["kind"]], wire["entry"]["body"]),
    ]


COMPILED = {id(schema): compile_schema(schema) for schema in [SIGNED_ENTRY, ENVELOPE, *BODY_SCHEMAS.values()]}


def key_order(value: Any) -> Any:
    """``value`` with every dict turned into its list of items: equality then also compares key order."""
    if isinstance(value, dict):
        return [(key, key_order(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [key_order(item) for item in value]
    return value


def assert_held_to_marshmallow(schema: Schema, data: Any) -> dict[str, Any] | None:
    """Compiled acceptance implies marshmallow acceptance with an identical result (key order included);
    marshmallow refusal implies compiled refusal. Returns what the compiled path accepted."""
    accepted = COMPILED[id(schema)](copy.deepcopy(data))
    try:
        loaded = schema.load(copy.deepcopy(data))
    except ValidationError:
        assert accepted is None, f"{type(schema).__name__} accepted what marshmallow refuses: {data!r}"
        return None
    if accepted is not None:
        assert type(accepted) is type(loaded)
        assert key_order(accepted) == key_order(loaded), f"{type(schema).__name__} loaded {data!r} differently"
    return accepted


# Valid entries take the fast path -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_valid_entry_of_every_kind_is_accepted_by_the_compiled_path(kind: str) -> None:
    for schema, data in schemas_of(WIRES[kind]):
        assert assert_held_to_marshmallow(schema, data) is not None, type(schema).__name__


def test_a_cosigned_entry_is_accepted_by_the_compiled_path() -> None:
    for schema, data in schemas_of(COSIGNED):
        assert assert_held_to_marshmallow(schema, data) is not None


# Mutations: refusals agree, acceptances load the same ------------------------------------------------------

Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every place in ``value`` (dict keys and list indices), the root excluded."""
    found: list[Path] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found.append((*prefix, key))
        found.extend(paths(item, (*prefix, key)))
    return found


def containers(value: Any, prefix: Path = ()) -> list[Path]:
    """Every dict in ``value``, the root included."""
    found = [prefix] if isinstance(value, dict) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found.extend(containers(item, (*prefix, key)))
    return found


def at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


LIMITS = [1, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129, 199, 200, 201, 499, 500, 501, 999, 1000, 1001]
ODD_VALUES: list[Any] = [
    True, False, None, 0, 1, -1, 2, 100, 1000, 1001, 1_000_000, 1_000_001, 50 * 1024 * 1024 + 1, 100_001,
    10**13, 10**13 + 1, 2**53, 2**64, -(2**63), 1.0, 1.5, float("nan"),
    "", " ", "\n", "a\n", "x\x00", "\x7f", "\u0085", "\u3000", "ok", "0" * 32, "f" * 32, "F" * 32, "0" * 64,
    "ab" * 32 + "\n", "M-01", "m-01", "A" * 42 + "B=", "A" * 43 + "=", "A" * 85 + "B==", "A" * 86,
    "2026-02-30", "2026-02-29", "2028-02-29", "2026-13-01", "2026-02-28T23:59:59Z", "2026-02-28T24:00:00Z",
    "2026-02-30T00:00:00Z", "2026-02-28T23:60:00Z", "2026-02-28T23:59:60Z", "2026-02-28T23:59:59Z\n",
    "grid_worker", "committee", "grid", "g1", "h2", "finance", "reply", "satisfied", ".hidden", "a/b",
    [], [1], ["committee", "committee"], ["grid_worker"], {}, {"x": 1}, b"bytes", ("tuple",),
]


def mutations(wire: dict[str, Any]) -> st.SearchStrategy[Callable[[dict[str, Any]], None]]:
    """One systematic change to (a copy of) ``wire``."""
    places, holders = paths(wire), containers(wire)

    def remove(path: Path) -> Callable[[dict[str, Any]], None]:
        return lambda w: at(w, path[:-1]).pop(path[-1])

    def put(path: Path, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(w: dict[str, Any]) -> None:
            at(w, path[:-1])[path[-1]] = copy.deepcopy(value)

        return change

    def add(holder: Path, name: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda w: at(w, holder).__setitem__(name, copy.deepcopy(value))

    def moved(path: Path, source: Path) -> Callable[[dict[str, Any]], None]:
        return put(path, at(wire, source))

    names = st.sampled_from(["extra", "signatures", "v", "kind", "grid", "amount", "min", "max", "commitment",
                             "cosigner", "finance", "project", "decision", "reason", "rating", "resolved"])
    text_at_limit = st.builds(lambda c, n: c * n, st.sampled_from(["a", "汉", "0", "A", " "]), st.sampled_from(LIMITS))
    value = st.sampled_from(ODD_VALUES) | text_at_limit | st.integers() | st.text(max_size=8)
    return st.one_of(
        st.sampled_from(places).map(remove),
        st.builds(put, st.sampled_from(places), value),
        st.builds(add, st.sampled_from(holders), names, value),
        st.builds(moved, st.sampled_from(places), st.sampled_from(places)),
    )


def kinds_and_wires() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from([*WIRES.values(), COSIGNED])


def field_at(wire: dict[str, Any], path: Path) -> Any:
    """The marshmallow field that loads the value at ``path`` of a valid ``wire``, or None."""
    schema: Any = SIGNED_ENTRY
    field: Any = None
    for step in path:
        if isinstance(step, int):
            field = field.inner if isinstance(field, fields.List) else None
        elif schema is not None and step in schema.fields:
            field = schema.fields[step]
        else:
            return None
        if path[: path.index(step) + 1] == ("entry",):
            schema = ENVELOPE
        elif path[: path.index(step) + 1] == ("entry", "body"):
            schema = BODY_SCHEMAS[wire["entry"]["kind"]]
        else:
            schema = field.schema if isinstance(field, fields.Nested) else None
    return field


def boundary_values(field: Any, current: Any) -> list[Any]:
    """Values at and just beyond the limits the field's validators set: lengths, ranges, choices."""
    out: list[Any] = []
    for v in getattr(field, "validators", []):
        if isinstance(v, validate.Length):
            for n in {v.min, v.max, v.equal} - {None}:
                for k in (n - 1, n, n + 1):
                    if k >= 0:
                        sample = current[:1] * k if isinstance(current, list) and current else None
                        out += ["a" * k, "汉" * k, " " * k] + ([sample] if sample is not None else [])
        elif isinstance(v, validate.Range):
            for n in {v.min, v.max} - {None}:
                out += [n - 1, n, n + 1]
        elif isinstance(v, validate.OneOf):
            out += [*v.choices, *(c + "\n" for c in v.choices), *(c.upper() for c in v.choices)]
        elif isinstance(v, validate.Equal):
            out += [v.comparable, v.comparable + 1, True]
    if isinstance(current, str) and current:
        out += [current + "\n", current[:-1], current + current[-1], current.upper()]
    return out


SINGLE_CHANGES = [
    (kind, wire, path)
    for kind, wire in [*WIRES.items(), ("points.award (cosigned)", COSIGNED)]
    for path in paths(wire)
]


@pytest.mark.parametrize(("kind", "wire", "path"), SINGLE_CHANGES, ids=[f"{k}:{'.'.join(map(str, p))}" for k, _, p in SINGLE_CHANGES])
def test_every_single_change_is_judged_as_marshmallow_judges_it(kind: str, wire: dict[str, Any], path: Path) -> None:
    """Systematically: the value at ``path`` removed, or replaced by every odd value and every value at or
    beyond the limits of its field; and an extra member beside it."""
    current = at(wire, path)
    body_kind = None if path == ("entry", "kind") else wire["entry"]["kind"]
    candidates = [*ODD_VALUES, *boundary_values(field_at(wire, path), current)]
    for value in [_REMOVED, *candidates]:
        changed = copy.deepcopy(wire)
        holder = at(changed, path[:-1])
        if value is _REMOVED:
            holder.pop(path[-1])
        else:
            holder[path[-1]] = copy.deepcopy(value)
        for schema, part in _parts(changed, body_kind):
            assert_held_to_marshmallow(schema, part)
    if isinstance(current, dict):
        for name in ["extra", *sorted(_ALL_FIELD_NAMES)]:
            if name not in current:
                changed = copy.deepcopy(wire)
                at(changed, path)[name] = "g1"
                for schema, part in _parts(changed, body_kind):
                    assert_held_to_marshmallow(schema, part)


_REMOVED = object()
_ALL_FIELD_NAMES = {name for schema in [SIGNED_ENTRY, ENVELOPE, *BODY_SCHEMAS.values()] for name in schema.fields}


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_mutated_entry_is_judged_as_marshmallow_judges_it(data: st.DataObject) -> None:
    wire = copy.deepcopy(data.draw(kinds_and_wires()))
    for change in data.draw(st.lists(mutations(wire), min_size=1, max_size=3)):
        with suppress(KeyError, IndexError, TypeError, AttributeError):  # an earlier change removed its place
            change(wire)
    for schema, part in _parts(wire):
        assert_held_to_marshmallow(schema, part)


def _parts(wire: Any, kind: str | None = None) -> list[tuple[Schema, Any]]:
    """The schemas a mutated wire reaches, as far as it has the shape to reach them: the body schema of
    ``kind``, or of every kind."""
    parts: list[tuple[Schema, Any]] = [(SIGNED_ENTRY, wire)]
    entry = wire.get("entry") if isinstance(wire, dict) else None
    if entry is not None:
        parts.append((ENVELOPE, entry))
        body = entry.get("body") if isinstance(entry, dict) else None
        if body is not None:
            bodies = [BODY_SCHEMAS[kind]] if kind else {id(s): s for s in BODY_SCHEMAS.values()}.values()
            parts.extend((schema, body) for schema in bodies)
    return parts


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_decode_leaf_equals_the_reference_path_on_rewritten_leaves(data: st.DataObject) -> None:
    """Leaves rewritten at the byte level: a member repeated, spaces, escapes, reordered keys."""
    leaf = valid_entry(KIT, data.draw(st.sampled_from(KINDS))).leaf
    text = leaf.decode()
    rewrite = data.draw(
        st.sampled_from(
            [
                lambda t: t.replace('"v":1', '"v":1,"v":1'),
                lambda t: t.replace('"v":1', '"v":2,"v":1'),
                lambda t: t.replace('"kind":', '"kind":"x","kind":', 1),
                lambda t: t.replace(",", ", ", 1),
                lambda t: t.replace("village", "vill\\u0061ge", 1),
                lambda t: json.dumps(json.loads(t), ensure_ascii=True, separators=(",", ":"), sort_keys=True),
                lambda t: json.dumps(json.loads(t), ensure_ascii=False, separators=(",", ":")),
                lambda t: t + " ",
                lambda t: t,
            ]
        )
    )
    changed = rewrite(text).encode()
    assert _outcome(lambda: decode_leaf(changed)) == _outcome(lambda: _decode_leaf_explained(changed))


def _outcome(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", run()
    except Exception as exc:  # noqa: BLE001 (the outcome compared is the exception's type and message)
        return type(exc).__name__, str(exc)


# Compiling refuses what it does not understand ------------------------------------------------------------


class _Odd(Check):
    error = "odd"

    def accepts(self, value: Any) -> bool:
        return True

    def __call__(self, value: Any) -> Any:
        return value


class _Text(fields.String):
    pass


def _schema(**declared: Any) -> Schema:
    return Schema.from_dict(declared)()


class _WithPreLoad(Schema):
    x = fields.String()

    @pre_load
    def _trim(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return data


class _WithPostLoad(Schema):
    x = fields.String()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return data


class _WithFieldValidator(Schema):
    x = fields.String()

    @validates("x")
    def _check_x(self, value: str, **_: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        pytest.param(lambda: _schema(x=fields.Float()), "field type Float", id="Float"),
        pytest.param(lambda: _schema(x=fields.Boolean()), "field type Boolean", id="lenient Boolean"),
        pytest.param(lambda: _schema(x=_Text()), "field type _Text", id="subclass of String"),
        pytest.param(lambda: _schema(x=fields.String(validate=validate.URL())), "validator <URL", id="URL"),
        pytest.param(lambda: _schema(x=fields.String(validate=lambda v: True)), "validator <function", id="callable"),
        pytest.param(lambda: _schema(x=fields.String(validate=_Odd())), "overrides Check.__call__", id="Check"),
        pytest.param(lambda: _schema(x=fields.String(data_key="y")), "data_key", id="data_key"),
        pytest.param(lambda: _schema(x=fields.String(attribute="y")), "attribute", id="attribute"),
        pytest.param(lambda: _schema(x=fields.String(allow_none=True)), "allow_none", id="allow_none"),
        pytest.param(lambda: _schema(x=fields.String(load_default="y")), "load_default", id="load_default"),
        pytest.param(lambda: _schema(x=fields.String(pre_load=[str.strip])), "pre_load", id="field pre_load"),
        pytest.param(lambda: _schema(x=fields.Dict(values=fields.Integer())), "Dict with keys or values", id="Dict"),
        pytest.param(lambda: _schema(x=fields.List(fields.Float())), r"x\[\]: field type Float", id="List of Float"),
        pytest.param(
            lambda: _schema(x=fields.Nested(_schema(y=fields.Float()))), "field type Float", id="Nested Float"
        ),
        pytest.param(lambda: _schema(x=fields.Nested(_WithPostLoad, many=True)), "Nested with many", id="many"),
        pytest.param(lambda: Schema.from_dict({"x": fields.String()})(unknown=EXCLUDE), "unknown=", id="EXCLUDE"),
        pytest.param(lambda: Schema.from_dict({"x": fields.String()})(many=True), "many=True", id="many schema"),
        pytest.param(_WithPreLoad, "@pre_load", id="pre_load hook"),
        pytest.param(_WithPostLoad, "@post_load", id="post_load hook"),
        pytest.param(_WithFieldValidator, "@validates hooks", id="validates hook"),
    ],
)
def test_compiling_a_rule_it_does_not_understand_raises(schema: Callable[[], Schema], problem: str) -> None:
    with pytest.raises(NotCompilable, match=problem):
        compile_schema(schema())


def test_strict_boolean_and_check_are_understood() -> None:
    class Even(Check):
        error = "must be even"

        def accepts(self, value: Any) -> bool:
            return value % 2 == 0

    schema = _schema(flag=StrictBoolean(required=True), n=fields.Integer(validate=Even()))
    accept = compile_schema(schema)
    assert accept({"flag": True, "n": 2}) == schema.load({"flag": True, "n": 2})
    assert accept({"flag": 1, "n": 2}) is None and accept({"flag": True, "n": 3}) is None
    with pytest.raises(ValidationError, match="must be even"):
        schema.load({"flag": True, "n": 3})


def test_the_generated_source_writes_no_value_of_the_schema_but_field_names() -> None:
    """Patterns, choices and limits are bound by name, so no schema text can change the source's meaning."""
    source = compiled_source(ENVELOPE)
    assert "def accept(data):" in source
    for text in ("[0-9a-f]{32}", "village.genesis", "must be", "1_000_000", "1000000"):
        assert text not in source
    assert "'author'" in source and "'cosigner'" in source


def test_a_key_of_another_type_is_an_unknown_field() -> None:
    schema = _schema(flag=StrictBoolean(required=True))
    accept = compile_schema(schema)
    assert accept({"flag": True}) == {"flag": True}
    assert accept({"flag": True, 3: 4}) is None
    with pytest.raises(ValidationError):
        schema.load({"flag": True, 3: 4})
