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

How: the compiler writes one Python function per schema, list and dict field (``compiled_source`` shows
them), with every scalar field's type test and validators inlined as one expression, and ``exec``s them
once. Values the fast path does not understand stay out of the source: constants, patterns, ``Check``
predicates and ``@validates_schema`` hooks are bound by name (``_C<n>``), only field names appear as
literals (their ``repr``).
"""

from __future__ import annotations

import linecache
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate
from marshmallow.decorators import POST_DUMP, PRE_DUMP, VALIDATES_SCHEMA

Accept = Callable[[Any], "dict[str, Any] | None"]


class NotCompilable(TypeError):
    """A schema uses a field, validator, hook or option the compiler does not model."""


class _Refused(Exception):
    """Internal: the fast path does not accept this value (marshmallow decides)."""


_ABSENT = object()  # what the generated code gets for a key the data lacks


class Check(validate.Validator):
    """A validator defined by a predicate, so the compiled path and marshmallow run the same test:
    ``accepts(value)`` is the rule, ``__call__`` raises ``ValidationError(error)`` exactly when it is false."""

    error: str

    @abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value`` passes this check."""

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
    accept: Accept = _compile(schema).namespace["accept"]
    return accept


def compiled_source(schema: Schema) -> str:
    """The Python source ``compile_schema(schema)`` runs (for reading, and for tracebacks)."""
    return _compile(schema).source()


_ACCEPT = """
def accept(data):
    try:
        return {load}(data)
    except (_Refused, _ValidationError):
        return None
"""


def _compile(schema: Schema) -> _Module:
    module = _Module(type(schema).__name__)
    load = _schema_function(schema, module.where, module)
    module.functions.append(_ACCEPT.format(load=load))
    filename = f"<ledger.compiled {module.where} {id(module):x}>"
    text = module.source()
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    exec(compile(text, filename, "exec"), module.namespace)  # noqa: S102 (our own source, see _Module)
    return module


@dataclass
class _Module:
    """The source being generated: functions, and the objects they name. Only identifiers the compiler
    makes up and ``repr``s of field names (strings) are ever written into the source."""

    where: str
    functions: list[str] = field(default_factory=list)
    namespace: dict[str, Any] = field(
        default_factory=lambda: {
            "_Refused": _Refused, "_ValidationError": ValidationError, "_RAISE": RAISE, "_absent": _ABSENT
        }
    )

    def name(self, value: Any) -> str:
        """A fresh global name bound to ``value``."""
        name = f"_C{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def function(self, lines: list[str]) -> str:
        """Add ``def <name>(value):`` with body ``lines`` (indented one level); returns its name."""
        name = f"_f{len(self.functions)}"
        self.functions.append("\n".join([f"def {name}(value):", *("    " + line for line in lines)]))
        return name

    def source(self) -> str:
        return "\n\n".join(self.functions) + "\n"


# --- schemas ----------------------------------------------------------------------------------------


def _schema_function(schema: Schema, where: str, module: _Module) -> str:
    """A function loading a dict of known keys field by field, then running the ``@validates_schema`` hooks
    on the result (marshmallow runs them only when every field loaded, which is the only case that gets
    here). Unknown keys: every key found is counted, and any other key makes the count fall short."""
    _require_plain_schema(schema, where)
    new = "{}" if schema.dict_class is dict else f"{module.name(schema.dict_class)}()"
    lines = ["if type(value) is not dict:", "    raise _Refused", f"out = {new}", "found = 0"]
    for name, field_ in schema.load_fields.items():
        check, loaded = _field_code(field_, f"{where}.{name}", "v", module)
        lines += [f"v = value.get({name!r}, _absent)", "if v is not _absent:", "    found += 1"]
        lines += ["    " + line for line in check]
        lines += [f"    out[{name!r}] = {loaded}"]
        if field_.required:
            lines += ["else:", "    raise _Refused"]
    lines += ["if found != len(value):", "    raise _Refused"]
    for hook in _schema_hooks(schema, where):
        lines.append(f"{module.name(hook)}(out, partial=None, many=False, unknown=_RAISE)")  # as marshmallow calls it
    lines.append("return out")
    return module.function(lines)


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


def _field_code(field_: fields.Field[Any], where: str, value: str, module: _Module) -> tuple[list[str], str]:
    """Statements that raise _Refused unless the field loads ``value`` (a variable), and the expression of
    what it loads: its type's loader, then every validator on the result."""
    _require_plain_field(field_, where)
    scalar = _SCALARS.get(type(field_))
    make = _FIELDS.get(type(field_))
    if scalar is not None:
        check, loaded, tests = [], value, [f"type({value}) is not {module.name(scalar)}"]  # loads as itself
    elif make is not None:
        check, loaded, tests = [f"loaded = {make(field_, where, module)}({value})"], "loaded", []
    else:
        raise NotCompilable(f"{where}: field type {type(field_).__name__} is not supported")
    for i, validator in enumerate(field_.validators):
        tests.append(f"not ({_predicate(validator, field_, f'{where} validator {i}', module).format(v=loaded)})")
    if tests:
        check += [f"if {' or '.join(tests)}:", "    raise _Refused"]
    return check, loaded


