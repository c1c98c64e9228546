"""JSON conventions of bridge.marshal, both directions."""

from __future__ import annotations

import pytest
from relais.v1 import system_pb2

from bridge.marshal import ParseError, enum_words, json_to_message, message_to_json
from tests.support.services import pb


def test_enum_words_drop_the_type_prefix_and_unspecified_prints_null() -> None:
    to_word, from_word = enum_words(system_pb2.HealthStatus.DESCRIPTOR)

    assert to_word[system_pb2.HEALTH_STATUS_HEALTHY] == "healthy"
    assert to_word[0] is None
    assert from_word["healthy"] == from_word["HEALTH_STATUS_HEALTHY"] == system_pb2.HEALTH_STATUS_HEALTHY


def test_round_trip_keeps_every_value() -> None:
    data = {
        "id": 2**62,
        "name": "n",
        "kind": "book",
        "tags": ["t"],
        "filter": {"q": "x", "active": True},
        "created_at": "2024-01-15T10:30:00Z",
        "note": "",
        "counts": {"k": 3},
        "price": 1.5,
        "blob": "AAE=",
        "big": 2**64 - 1,
        "shelf": "",
        "page_size": -3,
    }
    item = pb.Item()
    json_to_message(data, item)

    assert message_to_json(item) == data


def test_parsing_accepts_the_lenient_forms_clients_send() -> None:
    item = pb.Item()
    json_to_message(
        {
            "id": "12",
            "name": "7",
            "kind": "KIND_MAGAZINE",
            "page_size": 3.0,
            "unknown": 1,
            "created_at": 0,
            "note": None,
        },
        item,
    )

    assert (item.id, item.name, item.kind, item.page_size) == (12, "7", pb.KIND_MAGAZINE, 3)
    assert item.HasField("created_at") and not item.HasField("note")


@pytest.mark.parametrize(
    "data, field",
    [
        ({"id": 1.5}, "id"),
        ({"id": True}, "id"),
        ({"page_size": 2**31}, "page_size"),
        ({"big": -1}, "big"),
        ({"tags": ["ok", {}]}, "tags[1]"),
        ({"filter": []}, "filter"),
        ({"kind": 9}, "kind"),
        ({"blob": "***"}, "blob"),
        ({"counts": {"k": "x"}}, "counts.k"),
        ({"name": 7}, "name"),
        ({"created_at": "2024-13-45"}, "created_at"),
        # Unix seconds beyond the years 1-9999, and no number at all (found by fuzzing: was a 500).
        ({"created_at": -45055954885864047}, "created_at"),
        ({"created_at": 1e300}, "created_at"),
        ({"created_at": float("nan")}, "created_at"),
    ],
)
def test_bad_values_name_their_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ParseError) as raised:
        json_to_message(data, pb.Item())

    assert [v.field for v in raised.value.violations] == [field]
