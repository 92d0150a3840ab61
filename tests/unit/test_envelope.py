"""What the loader refuses to land (quarantine) and how window bounds are written."""

from datetime import UTC, datetime

import pytest

from market_access.load.sync import check_envelope, parse_source_timestamp, to_beijing_text


def test_good_item_passes():
    assert check_envelope({"id": "A1", "updated_at": "2026-03-05 09:00:00", "is_deleted": False}) is None


@pytest.mark.parametrize(
    "item, words",
    [
        ([1, 2], "not an object"),
        ({"updated_at": "2026-03-05 09:00:00", "is_deleted": False}, "missing or empty id"),
        ({"id": "  ", "updated_at": "2026-03-05 09:00:00", "is_deleted": False}, "missing or empty id"),
        ({"id": 7, "updated_at": "2026-03-05 09:00:00", "is_deleted": False}, "missing or empty id"),
        ({"id": "A", "updated_at": "2026/03/05 09:00:00", "is_deleted": False}, "updated_at"),
        ({"id": "A", "updated_at": "2026-02-30 09:00:00", "is_deleted": False}, "updated_at"),
        ({"id": "A", "updated_at": "2026-03-05 09:00:00", "is_deleted": "false"}, "is_deleted"),
    ],
)
def test_unlandable_items_get_a_reason(item, words):
    reason = check_envelope(item)
    assert reason is not None and words in reason


def test_window_bounds_are_beijing_time():
    # 2026-06-30 16:00 UTC is 2026-07-01 00:00 in Beijing
    assert to_beijing_text(datetime(2026, 6, 30, 16, 0, tzinfo=UTC)) == "2026-07-01 00:00:00"
    with pytest.raises(ValueError):
        to_beijing_text(datetime(2026, 6, 30, 16, 0))


def test_source_timestamp_is_read_as_beijing():
    ts = parse_source_timestamp("2026-07-01 00:00:00")
    assert ts.astimezone(UTC) == datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
    assert parse_source_timestamp("20260701") is None
