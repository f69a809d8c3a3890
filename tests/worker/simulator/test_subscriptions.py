"""worker.simulator subscriptions and notifications: Graph's handshake, its rules on expiry
and the rest, renewal and deletion, and the POSTs it makes to a webhook."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sim_helpers import ORGANIZER, ORGANIZER_UPN, OTHER_USER, error_of, free_port, wait_until
from sim_receiver import HANDSHAKES

from worker import keys
from worker.graph.calendar import OLD_MAX_SUBSCRIPTION_MINUTES, CalendarApi
from worker.simulator import SimulatorConfig, SimulatorControl, SimulatorServer, ssl_context
from worker.simulator.server import _parser, config_from_args
from worker.simulator.timestamps import parse_time
from worker.simulator.webhooks import VALIDATION_FAILED

CLIENT_STATE = "a-secret-only-meetreg-and-graph-know"


def ahead(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscription_body(receiver, user: str = ORGANIZER, **fields):
    return {
        "changeType": "created,updated",
        "notificationUrl": f"{receiver.url}/graph/notifications",
        "lifecycleNotificationUrl": f"{receiver.url}/graph/lifecycle",
        "resource": keys.events_resource(user),
        "expirationDateTime": ahead(24 * 60),
        "clientState": CLIENT_STATE,
        **fields,
    }


@pytest.fixture
def ada(sim):
    sim.state.add_user(ORGANIZER, upn=ORGANIZER_UPN)
    return ORGANIZER


@pytest.fixture
def subscribe(graph, receiver, ada):
    """POST /v1.0/subscriptions for ada's events (fields override the body)."""

    def post(**fields) -> httpx.Response:
        return graph.v1("POST", "/subscriptions", json=subscription_body(receiver, **fields))

    return post


def test_a_subscription_is_made_once_both_urls_echo_the_validation_token(sim, receiver, subscribe):
    response = subscribe()

    assert response.status_code == 201, response.text
    made = response.json()
    assert made["@odata.context"] == f"{sim.graph_v1_url}/$metadata#subscriptions/$entity"
    assert made["resource"] == f"users/{ORGANIZER}/events"
    assert made["changeType"] == "created,updated"
    assert made["notificationUrl"] == f"{receiver.url}/graph/notifications"
    assert made["lifecycleNotificationUrl"] == f"{receiver.url}/graph/lifecycle"
    assert made["clientState"] == CLIENT_STATE
    assert made["applicationId"] == sim.client_id
    assert made["latestSupportedTlsVersion"] == "v1_2"
    assert made["creatorId"]
    assert made["expirationDateTime"].endswith("Z")
    handshakes = receiver.received
    assert [h.path for h in handshakes] == ["/graph/notifications", "/graph/lifecycle"]
    for handshake in handshakes:
        assert handshake.body == b""
        assert handshake.validation_token.startswith(
            "Validation: Testing client application reachability for subscription Request-Id: "
        )
    assert [s["id"] for s in sim.state.subscriptions()] == [made["id"]]
    assert [(d.kind, d.status) for d in sim.state.deliveries()] == [
        ("validation", 200),
        ("validation", 200),
    ]


@pytest.mark.parametrize("handshake", [h for h in HANDSHAKES if h != "echo"])
def test_a_url_that_fails_the_handshake_gets_no_subscription(sim, receiver, subscribe, handshake):
    receiver.handshake = handshake

    response = subscribe()

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["message"]) == ("ValidationError", VALIDATION_FAILED)
    assert sim.state.subscriptions() == []


@pytest.mark.slow
def test_a_handshake_answered_after_6_s_is_in_time(sim, receiver, subscribe):
    # Graph waits 10 s for the token; an HTTP client's usual 5 s default would refuse this.
    receiver.before_handshake = lambda: time.sleep(6)

    response = subscribe(lifecycleNotificationUrl=None)

    assert response.status_code == 201, response.text
    (handshake,) = sim.state.deliveries()
    assert (handshake.kind, handshake.status) == ("validation", 200)
    assert handshake.elapsed_s >= 6


