"""KPIs per business line from events; yellow opens a check, red pauses the line until ops resume it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Stage
from tuangou.app import create_app
from tuangou.core.config import Settings
from tuangou.core.db import Database, UnitOfWork
from tuangou.core.errors import Conflict
from tuangou.core.migrate import upgrade
from tuangou.monitoring import service


def _store(stage: Stage, merchant: dict[str, str], category: str, address: str) -> int:
    r = stage.client.post("/api/v1/stores", headers=merchant, json={"name": "S", "category": category,
                                                                      "address": address})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _refresh(stage: Stage) -> dict[str, int]:
    stage.clock.advance(timedelta(seconds=5))  # past the settle delay
    r = stage.client.post("/api/v1/kpi/refresh", headers=stage.ops)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _lines(stage: Stage) -> dict[str, dict]:
    r = stage.client.get("/api/v1/kpi/lines", headers=stage.ops)
    assert r.status_code == 200, r.text
    return {f"{x['category']}/{x['city']}": x for x in r.json()["items"]}


def _two_lines(stage: Stage) -> tuple[int, int, dict[str, str]]:
    _, m = stage.merchant()
    noodles = stage.deal(m, _store(stage, m, "catering", "Chaoyang, Beijing"), price_cents=1000)
    cakes = stage.deal(m, _store(stage, m, "bakery", "Xuhui, Shanghai"), price_cents=1000)
    for deal in (noodles, noodles, noodles, cakes, cakes, cakes):
        stage.paid_order(stage.buyer(), deal)
    return noodles, cakes, m


def test_yellow_line_opens_a_check_and_red_line_pauses_until_resumed(any_stage: Stage) -> None:
    # given two lines of three paid ¥10 orders each; targets: ¥11.5 (13 % short) and ¥25 (60 % short)
    noodles, cakes, m = _two_lines(any_stage)
    r = any_stage.client.put("/api/v1/monitoring-policy", headers=any_stage.ops, json={
        "changes": {"min_paid_orders": 3, "line_targets": {"catering/Beijing": {"average_order_value_cents": 1150},
                                     "bakery/Shanghai": {"average_order_value_cents": 2500}}},
        "reason": "Q4 targets"})
    assert r.status_code == 200, r.text

    # when the KPI job folds the events and judges the lines
    assert _refresh(any_stage)["transitions"] == 2

    # then catering/Beijing is yellow with a check task, bakery/Shanghai red and paused
    lines = _lines(any_stage)
    assert lines["catering/Beijing"]["level"] == "yellow" and not lines["catering/Beijing"]["paused"]
    assert lines["catering/Beijing"]["kpis"]["average_order_value_cents"] == 1000
    assert lines["bakery/Shanghai"]["level"] == "red" and lines["bakery/Shanghai"]["paused"]
    assert lines["bakery/Shanghai"]["deviations"]["average_order_value_cents"] == 60.0
    tasks = any_stage.client.get("/api/v1/kpi/check-tasks", headers=any_stage.ops).json()["items"]
    assert {(t["category"], t["kpi"]) for t in tasks} == {("catering", "average_order_value_cents"),
                                                           ("bakery", "average_order_value_cents")}
    done = any_stage.client.post(f"/api/v1/kpi/check-tasks/{tasks[0]['id']}/done", headers=any_stage.ops,
                                 json={"reason": "price mix, not a problem"})
    assert done.status_code == 200 and done.json()["status"] == "done"
    inbox = any_stage.client.get("/api/v1/inbox", headers=any_stage.ops).json()["items"]
    assert {"kpi_check", "kpi_escalation", "line_paused"} <= {i["kind"] for i in inbox}

    # and no new order in the paused line (the participant the order path calls), while the other line sells
    uow = UnitOfWork(any_stage.db, any_stage.clock)
    with uow, pytest.raises(Conflict) as refused:
        service.refuse_if_line_paused(uow, cakes)
    assert refused.value.code == "business_line_paused"
    with uow:
        service.refuse_if_line_paused(uow, noodles)

    # when ops resume it with a reason, it sells again, and the next tick does not pause it again
    r = any_stage.client.post("/api/v1/kpi/lines/bakery/Shanghai/resume", headers=any_stage.ops,
                              json={"reason": "promotion ended; price mix explains it"})
    assert r.status_code == 200 and r.json()["paused"] is False, r.text
    with uow:
        service.refuse_if_line_paused(uow, cakes)
    _refresh(any_stage)
    assert _lines(any_stage)["bakery/Shanghai"]["paused"] is False
    again = any_stage.client.post("/api/v1/kpi/lines/bakery/Shanghai/resume", headers=any_stage.ops,
                                  json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "line_not_paused"
    history = any_stage.client.get("/api/v1/kpi/lines/bakery/Shanghai/transitions", headers=any_stage.ops).json()
    assert [(t["from"], t["to"], t["actions"]) for t in history["items"]] == [
        ("green", "red", ["open_check", "escalate", "pause"]), ("red", "red", ["resume"])]
    assert history["items"][1]["reason"] == "promotion ended; price mix explains it"


def test_events_count_once_however_often_the_job_runs(stage: Stage) -> None:
    # given six paid orders
    _two_lines(stage)
    # when the job runs, then again, then twice more
    uow = UnitOfWork(stage.db, stage.clock)
    stage.tick("orders")  # the orders announce their events (the first job of a tick)
    assert service.consume_events(uow) > 0
    assert service.consume_events(uow) == 0
    stage.tick("monitoring")
    # then each order counts once, per line, per merchant and platform-wide
    lines = _lines(stage)
    assert lines["catering/Beijing"]["tally"]["paid"] == 3 and lines["bakery/Shanghai"]["tally"]["paid"] == 3
    assert lines["catering/Beijing"]["tally"]["placed"] == 3
    metrics = stage.client.get("/metrics").text
    assert "tuangou_paid_total 6.0" in metrics
    assert 'tuangou_http_request_duration_seconds_count{method="POST",route="/api/v1/orders",status="201"} 6.0' \
        in metrics
    assert "tuangou_outbox_backlog" in metrics and "tuangou_job_duration_seconds" in metrics


def test_a_merchant_sees_its_own_kpis_only(stage: Stage) -> None:
    mid, m = stage.merchant()
    stage.paid_order(stage.buyer(), stage.deal(m, stage.store(m)))
    _refresh(stage)
    mine = stage.client.get(f"/api/v1/kpi/merchants/{mid}", headers=m)
    assert mine.status_code == 200 and mine.json()["tally"]["paid"] == 1
    _, other = stage.merchant()
    assert stage.client.get(f"/api/v1/kpi/merchants/{mid}", headers=other).status_code == 403


def test_policy_changes_are_validated(stage: Stage) -> None:
    r = stage.client.put("/api/v1/monitoring-policy", headers=stage.ops,
                         json={"changes": {"targets": {"happiness": 1}}, "reason": "x"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_policy"
    r = stage.client.put("/api/v1/monitoring-policy", headers=stage.ops,
                         json={"changes": {"yellow_percent": 40, "orange_percent": 30}, "reason": "x"})
    assert r.status_code == 422


def test_readyz_checks_migrations_and_the_worker(tmp_path, clock, gateway) -> None:
    # given a migrated database and no worker yet
    url = f"sqlite:///{tmp_path}/ready.db"
    upgrade(url)
    db = Database(url)
    app = create_app(Settings(database_url=url, secret_key="t"), clock=clock, db=db, gateway=gateway)
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["worker"]["ok"] is False
        assert r.json()["checks"]["migrations"]["ok"] is True
        # when the worker ticks once
        from tuangou.core.jobs import run_all
        run_all(app.state.job_context, ["monitoring"])
        # then the service is ready, and the process check never touches the database
        r = client.get("/readyz", headers={"x-request-id": "probe-1"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "probe-1"
        assert client.get("/healthz").json() == {"status": "ok"}
    db.dispose()


def test_an_event_committed_late_under_a_lower_id_is_not_skipped(any_db: Database, clock) -> None:
    # given an event inserted by a transaction that has not committed yet (PostgreSQL hands out its id
    # now) and a later event, backdated like the orders' announced events, that is committed
    from sqlalchemy import insert

    from tuangou.core.outbox import OutboxEvent, event_row
    paid = event_row("OrderPaid", {"order_id": 1, "amount_cents": 990}, clock.now() - timedelta(hours=1))
    later = event_row("OrderPaid", {"order_id": 2, "amount_cents": 990}, clock.now() - timedelta(hours=1))
    uow = UnitOfWork(any_db, clock)
    if any_db.url.startswith("postgresql"):
        slow = any_db.engine.connect()
        slow.execute(insert(OutboxEvent), [paid])  # id n, not committed
        with any_db.engine.begin() as conn:
            conn.execute(insert(OutboxEvent), [later])  # id n + 1, committed
        # when the KPI job runs meanwhile, then after the slow transaction commits
        assert service.consume_events(uow) == 0  # the horizon waits for the insert in flight
        slow.commit()
        slow.close()
    else:  # SQLite: one writer at a time, so ids are committed in order
        with any_db.engine.begin() as conn:
            conn.execute(insert(OutboxEvent), [paid, later])
    # then both count, once
    assert service.consume_events(uow) == 2 and service.consume_events(uow) == 0
    with uow:
        assert uow.session.get(service.KpiTally, ("all", "*")).paid == 2  # type: ignore[union-attr]
