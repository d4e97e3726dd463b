"""Azure Functions entry points (Python v2 programming model): triggers only.

Each function unpacks its binding and awaits the matching handler in
``shared.entrypoints.triggers``; all behaviour lives in ``shared/``. Schedules come from
app settings (``%XTAP_..._SCHEDULE%``) so operators can change them without a deploy.
"""

import os

import azure.functions as func

from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT, load_settings, under_functions_host
from shared.entrypoints import triggers
from shared.telemetry import configure_telemetry

# Application Insights via OpenTelemetry when APPLICATIONINSIGHTS_CONNECTION_STRING is set
# (a cheap no-op otherwise); always installs the log filter that redacts secrets.
configure_telemetry()

if under_functions_host(os.environ):
    # Under the Functions host: refuse to start on bad configuration, naming the setting,
    # instead of failing on the first trigger at 3 a.m.
    load_settings()

# ANONYMOUS at the function level: App Service Authentication (Entra) sits in front of
# the HTTP API and each handler checks the caller's app role itself.
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

STORAGE = "AzureWebJobsStorage"


@app.timer_trigger(arg_name="timer", schedule="%XTAP_SWEEP_SCHEDULE%", run_on_startup=False)
async def sweep_timer(timer: func.TimerRequest) -> None:
    await triggers.sweep_timer()


@app.timer_trigger(arg_name="timer", schedule="%XTAP_AUDIT_SCHEDULE%", run_on_startup=False)
async def audit_timer(timer: func.TimerRequest) -> None:
    await triggers.audit_timer()


@app.timer_trigger(arg_name="timer", schedule="%XTAP_PURGE_SCHEDULE%", run_on_startup=False)
async def purge_timer(timer: func.TimerRequest) -> None:
    await triggers.purge_timer()


@app.timer_trigger(arg_name="timer", schedule="%XTAP_HEARTBEAT_SCHEDULE%", run_on_startup=False)
async def heartbeat_timer(timer: func.TimerRequest) -> None:
    await triggers.heartbeat_timer()


@app.timer_trigger(arg_name="timer", schedule="%XTAP_WATCHDOG_SCHEDULE%", run_on_startup=False)
async def watchdog_timer(timer: func.TimerRequest) -> None:
    await triggers.watchdog_timer()


@app.queue_trigger(arg_name="msg", queue_name=QUEUE_CHECK_CLIENT, connection=STORAGE)
async def check_client(msg: func.QueueMessage) -> None:
    await triggers.check_client(msg.get_body().decode("utf-8"), msg.dequeue_count or 1)


@app.queue_trigger(arg_name="msg", queue_name=QUEUE_ALERTS, connection=STORAGE)
async def deliver_alert(msg: func.QueueMessage) -> None:
    await triggers.deliver_alert(msg.get_body().decode("utf-8"), msg.dequeue_count or 1)


from shared.entrypoints.bp_doctor import bp as doctor_bp  # noqa: E402
from shared.entrypoints.bp_guests import bp as guests_bp  # noqa: E402

app.register_functions(guests_bp)
app.register_functions(doctor_bp)

from shared.entrypoints.bp_runbooks import bp as runbooks_bp  # noqa: E402

app.register_functions(runbooks_bp)