def test_a_lifecycle_url_that_cannot_be_reached_fails_the_subscription(sim, subscribe):
    with httpx.Client() as probe:
        closed = f"http://127.0.0.1:{free_port()}/graph/lifecycle"
        with pytest.raises(httpx.ConnectError):
            probe.post(closed)

    response = subscribe(lifecycleNotificationUrl=closed)

    assert response.status_code == 400
    assert error_of(response)["code"] == "ValidationError"
    assert [d.error for d in sim.state.deliveries()] == [None, "ConnectError"]
    assert sim.state.subscriptions() == []


def test_the_simulator_keeps_serving_while_a_handshake_waits(sim, graph, receiver, subscribe):
    # The receiver calls Graph before it answers: a simulator blocked on the handshake
    # would never answer that call, and the subscription would fail on the timeout.
    lookups: list[int] = []
    receiver.before_handshake = lambda: lookups.append(
        graph.v1("GET", keys.user_path(ORGANIZER)).status_code
    )

    response = subscribe()

    assert response.status_code == 201
    assert lookups == [200, 200]


@pytest.mark.parametrize(
    "user", [ORGANIZER, ORGANIZER_UPN], ids=["object-id", "percent-encoded-upn"]
)
@pytest.mark.parametrize("leading_slash", ["", "/"])
def test_the_resource_names_the_user_by_id_or_upn_with_or_without_a_slash(
    sim, subscribe, user, leading_slash
):
    resource = leading_slash + keys.events_resource(user)

    response = subscribe(resource=resource)

    assert response.status_code == 201
    assert response.json()["resource"] == resource


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"changeType": "created,renamed"}, "changeType"),
        ({"changeType": ""}, "changeType"),
        ({"notificationUrl": "http://webhook.contoso.example/n"}, "https"),
        ({"lifecycleNotificationUrl": "ftp://127.0.0.1/l"}, "lifecycleNotificationUrl"),
        ({"clientState": "x" * 129}, "clientState"),
        ({"resource": f"users/{ORGANIZER}/messages"}, "messages"),
        ({"resource": "me/events"}, "me/events"),
    ],
)
def test_a_request_graph_would_refuse_is_400_invalid_request(
    sim, receiver, subscribe, fields, named
):
    response = subscribe(**fields)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "InvalidRequest"
    assert named in error["message"]
    assert receiver.received == []  # refused before any handshake


def test_a_client_state_of_128_characters_is_accepted(subscribe):
    assert subscribe(clientState="x" * 128).status_code == 201


def test_a_resource_naming_an_unknown_user_is_404(sim, receiver, subscribe):
    response = subscribe(resource=keys.events_resource("nobody@contoso.example"))

    assert response.status_code == 404
    assert receiver.received == []


@pytest.mark.parametrize(
    ("minutes", "status"),
    [(-5, 400), (10_080 + 2, 400), (10_080 - 2, 201)],
    ids=["past", "past-the-maximum", "within-the-maximum"],
)
def test_the_expiry_must_be_in_the_future_and_within_7_days(subscribe, minutes, status):
    expiry = ahead(minutes)

    response = subscribe(expirationDateTime=expiry)

    assert response.status_code == status
    if status == 400:
        error = error_of(response)
        assert error["code"] == "InvalidRequest"
        assert expiry in error["message"]


def test_an_older_maximum_is_a_setting_and_meetreg_falls_back_to_it(receiver):
    config = SimulatorConfig(max_subscription_minutes=OLD_MAX_SUBSCRIPTION_MINUTES)
    with SimulatorServer(config) as sim, httpx.Client(verify=ssl_context(sim.ca_path)) as http:
        sim.state.add_user(ORGANIZER, upn=ORGANIZER_UPN)
        http.headers["Authorization"] = f"Bearer {sim.fetch_token(http)}"
        api = CalendarApi(http, sim.graph_v1_url)
        now = datetime.now(UTC)

        made = api.create_subscription(
            ORGANIZER_UPN,
            notification_url=f"{receiver.url}/n",
            lifecycle_url=None,
            client_state=CLIENT_STATE,
            now=now,
        )
        renewed = api.renew_subscription(made.id, now=now)
        api.delete_subscription(made.id)
        statuses = [status for _, _, status in sim.state.requests]

    # The 7-day ask is refused, the 4,230-minute one taken, for creation and renewal alike.
    assert statuses[1:] == [400, 201, 400, 200, 204]
    assert made.expires_at <= now + timedelta(minutes=OLD_MAX_SUBSCRIPTION_MINUTES)
    assert renewed.id == made.id
    assert sim.state.subscriptions() == []


