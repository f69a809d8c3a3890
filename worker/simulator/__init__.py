"""A Microsoft Graph and Entra login simulator, served over real HTTP(S).

Used by `meetreg demo`, the test suite and the benchmarks: it answers the registration
endpoints as Graph's reference says Graph does (including the undocumented conflict behaviours as
a setting), issues tokens to MSAL (client credentials, a managed identity's endpoint, the
device-code flow and refresh tokens for a signed-in user, whom `/me` then acts for), and
misbehaves on demand (latency,
a rate limit, 429/5xx, commits whose answer never arrives). Under `/v1.0` as under `/beta`
it serves calendar events and subscriptions to them, with Graph's validation handshake,
and sends change and lifecycle notifications to a webhook when told to. See `server` to
run it (and to notify), `state` to seed and inspect it, `control` to do so from another
process.
"""

from worker.simulator.app import SimulatorApp
from worker.simulator.config import ConflictMode, FaultConfig, RetryAfterStyle, SimulatorConfig
from worker.simulator.control import SimulatorControl
from worker.simulator.server import SimulatorServer
from worker.simulator.state import SimulatorState
from worker.simulator.tls import ssl_context
from worker.simulator.traffic import EarlyRetry

__all__ = [
    "ConflictMode",
    "EarlyRetry",
    "FaultConfig",
    "RetryAfterStyle",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorControl",
    "SimulatorServer",
    "SimulatorState",
    "ssl_context",
]
