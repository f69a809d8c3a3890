"""Answers for Teams webinars under `/solutions/virtualEvents/webinars`, on either root.

    GET  /webinars, /webinars/getByUserRole(...), /webinars/getByUserIdAndRole(...)
    GET  /webinars/{id}, .../registrationConfiguration, .../registrationConfiguration/questions
    POST /webinars/{id}/publish, /webinars/{id}/cancel                  204
    POST /webinars/{id}/registrations    204 without a body for an application token,
                                         201 with the registration for a delegated one
    GET  /webinars/{id}/registrations[?$filter=email eq '...' | userId eq '...']
    GET  /webinars/{id}/registrations/{id}
    POST /webinars/{id}/registrations/{id}/cancel                       204

`graph_routes` routes, authenticates and faults the request first, as for any Graph call
(its fault and script key is the webinar id). The rules are `webinars`'; here they become
answers. A registrations list comes in pages of 100; `@odata.nextLink` is an absolute URL
on the same root carrying `$skiptoken`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from worker.simulator.errors import GraphFailure
from worker.simulator.paths import GraphRoute
from worker.simulator.responses import Reply
from worker.simulator.state import SimulatorState
from worker.simulator.webinars import Webinar, Webinars

PAGE_SIZE = 100
WEBINARS_PATH = "solutions/virtualEvents/webinars"


class WebinarRoutes:
    """Answers webinar requests from a SimulatorState."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def answer(
        self,
        method: str,
        route: GraphRoute,
        query: Mapping[str, str],
        payload: Mapping[str, Any],
        acting: str | None,
        base: str,
    ) -> Reply:
        """The answer to one authenticated request; `acting` is a delegated token's user
        (None: an application token). Raises GraphFailure."""
        call = self.state.webinar_call
        webinar_id = route.item_id
        context = f"{base}/$metadata#{WEBINARS_PATH}"
        match route.kind:
            case "webinars":
                found = call(lambda w: [x.to_graph() for x in _listed(w, route, acting)])
                return Reply(200, {"@odata.context": context, "value": found})
            case "webinar":
                webinar = call(lambda w: w.get(webinar_id).to_graph())
                return Reply(200, {"@odata.context": f"{context}/$entity", **webinar})
            case "webinar_configuration":
                configuration = call(lambda w: w.get(webinar_id).configuration_to_graph())
                context += f"('{webinar_id}')/registrationConfiguration/$entity"
                return Reply(200, {"@odata.context": context, **configuration})
            case "webinar_questions":
                questions = call(lambda w: [q.to_graph() for q in w.get(webinar_id).questions])
                context += f"('{webinar_id}')/registrationConfiguration/questions"
                return Reply(200, {"@odata.context": context, "value": questions})
            case "webinar_publish":
                call(lambda w: w.publish(webinar_id, acting))
                return Reply(204)
            case "webinar_cancel":
                call(lambda w: w.cancel(webinar_id, acting))
                return Reply(204)
            case "webinar_registration":
                one = call(lambda w: w.registration(webinar_id, route.sub_id).to_graph())
                context += f"('{webinar_id}')/registrations/$entity"
                return Reply(200, {"@odata.context": context, **one})
            case "webinar_registration_cancel":
                call(lambda w: w.cancel_registration(webinar_id, route.sub_id))
                return Reply(204)
        if method == "POST":
            made = call(lambda w: w.register(webinar_id, payload, acting)[0].to_graph())
            if acting is None:
                return Reply(204)  # an application is told nothing, not even the id
            context += f"('{webinar_id}')/registrations/$entity"
            return Reply(201, {"@odata.context": context, **made})
        return self._registrations(webinar_id, query, base)

    def _registrations(self, webinar_id: str, query: Mapping[str, str], base: str) -> Reply:
        """One page of a webinar's registrations (those the `$filter` matches)."""
        expression = query.get("$filter")
        token = query.get("$skiptoken", "0")
        if not token.isdigit():
            raise GraphFailure(400, "BadRequest", f"Invalid $skiptoken: {token!r}.")
        skip = int(token)
        found = self.state.webinar_call(
            lambda w: [r.to_graph() for r in w.registrations(webinar_id, expression)]
        )
        path = f"{WEBINARS_PATH}/{quote(webinar_id, safe='')}/registrations"
        page: dict[str, Any] = {
            "@odata.context": f"{base}/$metadata#{WEBINARS_PATH}('{webinar_id}')/registrations",
            "value": found[skip : skip + PAGE_SIZE],
        }
        if skip + PAGE_SIZE < len(found):
            rest = {"$filter": expression} if expression is not None else {}
            rest["$skiptoken"] = str(skip + PAGE_SIZE)
            # Spaces as %20: a client may pass the link on as it is.
            link = "&".join(f"{name}={quote(value, safe='')}" for name, value in rest.items())
            page["@odata.nextLink"] = f"{base}/{path}?{link}"
        return Reply(200, page)


def _listed(webinars: Webinars, route: GraphRoute, acting: str | None) -> list[Webinar]:
    """The webinars a collection request names: all, or those of a user in a role."""
    if not route.role:
        return webinars.every(acting)
    return webinars.with_role(route.user_id or None, route.role, acting)