def test_patch_renews_the_expiry_within_the_same_limits(graph, subscribe):
    made = subscribe().json()
    path = keys.subscription_path(made["id"])
    later = ahead(3 * 24 * 60)

    renewed = graph.v1("PATCH", path, json={"expirationDateTime": later})
    too_far = graph.v1("PATCH", path, json={"expirationDateTime": ahead(10_080 + 2)})
    other_field = graph.v1("PATCH", path, json={"notificationUrl": "https://x.example/n"})

    assert renewed.status_code == 200
    assert parse_time(renewed.json()["expirationDateTime"]) == parse_time(later)
    assert renewed.json()["id"] == made["id"]
    assert too_far.status_code == 400
    assert other_field.status_code == 400
    got = graph.v1("GET", path).json()
    assert got["expirationDateTime"] == renewed.json()["expirationDateTime"]


def test_get_lists_and_delete_removes_a_subscription(sim, graph, subscribe):
    made = subscribe().json()
    path = keys.subscription_path(made["id"])

    listed = graph.v1("GET", "/subscriptions").json()["value"]
    one = graph.v1("GET", path)
    deleted = graph.v1("DELETE", path)

    assert [s["id"] for s in listed] == [made["id"]]
    assert one.json()["clientState"] == CLIENT_STATE
    assert deleted.status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        gone = graph.v1(method, path, json={"expirationDateTime": ahead(60)})
        assert gone.status_code == 404
        assert error_of(gone)["code"] == "ResourceNotFound"
    assert sim.state.subscriptions() == []


def test_a_subscription_graph_removes_is_gone(sim, graph, subscribe):
    made = subscribe().json()

    assert sim.state.remove_subscription(made["id"]) is True
    assert graph.v1("GET", keys.subscription_path(made["id"])).status_code == 404
    assert sim.state.remove_subscription(made["id"]) is False


def test_a_scripted_503_on_the_collection_makes_nothing(sim, receiver, subscribe):
    sim.state.script("subscriptions", [{"status": 503}])

    failed = subscribe()
    made = subscribe()

    assert failed.status_code == 503
    assert made.status_code == 201
    assert len(sim.state.subscriptions()) == 1
    assert len([r for r in receiver.received if r.validation_token]) == 2  # one pair only


def test_a_change_is_notified_with_graphs_payload(sim, receiver, subscribe, ada):
    made = subscribe(resource=keys.events_resource(ORGANIZER_UPN)).json()
    event = sim.state.add_event(ada)

    deliveries = sim.notify_event(ada, event["id"])

    (note,) = receiver.notifications()
    assert note.path == "/graph/notifications"
    assert note.headers["content-type"] == "application/json"
    resource = f"Users/{ORGANIZER}/Events/{event['id']}"  # the objectId, though a UPN subscribed
    assert note.json() == {
        "value": [
            {
                "subscriptionId": made["id"],
                "subscriptionExpirationDateTime": made["expirationDateTime"],
                "changeType": "created",
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": event["@odata.etag"],
                    "id": event["id"],
                },
                "clientState": CLIENT_STATE,
                "tenantId": sim.tenant_id,
            }
        ]
    }
    assert [(d.kind, d.url, d.status) for d in deliveries] == [
        ("change", made["notificationUrl"], 202)
    ]
    assert deliveries[0].elapsed_s < 3
    assert sim.state.deliveries()[-1] == deliveries[0]


