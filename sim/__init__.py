"""Local Microsoft Graph simulator — a TEST DOUBLE, not Microsoft Graph or Entra ID.

Serves, over TLS on loopback, the slice of Microsoft Graph v1.0, the Entra token
endpoints (client credentials, managed identity), Log Analytics and a Teams Workflows
webhook that xtap-watch uses, for several simulated tenants loaded from a scenario, with
a control API for tests (policy changes that write audit events, faults, throttles,
latency, request logs). Start it with ``python -m sim`` or ``sim.testing.start_simulator``.
See ``sim/README.md``.
"""
