"""The workbench in a real browser (Playwright driving Debian's chromium) against the real
platform: all five services as processes on the suite's broker and store, customers published
as upstream systems publish them. Each screen's main path, the role limits, the language
switch; a screenshot of every screen under the run's output folder
(`.local/test-output/workbench/`, or `$HVC_TEST_OUTPUT/workbench/`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import datetime as dt
import io
import json
import os
import random
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from hvc.common.codec import codec_for
from hvc.devinfra import chaos, local
from hvc.events.v1 import common_pb2, customers_pb2
from hvc.gateway.auth import mint
from hvc.gateway.settings import GatewaySettings

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUT = Path(os.environ.get("HVC_TEST_OUTPUT") or local.project_root() / ".local" / "test-output")
SHOTS = OUT / "workbench"
CRM = "crm.customers.v1"


@dataclass(frozen=True)
class World:
    infra: Any
    base: str  # the gateway's URL
    tag: str
    diamond: str  # a DIAMOND customer (plan) of `manager`, with a port-out warning
    other: str  # a customer of `other_manager`
    msisdn: str
    manager: str
    other_manager: str


def _customer_events(
    cid: str,
    msisdn: str,
    name: str,
    manager: str,
    plan: bool,
    group: str | None = None,
    key_person: bool = False,
) -> list[Any]:
    now = dt.datetime.now(dt.UTC)
    t = codec_for(CRM).message_type

    def event(kind: str, when: dt.datetime, payload: Any) -> Any:
        m = t(event_id=f"{cid}-{kind}", customer_id=cid)
        m.occurred_at.FromDatetime(when)
        getattr(m, kind).CopyFrom(payload)
        return m

    profile = customers_pb2.CustomerUpserted(
        msisdns=[msisdn],
        name=name,
        birthday=common_pb2.Date(year=1980, month=5, day=6),
        joined_on=common_pb2.Date(year=2015, month=3, day=1),
        manager_id=manager,
        is_key_person=key_person,
    )
    if group:
        profile.group_id = group
    out = [event("customer_upserted", now - dt.timedelta(minutes=3), profile)]
    if plan:
        p = customers_pb2.PlanChanged(plan_id="GT588", monthly_fee_fen=58_800, gotone=True)
        p.effective_from.FromDatetime(now - dt.timedelta(days=1))
        out.append(event("plan_changed", now - dt.timedelta(minutes=2), p))
        ask = customers_pb2.PortOutRequested(kind=customers_pb2.PortOutRequested.AUTH_CODE)
        out.append(event("port_out_requested", now - dt.timedelta(minutes=1), ask))
    return out


async def _publish(kafka: str, events: list[Any], topic: str = CRM) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for m in events:
            key = m.customer_id or m.group_upserted.group_id
            await producer.send_and_wait(topic, codec_for(topic).serialize(m), key=key.encode())
    finally:
        await producer.stop()


def _get(url: str, token: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback only
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _until(what: str, check: Callable[[], bool], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


@pytest.fixture(scope="module")
def world(infra) -> Iterator[World]:
    inst = local.attached("workbench", int(os.environ.get("HVC_WORKBENCH_HTTP_PORT", "18280")))
    env = {"KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap, "MONGO_URI": infra.mongo_uri}
    asyncio.run(chaos.groups_at_end(infra.kafka_bootstrap))
    tag = uuid.uuid4().hex[:6].upper()
    msisdn = "139" + "".join(random.choice("0123456789") for _ in range(8))
    w = World(
        infra=infra,
        base=f"http://127.0.0.1:{inst.http_port('gateway')}",
        tag=tag,
        diamond=f"WB{tag}A",
        other=f"WB{tag}B",
        msisdn=msisdn,
        manager=f"M{tag}",
        other_manager=f"N{tag}",
    )
    try:
        for s in local.SERVICES:
            local.start_service(inst, s, env_overrides=env)
        for s in local.SERVICES:
            local.wait_ready(inst, s, timeout_s=180)
        events = _customer_events(w.diamond, msisdn, "张三丰", w.manager, plan=True)
        other_number = "138" + msisdn[3:]
        events += _customer_events(w.other, other_number, "李四", w.other_manager, plan=False)
        asyncio.run(_publish(infra.kafka_bootstrap, events))
        sup = token("supervisor", "S-test")
        mgr = token("manager", "m-test", manager=w.manager)

        def found() -> bool:
            status, body = _get(f"{w.base}/v1/customers?msisdn={msisdn}", sup)
            return status == 200 and [c["customer_id"] for c in body["items"]] == [w.diamond]

        def diamond() -> bool:
            status, body = _get(f"{w.base}/v1/customers/{w.diamond}", sup)
            return status == 200 and body["tier"]["effective_tier"] == "DIAMOND"

        def case() -> bool:
            status, body = _get(f"{w.base}/v1/worklist/cases", mgr)
            return status == 200 and [c["customer_id"] for c in body["items"]] == [w.diamond]

        _until("the customer is found by number", found)
        _until("the customer is DIAMOND", diamond)
        _until("the port-out warning is a case of its manager", case)
        yield w
    finally:
        for s in local.SERVICES:
            local.stop(inst, s)


def token(role: str, sub: str, manager: str | None = None) -> str:
    return mint(GatewaySettings(dev_mode=True), role=role, sub=sub, manager_id=manager)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "make bootstrap installs Debian's chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on(
        "console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None
    )
    yield pg
    context.close()
    assert errors == [], errors  # no script error, no resource the policy refused


def sign_in(pg: Any, w: World, role: str, sub: str, manager: str | None = None) -> None:
    pg.goto(f"{w.base}/app/#/signin")
    pg.select_option("#dev-signin select[name=role]", role)
    pg.fill("#dev-signin input[name=sub]", sub)
    if manager:
        pg.fill("#dev-signin input[name=manager_id]", manager)
    pg.click("#dev-signin button[type=submit]")
    pg.wait_for_selector(f"#main[data-ready={'work' if role == 'manager' else 'find'}]")


def shot(pg: Any, name: str) -> None:
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_agent_finds_a_caller_by_phone_and_sees_the_360(world: World, page: Any) -> None:
    sign_in(page, world, "agent", "A-test")
    shot(page, "01-find")
    page.fill("#find input[name=q]", world.msisdn)
    page.press("#find input[name=q]", "Enter")
    row = page.locator("#results tbody tr")
    row.first.wait_for()
    assert row.count() == 1
    assert "张三丰" in row.inner_text() and world.msisdn in row.inner_text()  # an agent: unmasked
    assert "钻石卡" in row.inner_text()
    shot(page, "02-find-results")
    row.press("Enter")  # the keyboard opens it
    page.wait_for_selector("#main[data-ready=customer]")
    title = page.inner_text("#customer-title")
    assert "张三丰" in title and "钻石卡" in title
    explained = page.inner_text("#tier-explain")
    assert "套餐定级" in explained  # why: the GoTone plan
    assert "套餐 GT588" in explained and "月费 588.00 元" in explained  # worded in Chinese
    assert "fen" not in explained
    assert "机场贵宾厅" in page.inner_text("#benefits")
    tasks = page.inner_text("#tasks")
    assert "携号转网查询" in tasks and "授权码申请" in tasks  # the warning, its evidence worded
    assert "1980-05-06" in page.inner_text("#h-profile >> xpath=..")
    shot(page, "03-customer-360")


def test_a_manager_logs_a_contact_and_closes_the_case(world: World, page: Any) -> None:
    sign_in(page, world, "manager", "m-test", world.manager)
    case = page.locator(f"section[data-customer={world.diamond}]")
    case.wait_for()
    assert "携号转网查询" in case.inner_text() and "钻石卡" in case.inner_text()
    shot(page, "04-worklist")
    contact = case.locator("form[data-form=contact]")
    contact.locator("select[name=channel]").select_option("PHONE")
    contact.locator("input[name=content]").fill("电话回访 客户同意续约")
    contact.locator("input[name=outcome]").fill("同意")
    contact.locator("button").click()
    page.get_by_text("接触已记录").wait_for()
    close = case.locator("form[data-form=close]").first
    close.locator("select[name=outcome]").select_option("RETAINED")
    close.locator("button").click()
    page.get_by_text("任务已关闭").wait_for()
    page.wait_for_selector(f"section[data-customer={world.diamond}]", state="detached")
    # Its own figures this month: the close counted by the warnings pipeline (from the
    # TaskClosed it publishes), at its next checkpoint.
    deadline = time.monotonic() + 60
    while "1 成功" not in page.inner_text("#my-retention"):
        assert time.monotonic() < deadline, page.inner_text("#my-retention")
        time.sleep(1)
        page.reload()
        page.wait_for_selector("#main[data-ready=work] #my-retention")
    shot(page, "05-worklist-after-close")
    # The quarter's callback (回访) of the DIAMOND customer, planned by the warnings pipeline
    # on this manager's list: recorded once, into the contact history.
    local = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    callback = f"CB-{local.year}Q{(local.month - 1) // 3 + 1}-{world.diamond}"
    line = page.locator(f"[data-callback='{callback}']")
    deadline = time.monotonic() + 60
    while not line.count():
        assert time.monotonic() < deadline, page.inner_text("#callbacks")
        time.sleep(1)
        page.reload()
        page.wait_for_selector("#main[data-ready=work] #callbacks")
    assert "钻石卡/白金卡客户" in line.inner_text()
    line.locator("select[name=outcome]").select_option("REACHED")
    line.locator("input[name=notes]").fill("季度回访 客户满意")
    line.locator("button").click()
    page.get_by_text("回访已记录").wait_for()
    line.wait_for(state="detached")
    page.goto(f"{world.base}/app/#/customer/{world.diamond}")
    page.wait_for_selector("#main[data-ready=customer]")
    history = page.inner_text("#contacts")
    assert "电话回访 客户同意续约" in history and "电话" in history
    assert "季度回访 客户满意" in history


def test_an_agent_files_a_complaint_moves_it_and_records_the_callback(
    world: World, page: Any
) -> None:
    sign_in(page, world, "agent", "A-test")
    page.goto(f"{world.base}/app/#/customer/{world.diamond}")
    page.wait_for_selector("#main[data-ready=customer]")
    page.click("#file-for")
    page.wait_for_selector("#main[data-ready=desk]")
    form = page.locator("#file-complaint")
    assert form.locator("input[name=customer_id]").input_value() == world.diamond
    form.locator("select[name=channel]").select_option("HOTLINE_10086")
    form.locator("select[name=category]").select_option("NETWORK")
    form.locator("textarea[name=text]").fill("家里信号差、经常掉线")
    shot(page, "06-desk")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#complaint-title", timeout=60_000)  # filed from its topic
    assert "网络质量" in page.inner_text("#complaint-title")
    assert page.inner_text("#complaint-status") == "已受理"
    # The VIP line (one call to the warnings service, which follows the complaints service's
    # changes) answers that the caller has a complaint open, and later that none is.
    ivr = token("integration", "ivr-test")
    line: dict[str, Any] = {}

    def vip_line(open_: bool) -> Callable[[], bool]:
        def check() -> bool:
            status, body = _get(f"{world.base}/v1/callers/{world.msisdn}", ivr)
            line.update(body)
            return status == 200 and body.get("open_complaint") is open_

        return check

    _until("the VIP line answers that a complaint is open", vip_line(True), 60)
    assert (line["customer_id"], line["priority_queue"]) == (world.diamond, "P1")
    assert [c["status"] for c in line["open_complaints"]] == ["RECEIVED"]
    assert "complaints_error" not in line
    for to, shown in (("ACKNOWLEDGED", "已响应"), ("RESOLVED", "已解决")):
        page.select_option("#transition select[name=to]", to)
        page.click("#transition button[type=submit]")
        page.wait_for_selector(f"#complaint-status:text-is('{shown}')", timeout=30_000)
    page.select_option("#transition select[name=to]", "CALLBACK_DONE")
    page.select_option("#transition select[name=satisfaction]", "5")
    page.click("#transition button[type=submit]")
    page.wait_for_selector("#complaint-status:text-is('已回访')", timeout=30_000)
    assert "5" in page.inner_text("#main dl.facts")
    shot(page, "07-complaint")
    _until("the VIP line answers that no complaint is open", vip_line(False), 60)
    assert line["open_complaints"] == []


def test_a_supervisor_sees_the_board_and_exports_a_report(world: World, page: Any) -> None:
    sign_in(page, world, "supervisor", "S-test")
    page.goto(f"{world.base}/app/#/board")
    page.wait_for_selector("#main[data-ready=board]")
    assert page.locator("#board-breached").count() == 1
    shot(page, "08-sla-board")
    page.goto(f"{world.base}/app/#/reports?name=tiers")
    page.wait_for_selector("#main[data-ready=reports]")
    assert page.locator("#chart .bar").count() == 12  # a bar per month of the last year
    with page.expect_download() as got:
        page.click("#export")
    text = Path(got.value.path()).read_text("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["月份", "钻石卡", "白金卡", "金卡", "银卡", "贵宾卡", "定级变动"]
    this_month = rows[-1]
    assert len(rows) == 13 and int(this_month[1]) >= 1  # the plan's DIAMOND, at least
    shot(page, "09-reports")


def test_a_supervisor_simulates_a_candidate_rule_set(world: World, page: Any) -> None:
    sign_in(page, world, "supervisor", "S-test")
    page.goto(f"{world.base}/app/#/simulate")
    page.wait_for_selector("#main[data-ready=simulate]")
    candidate = json.loads(page.input_value("#simulation textarea[name=ruleset]"))
    assert candidate["thresholds"]["DIAMOND"] == 4000  # the rule set in force, to edit
    candidate["thresholds"]["DIAMOND"] = 3000
    page.fill("#simulation textarea[name=ruleset]", json.dumps(candidate))
    page.click("#simulation button[type=submit]")
    page.wait_for_selector("#simulation-result table", timeout=60_000)
    header = page.inner_text("#simulation-result table thead")
    assert "钻石卡" in header and "普通客户" in header
    assert "位客户" in page.inner_text("#simulation-result h2")
    shot(page, "10-simulation")


def test_a_manager_cannot_open_a_customer_outside_the_portfolio(world: World, page: Any) -> None:
    sign_in(page, world, "manager", "n-test", world.other_manager)
    nav = page.inner_text("#nav")
    assert "我的工作台" in nav and "投诉受理" not in nav and "规则模拟" not in nav
    page.goto(f"{world.base}/app/#/customer/{world.diamond}")
    page.wait_for_selector("#main[data-ready=customer]")
    assert page.inner_text("#main h2") == "无权查看"
    assert "portfolio" in page.inner_text("#error-detail")
    assert "张三丰" not in page.inner_text("#main")
    page.goto(f"{world.base}/app/#/find?q={world.msisdn}")
    page.wait_for_selector("#main[data-ready=find]")
    assert "张三丰" not in page.inner_text("#main")  # not found: not in its portfolio
    shot(page, "11-role-limit")


def test_the_workbench_switches_to_english(world: World, page: Any) -> None:
    sign_in(page, world, "agent", "A-test")
    page.goto(f"{world.base}/app/#/customer/{world.diamond}")
    page.wait_for_selector("#main[data-ready=customer]")
    page.click("#lang")
    page.wait_for_selector("#nav >> text=Find customer")
    page.wait_for_selector("#main[data-ready=customer]")
    assert "Diamond" in page.inner_text("#customer-title")
    assert "Airport lounge" in page.inner_text("#benefits")
    assert "GoTone plan" in page.inner_text("#tier-explain")
    assert "plan GT588 at 588.00 yuan/month" in page.inner_text("#tier-explain")
    shot(page, "12-customer-360-en")
    page.click("#lang")  # back to Chinese for whoever signs in next
    page.wait_for_selector("#nav >> text=查找客户")


def _run(coro: Any) -> Any:
    """A coroutine run to its end on a thread of its own (the browser's sync API holds an
    event loop on this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_groups_360_through_the_gateway(world: World) -> None:
    """A group published by the CRM with three members (a key person of the world's manager
    with a port-out warning, one with an open complaint): its file, its members' open tasks
    and complaints, through the gateway; its manager sees it, another manager does not."""
    from hvc.events.v1 import care_pb2

    gid = f"GRP{world.tag}"
    now = dt.datetime.now(dt.UTC)
    group = customers_pb2.CustomerEvent(event_id=f"{gid}-upserted")
    group.occurred_at.FromDatetime(now - dt.timedelta(minutes=5))
    g = group.group_upserted
    g.group_id, g.name, g.sector, g.handsets = gid, "江城供电局", "power", 120
    key, plain, complainer = (f"{gid}K", f"{gid}P", f"{gid}C")
    numbers = ["137" + "".join(random.choice("0123456789") for _ in range(8)) for _ in range(3)]
    events = [group]
    events += _customer_events(key, numbers[0], "赵一", world.manager, True, gid, True)
    events += _customer_events(plain, numbers[1], "钱二", world.manager, False, gid)
    events += _customer_events(complainer, numbers[2], "孙三", world.other_manager, False, gid)
    _run(_publish(world.infra.kafka_bootstrap, events))
    filed = care_pb2.ComplaintEvent(event_id=f"{gid}-filed", customer_id=complainer)
    filed.occurred_at.FromDatetime(now)
    f = filed.complaint_filed
    f.complaint_id, f.channel, f.category = (
        f"K{gid}",
        care_pb2.ComplaintFiled.HOTLINE_10086,
        "NETWORK",
    )
    f.filed_at.FromDatetime(now)
    _run(_publish(world.infra.kafka_bootstrap, [filed], "care.complaints.v1"))

    mgr = token("manager", "m-test", manager=world.manager)
    url = f"{world.base}/v1/groups/{gid}"
    seen: dict[str, Any] = {}

    def complete() -> bool:
        status, body = _get(url, mgr)
        seen.update(body)
        return (
            status == 200
            and body["group"]["members"] == 3
            and bool(body["open_tasks"])
            and bool(body["open_complaints"])
        )

    _until("the group's 360 has its members, a task and a complaint", complete, 120)
    file = seen["group"]
    assert (file["class"], file["name"], file["manager_id"], file["complete"]) == (
        "A",  # power: a key sector
        "江城供电局",
        world.manager,  # its key person's
        True,
    )
    assert seen["members"][0]["customer_id"] == key  # key persons first
    assert {t["customer_id"] for t in seen["open_tasks"]} == {key}
    assert [c["customer_id"] for c in seen["open_complaints"]] == [complainer]
    other = token("manager", "m-other", manager=world.other_manager)
    assert _get(url, other)[0] == 403
    # A class-A group: its quarter's visit (拜访) is on its manager's list.
    visits: list[Any] = []

    def visit() -> bool:
        status, body = _get(f"{world.base}/v1/worklist/callbacks?status=all", mgr)
        visits[:] = [c for c in body.get("items", []) if c["customer_id"] == gid]
        return status == 200 and bool(visits)

    _until("the group's visit is on its manager's list", visit, 60)
    assert [(v["kind"], v["status"]) for v in visits] == [("VISIT", "OPEN")]
    status, body = _get(
        f"{world.base}/v1/reports/group-indicators?period={now:%Y-%m}",
        token("supervisor", "S-test"),
    )
    assert status == 200 and body["filing_rate"]["groups"] >= 1
