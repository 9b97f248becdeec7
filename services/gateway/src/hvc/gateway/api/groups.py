"""Group customers (集团客户): a group's 360, composed from the services that know each part."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Path, Query, Request

from hvc.common.problems import Problem
from hvc.gateway.api.deps import Gw, Who, allow, new_router, rid
from hvc.gateway.api.models import ID

router = new_router()
GroupId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID)]


@router.get("/groups/{group_id}")
async def group_360(
    group_id: GroupId,
    request: Request,
    who: Who,
    gw: Gw,
    members: Annotated[int, Query(ge=0, le=1000)] = 200,
) -> Any:
    """A group's 360: its file from tiering (class, sector, handsets, members with key persons
    first, key persons, manager, whether the file is complete and what it lacks), the open
    retention tasks of its members and of the group (warnings), and its listed members' open
    complaints (complaints). A manager sees the groups it manages."""
    allow(who, "agent", "manager", "supervisor", "admin")
    r = rid(request)
    file, tasks = await asyncio.gather(
        gw.tiering.group(group_id, members, r), gw.warnings.group_tasks(group_id, 200, r)
    )
    if who.role == "manager" and who.manager_id != file.get("manager_id"):
        raise Problem(403, "Forbidden", "not a group this manager manages")
    listed = [m["customer_id"] for m in file.get("member_list", [])]
    complaints = await gw.complaints.open_of_many(listed, r) if listed else {"items": []}
    return {
        "group": {k: v for k, v in file.items() if k != "member_list"},
        "members": file.get("member_list", []),
        "open_tasks": tasks.get("items", []),
        "open_tasks_total": tasks.get("total", 0),
        "open_complaints": complaints.get("items", []),
    }
