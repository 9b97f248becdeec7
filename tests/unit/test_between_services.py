"""What one service keeps of another's decisions, checked against the other's own rules."""

from __future__ import annotations

from hvc.complaints.domain.lifecycle import STATUSES, STOPPED
from hvc.events.v1 import complaints_pb2
from hvc.warnings import pipeline


def test_warnings_forgets_the_complaints_the_complaints_service_stops():
    """The VIP line's open complaints (warnings' `lookup` documents) leave out the statuses
    the complaints service's own `open_complaints` view leaves out, and every status it
    publishes on hvc.complaints.v1 is one of the contract's."""
    assert pipeline.STOPPED == frozenset(STOPPED)
    names = set(complaints_pb2.ComplaintUpdated.Status.keys())
    assert set(STATUSES) <= names
