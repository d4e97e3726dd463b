"""Flex Consumption cost per month of xtap-watch, from measured figures (issue 16.7).

Not a measurement itself: it applies the plan's on-demand billing rule to the figures the
benchmarks print, so a buyer can check the arithmetic and put in their own prices.

Billing rule (Microsoft, "Estimating consumption-based costs", Flex Consumption, On
Demand): you pay for the memory *provisioned* on an instance (``instanceMemoryMB``,
2,048 MB in infra/) for as long as it is actively executing functions, in GB-seconds,
plus the number of executions, each minus a monthly free grant. Executions that run at
the same time on one instance share the instance's GB-seconds, which is why the sweep's
cost follows its wall time on one instance, not the number of checks. A public Q&A thread
cites a 1,000 ms minimum per active period: every short timer run is billed as 1 s here.

    python -m bench.cost_model [--seconds-per-client S] [--fanout-s-per-1000 S] ...
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

MONTH_S = 30 * 24 * 3600
MINUTES = MONTH_S // 60

# Defaults: East US pay-as-you-go list prices for Flex Consumption On Demand at the time
# of writing. Prices differ by region and change: pass your own (azure.microsoft.com/
# pricing/details/functions).
PRICE_PER_GB_S = 0.000026
PRICE_PER_MILLION_EXECUTIONS = 0.40
FREE_GB_S = 100_000
FREE_EXECUTIONS = 250_000


# The slower of the two steady sweeps at 5,000 clients, divided by 5,000: bench_sweep's
# wall on a 2-core machine, the emulators' CPU beside the app's (docs/performance.md,
# session 8): a restarted process's first sweep, which is also what the hourly sweep in
# which the kept tokens expire costs, 45.4 s (the repeat sweep: 41.3 s). Conservative:
# three sweeps in four are repeat sweeps. The first sweep after registering 5,000 clients
# at once (51.3 s) happens once. On session 7's machine, about 2.8x slower per core, the
# same figure was 70.7-88.0 s (--seconds-per-client 0.0176 for that bound).
SECONDS_PER_CLIENT = 0.00908


@dataclass(frozen=True)
class Inputs:
    memory_gb: float = 2.0  # instanceMemoryMB 2048 (infra/modules/function-app.bicep)
    # Instance-seconds per client checked, on one instance: the sweep benchmark's wall at
    # 5,000 clients / 5,000 (bench_sweep; it includes the CPU the emulators took beside
    # the app on a 2-core machine, so it overstates an instance of its own).
    seconds_per_client: float = SECONDS_PER_CLIENT
    # The benchmark's wall runs from the timer firing to the queue drained, the fan-out
    # included (the queue is drained beside it, as the host does): nothing to add.
    fanout_s_per_1000: float = 0.0
    # Clients per sweep message (XTAP_CHECKS_PER_MESSAGE): one execution per message.
    clients_per_message: int = 16
    minimum_billed_s: float = 1.0  # per active period of an instance
    # Every other timer run is short (a scan with nothing new, a purge page, a watchdog
    # look): billed at the minimum. Runs per month at the default schedules.
    audit_runs: int = MINUTES  # XTAP_AUDIT_SCHEDULE: every minute
    watchdog_runs: int = MINUTES // 5  # every 5 minutes
    purge_runs: int = MONTH_S // 3600  # hourly
    daily_runs: int = 2 * 30  # heartbeat, guest hygiene
    weekly_runs: int = 5  # access-review ensure


@dataclass(frozen=True)
class Prices:
    per_gb_s: float = PRICE_PER_GB_S
    per_million_executions: float = PRICE_PER_MILLION_EXECUTIONS
    free_gb_s: float = FREE_GB_S
    free_executions: float = FREE_EXECUTIONS


@dataclass(frozen=True)
class Month:
    clients: int
    sweeps: int
    gb_s: float
    executions: int
    cost: float


def sweeps_per_month(every_minutes: int) -> int:
    return MINUTES // every_minutes


def short_timers(inputs: Inputs) -> tuple[int, float]:
    """Runs and GB-s per month of every timer but the sweep (each billed the minimum)."""
    runs = (
        inputs.audit_runs + inputs.watchdog_runs + inputs.purge_runs + inputs.daily_runs
        + inputs.weekly_runs
    )
    return runs, runs * inputs.memory_gb * inputs.minimum_billed_s


def month(clients: int, every_minutes: int, inputs: Inputs, prices: Prices) -> Month:
    """GB-s, executions and cost of one month: sweeps of ``clients`` plus every timer."""
    sweeps = sweeps_per_month(every_minutes)
    sweep_s = inputs.fanout_s_per_1000 * clients / 1000 + inputs.seconds_per_client * clients
    sweep_gb_s = sweeps * inputs.memory_gb * max(inputs.minimum_billed_s, sweep_s)
    runs, timers_gb_s = short_timers(inputs)
    gb_s = sweep_gb_s + timers_gb_s
    messages = math.ceil(clients / max(1, inputs.clients_per_message))
    executions = sweeps * (1 + messages) + runs
    cost = (
        max(0.0, gb_s - prices.free_gb_s) * prices.per_gb_s
        + max(0.0, executions - prices.free_executions) / 1e6 * prices.per_million_executions
    )
    return Month(clients, sweeps, gb_s, executions, cost)


def table(inputs: Inputs, prices: Prices, sizes: tuple[int, ...] = (1_000, 10_000)) -> str:
    lines = [
        "| clients | sweep every | sweeps / month | GB-s / month | executions / month "
        "| cost / month (USD) |",
        "|---|---|---|---|---|---|",
    ]
    for clients in sizes:
        for every in (15, 60):
            m = month(clients, every, inputs, prices)
            lines.append(
                f"| {clients:,} | {every} min | {m.sweeps:,} | {m.gb_s:,.0f} | "
                f"{m.executions:,} | {m.cost:,.2f} |"
            )
    runs, gb_s = short_timers(inputs)
    lines.append(
        f"| of which the audit watcher and the other timers | - | - | {gb_s:,.0f} | {runs:,} "
        "| - |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    d, p = Inputs(), Prices()
    parser.add_argument("--seconds-per-client", type=float, default=d.seconds_per_client)
    parser.add_argument("--fanout-s-per-1000", type=float, default=d.fanout_s_per_1000)
    parser.add_argument("--clients-per-message", type=int, default=d.clients_per_message)
    parser.add_argument("--memory-gb", type=float, default=d.memory_gb)
    parser.add_argument("--minimum-billed-s", type=float, default=d.minimum_billed_s)
    parser.add_argument("--price-per-gb-s", type=float, default=p.per_gb_s)
    parser.add_argument("--price-per-million", type=float, default=p.per_million_executions)
    parser.add_argument("--free-gb-s", type=float, default=p.free_gb_s)
    parser.add_argument("--free-executions", type=float, default=p.free_executions)
    args = parser.parse_args(argv)
    inputs = Inputs(
        memory_gb=args.memory_gb,
        seconds_per_client=args.seconds_per_client,
        fanout_s_per_1000=args.fanout_s_per_1000,
        clients_per_message=args.clients_per_message,
        minimum_billed_s=args.minimum_billed_s,
    )
    prices = Prices(args.price_per_gb_s, args.price_per_million, args.free_gb_s,
                    args.free_executions)
    if not all(math.isfinite(v) and v >= 0 for v in vars(args).values()):
        parser.error("every figure must be a finite number >= 0")
    print(table(inputs, prices))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
