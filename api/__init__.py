"""The villageledger service: the app factory (``api.app.create_app``), the helpers the JSON API and the pages
share (``api.extensions``: the store, the clock, the limits), the JSON API itself (``api.views`` with its
``api.schemas``) and what guards every response (``guards``, ``problems``, ``admission``).

Imports run one way: ``api.app`` imports the parts; ``web`` and ``api.views`` import ``api.extensions`` and never
each other; nothing below ``api`` (``storage``, ``ledger``, ``keys``) imports Flask.
"""