def test_change_notifications_alternate_between_graphs_two_resource_forms(
    sim, receiver, subscribe, ada
):
    made = subscribe().json()
    event = sim.state.add_event(ada)

    for _ in range(3):
        sim.notify_event(ada, event["id"], "updated")

    items = [n.json()["value"][0] for n in receiver.notifications()]
    plain = f"Users/{ORGANIZER}/Events/{event['id']}"
    tenant = f"users/{ORGANIZER}@{sim.tenant_id}/events/{event['id']}"
    assert [item["resource"] for item in items] == [plain, tenant, plain]
    assert items[1]["resourceData"]["@odata.id"] == (
        f"Users/{ORGANIZER}@{sim.tenant_id}/Events/{event['id']}"
    )
    assert {item["resourceData"]["id"] for item in items} == {event["id"]}
    assert {item["subscriptionId"] for item in items} == {made["id"]}


@pytest.mark.parametrize("form", ["users", "users@tenant"])
def test_the_resource_form_can_be_fixed_in_the_state_or_over_the_control_api(
    sim, receiver, subscribe, ada, form
):
    subscribe()
    event = sim.state.add_event(ada)
    with SimulatorControl(sim.https_url, sim.ca_path) as control:
        control.set_resource_form(form)
        control.notify_event(ada, event["id"], "updated")
        control.notify_event(ada, event["id"], "updated")
        with pytest.raises(httpx.HTTPStatusError):
            control.set_resource_form("Users")

    user = ORGANIZER if form == "users" else f"{ORGANIZER}@{sim.tenant_id}"
    resources = {n.json()["value"][0]["resource"].lower() for n in receiver.notifications()}
    assert resources == {f"users/{user}/events/{event['id']}".lower()}
    assert sim.state.resource_form == form
    sim.state.reset()
    assert sim.state.resource_form == "alternate"  # the configured form again
    assert config_from_args(_parser().parse_args(["--resource-form", form])).resource_form == form


def test_only_subscriptions_to_that_user_and_change_type_are_notified(
    sim, graph, receiver, subscribe, ada
):
    sim.state.add_user(OTHER_USER)
    subscribe()  # created,updated
    subscribe(changeType="deleted", clientState=None)
    graph.v1(
        "POST", "/subscriptions", json=subscription_body(receiver, user=OTHER_USER)
    ).raise_for_status()
    event = sim.state.add_event(ada)

    updated = sim.notify_event(ORGANIZER_UPN, event["id"], "updated")
    sim.state.delete_event(ada, event["id"])
    deleted = sim.notify_event(ada, event["id"], "deleted")

    assert len(updated) == 1 and len(deleted) == 1
    updated_item, deleted_item = (n.json()["value"][0] for n in receiver.notifications())
    assert updated_item["changeType"] == "updated"
    assert deleted_item["changeType"] == "deleted"
    assert "clientState" not in deleted_item  # that subscription gave none
    assert "@odata.etag" not in deleted_item["resourceData"]  # nothing left to tag
    with pytest.raises(ValueError, match="no event"):
        sim.notify_event(ada, event["id"], "updated")


def test_a_slow_or_failing_webhook_shows_in_the_delivery(sim, receiver, subscribe, ada):
    subscribe()
    event = sim.state.add_event(ada)
    receiver.delay_s = 0.3
    receiver.status = 503

    (delivery,) = sim.notify_event(ada, event["id"])

    assert delivery.status == 503
    assert not delivery.acknowledged
    assert delivery.elapsed_s >= 0.3


@pytest.mark.parametrize("lifecycle_event", ["reauthorizationRequired", "missed"])
def test_a_lifecycle_event_goes_to_the_lifecycle_url(
    sim, graph, receiver, subscribe, lifecycle_event
):
    made = subscribe().json()

    (delivery,) = sim.notify_lifecycle(made["id"], lifecycle_event)

    (note,) = receiver.notifications()
    assert note.path == "/graph/lifecycle"
    assert note.json() == {
        "value": [
            {
                "subscriptionId": made["id"],
                "subscriptionExpirationDateTime": made["expirationDateTime"],
                "tenantId": sim.tenant_id,
                "clientState": CLIENT_STATE,
                "lifecycleEvent": lifecycle_event,
            }
        ]
    }
    assert (delivery.kind, delivery.status) == ("lifecycle", 202)
    assert graph.v1("GET", keys.subscription_path(made["id"])).status_code == 200