def _require_plain_field(field_: fields.Field[Any], where: str) -> None:
    problems = {
        "data_key": field_.data_key is not None,
        "attribute": field_.attribute is not None,
        "allow_none": field_.allow_none,
        "load_default": field_.load_default is not missing,
        "pre_load": bool(field_.pre_load),
        "post_load": bool(field_.post_load),
    }
    for option, present in problems.items():
        if present:
            raise NotCompilable(f"{where}: option {option} is not supported")


# String, Integer (strict or not) and StrictBoolean load a value of exactly this type as itself: marshmallow
# returns ``ensure_text_type(s)``, ``int(n)`` and ``b``, each equal to the value given.
_SCALARS: dict[type, type] = {fields.String: str, fields.Integer: int, StrictBoolean: bool}


def _dict(field_: fields.Field[Any], where: str, module: _Module) -> str:
    assert isinstance(field_, fields.Dict)
    if field_.key_field is not None or field_.value_field is not None:
        raise NotCompilable(f"{where}: Dict with keys or values fields is not supported")
    # marshmallow's Dict returns mapping_type(value): a shallow copy
    return module.function(["if type(value) is not dict:", "    raise _Refused", "return dict(value)"])


def _list(field_: fields.Field[Any], where: str, module: _Module) -> str:
    assert isinstance(field_, fields.List)
    check, loaded = _field_code(field_.inner, f"{where}[]", "item", module)
    lines = ["if type(value) is not list:", "    raise _Refused", "out = []", "for item in value:"]
    lines += ["    " + line for line in check]
    lines += [f"    out.append({loaded})", "return out"]
    return module.function(lines)


def _nested(field_: fields.Field[Any], where: str, module: _Module) -> str:
    assert isinstance(field_, fields.Nested)
    if field_.many or field_.unknown is not None or field_.only is not None or field_.exclude:
        raise NotCompilable(f"{where}: Nested with many, unknown, only or exclude is not supported")
    return _schema_function(field_.schema, f"{where}:{type(field_.schema).__name__}", module)


_FIELDS: dict[type, Callable[[fields.Field[Any], str, _Module], str]] = {
    fields.Dict: _dict,
    fields.List: _list,
    fields.Nested: _nested,
}


# --- validators -------------------------------------------------------------------------------------

# A predicate is an expression with ``{v}`` for the loaded value, true exactly when ``validator(value)``
# would not raise.


def _predicate(validator: Any, field_: fields.Field[Any], where: str, module: _Module) -> str:
    if isinstance(validator, Check):
        if type(validator).__call__ is not Check.__call__:
            raise NotCompilable(f"{where}: {type(validator).__name__} overrides Check.__call__")
        return f"{module.name(validator.accepts)}({{v}})"
    make = _PREDICATES.get(type(validator))
    if make is None:
        raise NotCompilable(f"{where}: validator {validator!r} is not supported")
    return make(validator, field_, module)


def _length(v: validate.Length, field_: fields.Field[Any], module: _Module) -> str:
    if v.equal is not None:
        return f"len({{v}}) == {module.name(v.equal)}"
    bounds = [f"{module.name(v.min)} <= len({{v}})" if v.min is not None else "",
              f"len({{v}}) <= {module.name(v.max)}" if v.max is not None else ""]
    return " and ".join(b for b in bounds if b) or "True"


def _range(v: validate.Range, field_: fields.Field[Any], module: _Module) -> str:
    # marshmallow refuses ``value < min`` (``<=`` if exclusive) and ``value > max`` (``>=``)
    bounds = [f"not ({{v}} {'<' if v.min_inclusive else '<='} {module.name(v.min)})" if v.min is not None else "",
              f"not ({{v}} {'>' if v.max_inclusive else '>='} {module.name(v.max)})" if v.max is not None else ""]
    return " and ".join(b for b in bounds if b) or "True"


def _one_of(v: validate.OneOf, field_: fields.Field[Any], module: _Module) -> str:
    choices = v.choices
    if type(field_) is fields.String and all(type(c) is str for c in choices):
        return f"{{v}} in {module.name(frozenset(choices))}"  # for exact str values, hashing agrees with ``in``

    def contains(value: Any) -> bool:
        try:
            return value in choices
        except TypeError:
            return False

    return f"{module.name(contains)}({{v}})"


def _equal(v: validate.Equal, field_: fields.Field[Any], module: _Module) -> str:
    return f"not ({{v}} != {module.name(v.comparable)})"  # marshmallow's test is ``!=``


def _regexp(v: validate.Regexp, field_: fields.Field[Any], module: _Module) -> str:
    return f"{module.name(v.regex.match)}({{v}}) is not None"


_PREDICATES: dict[type, Callable[[Any, fields.Field[Any], _Module], str]] = {
    validate.Length: _length,
    validate.Range: _range,
    validate.OneOf: _one_of,
    validate.Equal: _equal,
    validate.Regexp: _regexp,
}
