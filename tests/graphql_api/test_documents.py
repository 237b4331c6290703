"""Every document the SDKs can send validates against Tollgate's schema, and the schema file
is what the schema builder makes of them (so nobody edits one and forgets the other)."""

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import GraphQLUnionType, parse, validate

from tests.graphql_api.documents import JS, documents, need_node
from tollgate.graphql.api import SCHEMA

SCHEMA_FILE = Path(__file__).parents[2] / "src/tollgate/graphql/schema.graphql"

# What the issue names, by operation: each must be among the documents and resolve.
REQUIRED = {
    "GetSdkConfiguration", "GetEntitlements", "GetPaywall", "GetCustomerPortalByRefId",
    "GetCustomerById", "GetActiveSubscriptions", "GetActiveSubscriptionsList",
    "GetCheckoutState", "GetUsageHistory", "GetUsageHistoryV2", "GetProducts", "GetCoupons",
    "ProvisionCustomer", "ProvisionSubscription", "UpdateSubscription", "CancelSubscription",
    "PreviewSubscription", "EstimateSubscription", "ApplySubscription", "ReportUsage",
    "ReportUsageBulk", "ReportEvent", "ReportEntitlementCheckRequested",
    "GrantPromotionalEntitlements", "RevokePromotionalEntitlement", "ArchiveCustomer",
    "UnarchiveCustomer", "UpdateCustomer", "ImportCustomer", "ImportCustomerBulk",
    "OnEntitlementsUpdated", "OnUsageUpdated", "OnPackagePublished", "OnCreditBalanceUpdated",
}  # fmt: skip


def test_the_sdks_send_every_required_operation() -> None:
    assert set(documents("node-server-sdk")) >= REQUIRED
    # The browser SDK has no credit balances; everything else it sends too.
    assert set(documents("js-client-sdk")) >= REQUIRED - {"OnCreditBalanceUpdated"}


def test_every_union_has_the_members_the_sdks_know() -> None:
    # The SDKs' possibleTypes (section 1.5 of the SDK notes), members no document selects from
    # included: a server may answer any of them.
    members = {}
    for name in ("ResetPeriodConfiguration", "ScheduleVariables"):
        union = SCHEMA.get_type(name)
        assert isinstance(union, GraphQLUnionType)
        members[name] = {member.name for member in union.types}
    assert members == {
        "ResetPeriodConfiguration": {
            "MonthlyResetPeriodConfig", "WeeklyResetPeriodConfig", "YearlyResetPeriodConfig",
        },
        "ScheduleVariables": {
            "PlanChangeVariables", "DowngradeChangeVariables", "BillingPeriodChangeVariables",
            "UnitAmountChangeVariables", "AddonChangeVariables",
            "PlanPriceOverrideChangeVariables", "AddonPriceOverrideChangeVariables",
            "CouponChangeVariables",
        },
    }  # fmt: skip


@pytest.mark.parametrize("package", ["node-server-sdk", "js-client-sdk"])
def test_every_document_of_each_sdk_validates(package: str) -> None:
    problems = {
        name: [error.message for error in validate(SCHEMA, parse(document))]
        for name, document in documents(package).items()
    }
    assert len(problems) > 40  # all of them, not an empty dump
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_schema_file_is_the_builders_output() -> None:
    need_node()
    built = subprocess.run(
        [sys.executable, str(JS / "schema_from_documents.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    if built.stdout != SCHEMA_FILE.read_text():
        pytest.fail(
            "src/tollgate/graphql/schema.graphql differs from what tests/js/"
            "schema_from_documents.py makes of the installed SDKs: regenerate it"
        )
