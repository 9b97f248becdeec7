"""The operator's API (/v1): authenticated, authorised per role and per object, audited.

The gateway owns no business rules: it asks the services or publishes to their input topics,
and composes. Roles:
- customer: only its own customer id (no churn warnings, tasks or manager data);
- agent: any customer; complaints;
- manager: only customers in its portfolio and the groups it manages; its own worklist and
  tasks;
- supervisor, admin: everything, plus overrides, simulations, reports and the audit trail;
- integration: reads tiers, files complaints.

One module per resource (customers, groups, benefits, complaints, tasks, reporting), their shared
dependencies in `deps`, the request bodies in `models`, the services' typed clients in
`clients`; every route is audited by the router's route class (`audited`).
"""

from __future__ import annotations

from fastapi import APIRouter

from hvc.common.problems import problem_responses
from hvc.gateway.api import benefits, complaints, customers, groups, reporting, tasks
from hvc.gateway.api.deps import new_router


def make_router() -> APIRouter:
    router = new_router()
    for part in (customers, groups, benefits, complaints, tasks, reporting):
        router.include_router(part.router)
    api = APIRouter(
        redirect_slashes=False,
        prefix="/v1",
        tags=["hvc"],
        responses=problem_responses(400, 401, 403, 404, 405, 409, 413, 422, 429, 502, 503, 504),
    )
    api.include_router(router)
    return api
