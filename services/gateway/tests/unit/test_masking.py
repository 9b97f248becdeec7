"""Contact data as each role sees it: full for the staff who call the customer, masked else."""

from __future__ import annotations

import pytest

from hvc.gateway.domain.masking import contact_view, mask_msisdn


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812348000", "138****8000"),
        ("8613812348000", "861******8000"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_a_number_keeps_its_prefix_and_last_four_digits(raw, masked):
    assert mask_msisdn(raw) == masked


def test_contact_data_is_full_only_for_the_roles_named():
    prof = {"name": "张三丰", "msisdns": ["13812348000"]}
    assert contact_view(prof, "agent", ("agent",)) == {
        "name": "张三丰",
        "msisdns": ["13812348000"],
        "masked": False,
    }
    assert contact_view(prof, "admin", ("agent",)) == {
        "name": "张**",
        "msisdns": ["138****8000"],
        "masked": True,
    }
