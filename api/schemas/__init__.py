"""What crosses HTTP: marshmallow schemas for every request and response (the OpenAPI document is
generated from these). One module per view area, as ``api.views``: ``api.views.<area>`` takes its schemas
from ``api.schemas.<area>``; what several areas share is in ``api.schemas.common``. Table models stay in
``storage``; entry bodies are validated by ``ledger.entries``."""
