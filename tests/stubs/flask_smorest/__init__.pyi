# The part of flask-smorest (no types of its own) that villageledger uses. Its decorators return a wrapper
# that calls the view with the same arguments, so for the type checker a decorated view keeps its type.
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

import flask
from marshmallow import Schema, fields
from webargs.flaskparser import FlaskParser

_F = TypeVar("_F", bound=Callable[..., Any])

class Blueprint(flask.Blueprint):
    ARGUMENTS_PARSER: ClassVar[FlaskParser]
    description: str
    def __init__(self, name: str, import_name: str, *args: Any, description: str = ..., **kwargs: Any) -> None: ...
    def route(
        self, rule: str, *, parameters: list[Any] | None = ..., tags: list[str] | None = ..., **options: Any
    ) -> Callable[[_F], _F]: ...
    def arguments(
        self,
        schema: type[Schema] | Schema,
        *,
        location: str = ...,
        content_type: str | None = ...,
        required: bool = ...,
        description: str | None = ...,
        example: Any = ...,
        examples: dict[str, Any] | None = ...,
        **kwargs: Any,
    ) -> Callable[[_F], _F]: ...
    def response(
        self,
        status_code: int | str | HTTPStatus,
        schema: type[Schema] | Schema | str | dict[str, Any] | None = ...,
        *,
        content_type: str | None = ...,
        description: str | None = ...,
        example: Any = ...,
        examples: dict[str, Any] | None = ...,
        headers: dict[str, Any] | None = ...,
    ) -> Callable[[_F], _F]: ...
    @staticmethod
    def doc(**kwargs: Any) -> Callable[[_F], _F]: ...

class Api:
    ERROR_SCHEMA: ClassVar[type[Schema]]
    DEFAULT_ERROR_RESPONSE_NAME: ClassVar[str | None]
    DEFAULT_RESPONSE_CONTENT_TYPE: str
    def __init__(
        self, app: flask.Flask | None = ..., *, spec_kwargs: dict[str, Any] | None = ..., config_prefix: str = ...
    ) -> None: ...
    def init_app(self, app: flask.Flask, *, spec_kwargs: dict[str, Any] | None = ...) -> None: ...
    def register_blueprint(self, blp: Blueprint, *, parameters: list[Any] | None = ..., **options: Any) -> None: ...
    def register_field(self, field: type[fields.Field[Any]], *args: str | type[fields.Field[Any]] | None) -> None: ...
    def _register_error_handlers(self) -> None: ...
    def _register_responses(self) -> None: ...
