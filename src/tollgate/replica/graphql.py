"""`/graphql` (and GraphiQL at `/graphiql`): the replica's customers, read-only.

Top-level fields read the database on a worker thread, whole customers at a time; nested
fields only pick from what was read."""

from datetime import datetime
from importlib import resources
from typing import Any

from ariadne import ObjectType, QueryType, ScalarType, make_executable_schema
from ariadne.asgi import GraphQL
from ariadne.explorer import ExplorerGraphiQL
from graphql import GraphQLError, GraphQLResolveInfo
from starlette.concurrency import run_in_threadpool

from tollgate.replica import store
from tollgate.replica.memory import Memory, decide_all

MAX_PAGE = 500
Info = GraphQLResolveInfo[dict[str, Any]]

query = QueryType()
customer_type = ObjectType("Customer")
datetime_scalar = ScalarType("DateTime")
json_scalar = ScalarType("JSON")


@datetime_scalar.serializer
def _serialize_datetime(value: datetime | str) -> str:
    if isinstance(value, str):  # already in the wire's form (a decided entitlement's terms)
        return value
    return value.isoformat().replace("+00:00", "Z")


@query.field("customers")
async def _customers(
    _obj: None,
    info: Info,
    filter: dict[str, Any] | None = None,
    first: int = 50,
    after: str | None = None,
) -> dict[str, Any]:
    if not 1 <= first <= MAX_PAGE:
        raise GraphQLError(f"first must be between 1 and {MAX_PAGE}")
    memory: Memory = info.context["memory"]
    wanted = filter or {}
    rows = await run_in_threadpool(
        _page, memory, wanted.get("id"), wanted.get("email"), after, first + 1
    )
    nodes = rows[:first]
    return {
        "edges": [{"cursor": node["id"], "node": node} for node in nodes],
        "pageInfo": {
            "hasNextPage": len(rows) > first,
            "endCursor": nodes[-1]["id"] if nodes else None,
        },
    }


@query.field("customer")
async def _customer(_obj: None, info: Info, id: str) -> dict[str, Any] | None:
    memory: Memory = info.context["memory"]
    found = await run_in_threadpool(_page, memory, [id], None, None, 1)
    return found[0] if found else None


def _page(
    memory: Memory, ids: list[str] | None, email: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    with memory.sessions() as session:
        rows = store.customers_page(session, ids=ids, email=email, after=after, limit=limit)
        return [_node(memory, row, store.customer_rows(session, row.customer_id)) for row in rows]


def _node(memory: Memory, row: Any, held: store.CustomerRows) -> dict[str, Any]:
    return {
        "id": row.customer_id,
        "name": row.name,
        "email": row.email,
        "billingId": row.billing_id,
        "metadata": row.metadata,
        "isArchived": row.is_archived,
        "subscriptions": [_subscription(s) for s in held.subscriptions],
        "usage": [
            {
                "featureId": u.feature_id,
                "resourceId": u.resource_id or None,
                "currentUsage": u.current_usage,
                "periodStart": u.period_start,
                "periodEnd": u.period_end,
            }
            for u in held.usage
        ],
        "_view": memory.view_of(row.customer_id, held),
        "_features": memory.features(),
    }


def _subscription(row: Any) -> dict[str, Any]:
    return {
        "id": row.subscription_id,
        "status": row.status,
        "resourceId": row.resource_id or None,
        "planId": row.plan_id,
        "planName": row.plan_name,
        "billingId": row.billing_id,
        "billingPeriod": row.billing_period,
        "startDate": row.start_date,
        "endDate": row.end_date,
        "cancellationDate": row.cancellation_date,
        "trialEndDate": row.trial_end_date,
        "currentBillingPeriodStart": row.current_period_start,
        "currentBillingPeriodEnd": row.current_period_end,
        "addons": [{**a, "quantity": a.get("quantity") or 1} for a in row.addons],
        "metadata": row.metadata,
    }


@customer_type.field("entitlements")
def _entitlements(
    node: dict[str, Any],
    info: Info,
    resourceId: str | None = None,  # noqa: N803
) -> list[dict[str, Any]]:
    now = info.context["now"]()
    answers = decide_all(node["_view"], node["_features"], resourceId or None, now)
    return [
        {
            "featureId": a["feature"]["id"],
            "featureName": a["feature"]["displayName"],
            "featureType": a["feature"]["featureType"],
            "hasSoftLimit": bool(a.get("hasSoftLimit")),
            "enumValues": a.get("enumValues"),
            **{k: a.get(k) for k in _DECIDED},
        }
        for a in answers
    ]


_DECIDED = (
    "isGranted",
    "accessDeniedReason",
    "currentUsage",
    "usageLimit",
    "hasUnlimitedUsage",
    "resetPeriod",
    "usagePeriodStart",
    "usagePeriodEnd",
    "validUntil",
)


def graphql_app(*, debug: bool = False) -> GraphQL:
    """The ASGI app: POST runs a query (there are no mutations), GET shows GraphiQL."""
    sdl = resources.files("tollgate.replica").joinpath("schema.graphql").read_text()
    schema = make_executable_schema(sdl, query, customer_type, datetime_scalar, json_scalar)
    return GraphQL(
        schema,
        debug=debug,
        explorer=ExplorerGraphiQL(title="Tollgate replica"),
        context_value=lambda request, _data=None: request.app.state.graphql_context,
    )
