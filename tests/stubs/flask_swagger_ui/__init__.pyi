# flask-swagger-ui ships no types: its one function.
from typing import Any

import flask

def get_swaggerui_blueprint(
    base_url: str,
    api_url: str,
    config: dict[str, Any] | None = ...,
    oauth_config: dict[str, Any] | None = ...,
    blueprint_name: str = ...,
) -> flask.Blueprint: ...
