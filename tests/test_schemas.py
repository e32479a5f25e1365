"""The wire schemas' shared fields: bytes cross HTTP as canonical base64, documented as such."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from api.schemas.common import Base64Bytes
from ledger.canonical import b64encode


class Carrier(Schema):
    salt = Base64Bytes(allow_none=True)
    proof = fields.List(Base64Bytes())


@given(st.binary(max_size=100))
def test_bytes_round_trip_through_their_canonical_base64(raw: bytes) -> None:
    dumped = Carrier().dump({"salt": raw})
    assert dumped == {"salt": b64encode(raw)}
    assert Carrier().load(dumped) == {"salt": raw}


def test_none_is_null() -> None:
    assert Carrier().dump({"salt": None}) == {"salt": None}


@pytest.mark.parametrize(("wire", "message"), [
    ({"salt": "AA="}, "salt is not valid base64"),
    ({"salt": "AB=="}, "salt is not canonical base64"),
    ({"salt": "A A="}, "salt is not valid base64"),
    ({"salt": 16}, "Not a valid string."),
    ({"proof": ["AAA=", "YR=="]}, "proof is not canonical base64"),
])
def test_anything_but_canonical_base64_is_refused_saying_why(wire: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Carrier().load(wire)


def test_base64_fields_are_documented_as_byte_strings(client: FlaskClient) -> None:
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]  # type: ignore[index]
    assert schemas["EntryItem"]["properties"]["leaf_hash"] == {
        "type": "string", "format": "byte", "description": "base64 SHA-256 hash (32 bytes)"}
    assert schemas["Proof"]["properties"]["hashes"]["items"]["format"] == "byte"
    assert schemas["PrivateHousehold"]["properties"]["salt"] == {"type": "string", "format": "byte"}
