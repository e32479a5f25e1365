"""An acceptance fast path compiled from a marshmallow schema: the rules stay written once, in the schema.

``compile_schema(schema)`` reads the schema's declared fields, their validators and its ``@validates_schema``
hooks, and returns ``accept(data)`` such that

- if ``accept(data)`` returns a dict, ``schema.load(data)`` succeeds and returns an equal dict, with its keys
  in the same order (every nested dict and list equal too);
- if it returns ``None`` the data is invalid, or has a shape the fast path does not take (a ``bytes`` string,
  a tuple for a list, a subclass of dict...): the caller runs ``schema.load``, whose verdict and error
  messages are the ones that count.

The fast path may refuse more than marshmallow, never accept more. It takes only JSON's own types (exact
``dict``, ``list``, ``str``, ``int``, ``bool``). It understands the field types in ``_SCALARS`` and
``_FIELDS`` and the validators in ``_PREDICATES`` by exact type (a subclass may change behaviour), and ``Check`` validators. Any
other field, validator, hook or option that changes what ``load`` accepts or returns (``data_key``,
``allow_none``, ``load_default``, field processors, ``@validates``, ``@pre_load``, ``@post_load``...) raises
``NotCompilable`` when the schema is compiled, so a new rule can never be skipped in silence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate
from marshmallow.decorators import POST_DUMP, PRE_DUMP, VALIDATES_SCHEMA

Load = Callable[[Any], Any]
Predicate = Callable[[Any], object]  # its truth value is the verdict
Accept = Callable[[Any], "dict[str, Any] | None"]


class NotCompilable(TypeError):
    """A schema uses a field, validator, hook or option the compiler does not model."""


class _Refused(Exception):
    """Internal: the fast path does not accept this value (marshmallow decides)."""


class Check(validate.Validator):
    """A validator defined by a predicate, so the compiled path and marshmallow run the same test:
    ``accepts(value)`` is the rule, ``__call__`` raises ``ValidationError(error)`` exactly when it is false."""

    error: str

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def __call__(self, value: Any) -> Any:
        if not self.accepts(value):
            raise ValidationError(self.error)
        return value


class StrictBoolean(fields.Boolean):
    """JSON true or false only (marshmallow's Boolean also takes 1, "yes"...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


def compile_schema(schema: Schema) -> Accept:
    """``accept(data)``: what ``schema.load(data)`` returns, or None (see the module's invariant).
    Raises NotCompilable for anything in ``schema`` the fast path does not model."""
    load = _schema_loader(schema, type(schema).__name__)

    def accept(data: Any) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = load(data)
            return loaded
        except (_Refused, ValidationError):
            return None

    return accept


# --- schemas ----------------------------------------------------------------------------------------


def _schema_loader(schema: Schema, where: str) -> Load:
    """A schema loads a dict of known keys field by field, then runs its ``@validates_schema`` hooks on the
    result (marshmallow runs them only when every field loaded, which is the only case that gets here)."""
    _require_plain_schema(schema, where)
    plan = tuple(
        (name, field.required, _field_loader(field, f"{where}.{name}")) for name, field in schema.load_fields.items()
    )
    names = frozenset(schema.load_fields)
    hooks = tuple(_schema_hooks(schema, where))
    dict_class = schema.dict_class

    def load(data: Any) -> Any:
        if type(data) is not dict or not names.issuperset(data):
            raise _Refused
        out = dict_class()
        for name, required, load_field in plan:
            if name in data:
                out[name] = load_field(data[name])
            elif required:
                raise _Refused
        for hook in hooks:
            hook(out, partial=None, many=False, unknown=RAISE)  # the arguments marshmallow passes
        return out

    return load


def _require_plain_schema(schema: Schema, where: str) -> None:
    options = {"many": schema.many, "partial": schema.partial}
    for option, value in options.items():
        if value:
            raise NotCompilable(f"{where}: option {option}={value!r} is not supported")
    if schema.unknown != RAISE:
        raise NotCompilable(f"{where}: unknown={schema.unknown!r} is not supported (only RAISE)")
    for name in schema.load_fields:
        if "." in name:
            raise NotCompilable(f"{where}: a dotted field name {name!r} is not supported")
    for tag, hooks in schema._hooks.items():
        if hooks and tag not in (VALIDATES_SCHEMA, PRE_DUMP, POST_DUMP):
            raise NotCompilable(f"{where}: @{tag} hooks are not supported")


def _schema_hooks(schema: Schema, where: str) -> Iterable[Callable[..., Any]]:
    for attr_name, many, options in schema._hooks[VALIDATES_SCHEMA]:
        if many or options.get("pass_original"):
            raise NotCompilable(f"{where}: @validates_schema {attr_name} with pass_many or pass_original")
        yield getattr(schema, attr_name)


# --- fields -----------------------------------------------------------------------------------------


def _field_loader(field: fields.Field[Any], where: str) -> Load:
    """The loader of one field's value: its type's loader, then every validator on the result."""
    _require_plain_field(field, where)
    checks = tuple(_predicate(v, field, f"{where} validator {i}") for i, v in enumerate(field.validators))
    scalar = _SCALARS.get(type(field))
    if scalar is not None:
        return _scalar(scalar, checks)
    make = _FIELDS.get(type(field))
    if make is None:
        raise NotCompilable(f"{where}: field type {type(field).__name__} is not supported")
    return _checked(make(field, where), checks)


def _require_plain_field(field: fields.Field[Any], where: str) -> None:
    problems = {
        "data_key": field.data_key is not None,
        "attribute": field.attribute is not None,
        "allow_none": field.allow_none,
        "load_default": field.load_default is not missing,
        "pre_load": bool(field.pre_load),
        "post_load": bool(field.post_load),
    }
    for option, present in problems.items():
        if present:
            raise NotCompilable(f"{where}: option {option} is not supported")


def _checked(base: Load, checks: tuple[Predicate, ...]) -> Load:
    if not checks:
        return base
    if len(checks) == 1:
        (check,) = checks

        def load_one(value: Any) -> Any:
            out = base(value)
            if not check(out):
                raise _Refused
            return out

        return load_one

    def load_all(value: Any) -> Any:
        out = base(value)
        for check in checks:
            if not check(out):
                raise _Refused
        return out

    return load_all


# String, Integer (strict or not) and StrictBoolean load a value of exactly this type as itself: marshmallow
# returns ``ensure_text_type(s)``, ``int(n)`` and ``b``, each equal to the value given.
_SCALARS: dict[type, type] = {fields.String: str, fields.Integer: int, StrictBoolean: bool}


def _scalar(kind: type, checks: tuple[Predicate, ...]) -> Load:
    def load(value: Any) -> Any:
        if type(value) is not kind:
            raise _Refused
        for check in checks:
            if not check(value):
                raise _Refused
        return value

    return load


def _dict(field: fields.Field[Any], where: str) -> Load:
    assert isinstance(field, fields.Dict)
    if field.key_field is not None or field.value_field is not None:
        raise NotCompilable(f"{where}: Dict with keys or values fields is not supported")

    def load(value: Any) -> Any:
        if type(value) is not dict:
            raise _Refused
        return dict(value)  # marshmallow's Dict returns mapping_type(value): a shallow copy

    return load


def _list(field: fields.Field[Any], where: str) -> Load:
    assert isinstance(field, fields.List)
    inner = _field_loader(field.inner, f"{where}[]")

    def load(value: Any) -> Any:
        if type(value) is not list:
            raise _Refused
        return [inner(item) for item in value]

    return load


def _nested(field: fields.Field[Any], where: str) -> Load:
    assert isinstance(field, fields.Nested)
    if field.many or field.unknown is not None or field.only is not None or field.exclude:
        raise NotCompilable(f"{where}: Nested with many, unknown, only or exclude is not supported")
    return _schema_loader(field.schema, f"{where}:{type(field.schema).__name__}")


_FIELDS: dict[type, Callable[[fields.Field[Any], str], Load]] = {
    fields.Dict: _dict,
    fields.List: _list,
    fields.Nested: _nested,
}


# --- validators -------------------------------------------------------------------------------------


def _predicate(validator: Any, field: fields.Field[Any], where: str) -> Predicate:
    """True exactly when ``validator(value)`` would not raise, for a value the field has loaded."""
    if isinstance(validator, Check):
        if type(validator).__call__ is not Check.__call__:
            raise NotCompilable(f"{where}: {type(validator).__name__} overrides Check.__call__")
        return validator.accepts
    make = _PREDICATES.get(type(validator))
    if make is None:
        raise NotCompilable(f"{where}: validator {validator!r} is not supported")
    return make(validator, field)


def _length(v: validate.Length, field: fields.Field[Any]) -> Predicate:
    equal, low, high = v.equal, v.min, v.max
    if equal is not None:
        return lambda value: len(value) == equal
    if low is not None and high is not None:
        return lambda value: low <= len(value) <= high
    if low is not None:
        return lambda value: len(value) >= low
    if high is not None:
        return lambda value: len(value) <= high
    return lambda value: True


def _range(v: validate.Range, field: fields.Field[Any]) -> Predicate:
    low, high = v.min, v.max

    def above(value: Any) -> bool:
        return low is None or not (value < low if v.min_inclusive else value <= low)

    def below(value: Any) -> bool:
        return high is None or not (value > high if v.max_inclusive else value >= high)

    if v.min_inclusive and v.max_inclusive and low is not None and high is not None:
        return lambda value: low <= value <= high  # the common case, for exact ints the same test
    return lambda value: above(value) and below(value)


def _one_of(v: validate.OneOf, field: fields.Field[Any]) -> Predicate:
    choices = v.choices
    if type(field) is fields.String and all(type(c) is str for c in choices):
        return frozenset(choices).__contains__  # for exact str values, hashing agrees with ``in``

    def contains(value: Any) -> bool:
        try:
            return value in choices
        except TypeError:
            return False

    return contains


def _equal(v: validate.Equal, field: fields.Field[Any]) -> Predicate:
    comparable = v.comparable
    return lambda value: not (value != comparable)  # noqa: SIM202 (marshmallow's test is ``!=``)


def _regexp(v: validate.Regexp, field: fields.Field[Any]) -> Predicate:
    return v.regex.match  # a match object is true, None false


_PREDICATES: dict[type, Callable[[Any, fields.Field[Any]], Predicate]] = {
    validate.Length: _length,
    validate.Range: _range,
    validate.OneOf: _one_of,
    validate.Equal: _equal,
    validate.Regexp: _regexp,
}
