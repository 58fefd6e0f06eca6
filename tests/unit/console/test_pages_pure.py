"""The console page areas' pure parts: filters, links, log lines, the grace window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.console.pages.calls import Filters, call_row, filters_of
from services.console.pages.grace import in_grace
from services.console.pages.log import via, what

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_good_filters_are_kept_and_hour_is_the_default_bucket() -> None:
    f = filters_of({"status": "4xx", "path": "/v1/", "key": "key_abc", "cursor": "c1"})
    assert (f.status, f.path, f.key, f.cursor, f.by, f.problems) == (
        "4xx",
        "/v1/",
        "key_abc",
        "c1",
        "hour",
        (),
    )
    assert filters_of({"by": "day"}).by == "day"
    assert filters_of({"by": "week"}).by == "hour"


def test_bad_filters_are_dropped_each_with_a_reason() -> None:
    f = filters_of({"status": "404", "path": "v1", "key": "klk_not a key id"})
    assert (f.status, f.path, f.key) == (None, None, None)
    assert len(f.problems) == 3


def test_links_keep_the_filters_and_drop_the_cursor_unless_given() -> None:
    f = Filters(status="5xx", path="/v1/a b", cursor="old")
    assert f.query() == "?status=5xx&path=%2Fv1%2Fa+b"
    assert f.query(cursor="next") == "?status=5xx&path=%2Fv1%2Fa+b&cursor=next"
    assert f.query(by="day") == "?status=5xx&path=%2Fv1%2Fa+b&by=day"
    assert Filters().query() == "?"


def test_a_call_row_shows_utc_time_and_its_status_class() -> None:
    row = call_row({"ts": "2026-05-01T10:00:00.5+02:00", "status": 503, "duration_ms": 2})
    assert row["time"] == "2026-05-01 08:00:00 UTC"
    assert (row["status_class"], row["duration"]) == ("5xx", "2.0")


def test_log_lines_name_the_action_and_the_frontend_it_came_through() -> None:
    granted = {"action": "admin_granted", "user": "bob", "via": {"account": "F", "user": "console"}}
    assert what(granted) == "granted super-admin to bob"
    assert via(granted) == "console"
    rotated = {"action": "rotated", "key_hint": "klk_…x7q2", "via": {"account": "FRONTENDS"}}
    assert what(rotated) == "rotated the key; new key klk_…x7q2"
    assert via(rotated) == "FRONTENDS"
    assert via({"action": "viewed", "via": None}) is None
    assert what({"action": "something_new"}) == "something_new"


def test_the_previous_key_is_in_grace_only_until_its_grace_ends() -> None:
    live = {"previous_key_id": "key_old", "previous_key_grace_until": "2026-05-01T13:00:00Z"}
    assert in_grace(live, NOW) == ("key_old", NOW + timedelta(hours=1))
    assert in_grace(live, NOW + timedelta(hours=1)) is None
    assert in_grace({"previous_key_id": "key_old", "previous_key_grace_until": None}, NOW) is None
    assert in_grace({"key_id": "key_new"}, NOW) is None
    assert in_grace(None, NOW) is None
