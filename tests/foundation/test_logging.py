"""The log allow-list keeps personal data out of operators' logs."""

from __future__ import annotations

import io
import json
from datetime import datetime

import pytest

from broker.logging import ALLOWED_KEYS, configure, get_logger


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.fixture
def captured() -> io.StringIO:
    buf = io.StringIO()
    configure(level="DEBUG", stream=buf)
    return buf


def test_json_line_has_timestamp_level_and_event(captured: io.StringIO) -> None:
    """Each call writes one JSON object with an ISO UTC timestamp, the level and the event name."""
    get_logger().info("package.delivered", msg_id="m-1", sender="FR")
    (line,) = _lines(captured)
    assert line["event"] == "package.delivered"
    assert line["level"] == "info"
    assert line["msg_id"] == "m-1"
    assert line["sender"] == "FR"
    stamp = datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))
    offset = stamp.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_field_value_of_a_notice_never_reaches_the_output(captured: io.StringIO) -> None:
    """A name, a date of birth or a charge passed to a log call by mistake is dropped."""
    get_logger().warning(
        "package.quarantined",
        reason="digest",
        family_name="VERYRARE-SURNAME-QX",
        date_of_birth="1971-03-02",
        notice={"person": {"family_name": "VERYRARE-SURNAME-QX"}},
        charges=["MURDER-CANARY-7781"],
    )
    out = captured.getvalue()
    assert "VERYRARE-SURNAME-QX" not in out
    assert "1971-03-02" not in out
    assert "MURDER-CANARY-7781" not in out
    (line,) = _lines(captured)
    assert set(line) == {"event", "level", "timestamp", "reason"}


@pytest.mark.parametrize("kid", ["_WsA4E3B31CWH0Z467A8rA", "-x9_aB3", "AbC_dE-f"])
def test_a_base64url_key_id_is_logged_as_itself(captured: io.StringIO, kid: str) -> None:
    """Key ids are base64url (``-`` and ``_`` anywhere, also first): logged as they are, while a
    value with a space (a name) is not identifier-shaped."""
    get_logger().info("keys.destroyed", bureau="DE", key_id=kid)
    get_logger().info("keys.destroyed", bureau="DE", key_id="ROSSETTI Marco")
    first, second = _lines(captured)
    assert first["key_id"] == kid
    assert second["key_id"] == "other"


def test_free_text_event_name_is_replaced(captured: io.StringIO) -> None:
    """An event that is not a fixed dotted name (e.g. an f-string with a value) is not written."""
    get_logger().info("delivered notice for VERYRARE-SURNAME-QX")
    out = captured.getvalue()
    assert "VERYRARE-SURNAME-QX" not in out
    assert _lines(captured)[0]["event"] == "log.invalid-event"


def test_level_filter_drops_debug_at_info(tmp_path: object) -> None:
    """At INFO, debug events (which may carry rejection detail codes) are not written."""
    buf = io.StringIO()
    configure(level="INFO", stream=buf)
    get_logger().debug("envelope.rejected", reason="decrypt")
    get_logger().info("daemon.started", bureau="FR")
    assert [line["event"] for line in _lines(buf)] == ["daemon.started"]


def test_unknown_level_is_refused() -> None:
    """A typo in the configured level is an error, not silently INFO."""
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure(level="LOUD")


def test_allow_list_holds_no_personal_field_names() -> None:
    """The allow-list names operational keys only, none of the notice's personal fields."""
    personal = {"family_name", "forenames", "name", "date_of_birth", "charges", "value", "notice"}
    assert not (ALLOWED_KEYS & personal)