def test_subscription_removed_deletes_the_subscription_before_telling(
    sim, graph, receiver, subscribe
):
    made = subscribe().json()

    sim.notify_lifecycle(made["id"], "subscriptionRemoved")

    (note,) = receiver.notifications()
    assert note.json()["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert graph.v1("GET", keys.subscription_path(made["id"])).status_code == 404
    with pytest.raises(ValueError, match="no subscription"):
        sim.notify_lifecycle(made["id"], "missed")


def test_no_lifecycle_url_means_no_lifecycle_notification(sim, receiver, subscribe):
    made = subscribe(lifecycleNotificationUrl=None).json()

    assert sim.notify_lifecycle(made["id"], "reauthorizationRequired") == []
    assert receiver.notifications() == []
    with pytest.raises(ValueError, match="lifecycle_event"):
        sim.notify_lifecycle(made["id"], "renamed")


def test_notifications_can_be_sent_over_the_control_api(sim, receiver, subscribe, ada):
    made = subscribe().json()
    event = sim.state.add_event(ada)

    with SimulatorControl(sim.https_url, sim.ca_path) as control:
        listed = control.subscriptions()
        changed = control.notify_event(ada, event["id"], "updated")
        raw = control.deliver(f"{receiver.url}/graph/notifications", {"value": []})
        lifecycle = control.notify_lifecycle(made["id"], "subscriptionRemoved")
        recorded = control.deliveries()
        with pytest.raises(httpx.HTTPStatusError) as unknown:
            control.notify_event(ada, "AAMkADnothere=")

    assert [s["id"] for s in listed] == [made["id"]]
    assert [d["status"] for d in changed] == [202]
    assert raw["kind"] == "raw"
    assert [d["kind"] for d in lifecycle] == ["lifecycle"]
    assert [d["kind"] for d in recorded] == [
        "validation",
        "validation",
        "change",
        "raw",
        "lifecycle",
    ]
    assert unknown.value.response.status_code == 400
    assert sim.state.subscriptions() == []
    wait_until(lambda: len(receiver.notifications()) == 3)


def test_a_notification_answered_5xx_is_redelivered_until_acknowledged(
    sim, receiver, subscribe, ada
):
    subscribe()
    event = sim.state.add_event(ada)
    receiver.statuses.extend([503, 500])

    made = sim.notify_event(ada, event["id"], retries=3)

    assert [(d.attempt, d.status) for d in made] == [(1, 503), (2, 500), (3, 202)]
    first, *again = [n.json() for n in receiver.notifications()]
    assert again == [first, first]  # the same item each time, as Graph redelivers it
    assert [d.attempt for d in sim.state.deliveries() if d.kind == "change"] == [1, 2, 3]


def test_redelivery_can_be_asked_for_over_the_control_api(sim, receiver, subscribe, ada):
    made = subscribe().json()
    event = sim.state.add_event(ada)
    receiver.statuses.extend([503, 503, 502])

    with SimulatorControl(sim.https_url, sim.ca_path) as control:
        changed = control.notify_event(ada, event["id"], retries=1)
        raw = control.deliver(f"{receiver.url}/graph/notifications", {"value": []}, retries=1)
        lifecycle = control.notify_lifecycle(made["id"], "missed", retries=1)
        with pytest.raises(httpx.HTTPStatusError) as bad:
            control.deliver(receiver.url, {"value": []}, retries=-1)

    assert [(d["attempt"], d["status"]) for d in changed] == [(1, 503), (2, 503)]
    assert (raw["attempt"], raw["status"]) == (2, 202)
    assert [(d["attempt"], d["status"]) for d in lifecycle] == [(1, 202)]
    assert bad.value.response.status_code == 400
