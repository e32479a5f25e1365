"""The HTTP peer: a bare Flask app with one route, served by the same gunicorn settings as the API
(``gunicorn 'bench.hello:create_app()'``), to show what the server and load client cost on their own."""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    return app
