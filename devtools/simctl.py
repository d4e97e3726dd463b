"""Change the Graph simulator's tenants from a shell, while ``./scripts/demo --keep`` runs.

    source .local/xtap-watch.env
    python -m devtools.simctl block 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d   # client blocks vendor
    python -m devtools.simctl allow 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d   # ... and allows again

Each change writes the audit event the real service would (the simulator is a test double
of Graph and Entra); the running stack's next audit scan and sweep see it.
"""

from __future__ import annotations

import argparse
import os
import sys

from devtools.local_env import ALLOW_OUTBOUND, BLOCK_OUTBOUND, VENDOR_TENANT_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.simctl", description=__doc__)
    parser.add_argument("action", choices=("block", "allow"))
    parser.add_argument("tenant", help="a client tenant of the demo scenario")
    parser.add_argument("--actor", default=None, help="who the audit event says changed it")
    args = parser.parse_args(argv)
    url, ca = os.environ.get("XTAP_SIM_URL"), os.environ.get("XTAP_TLS_CA_FILE")
    if not url or not ca:
        print("simctl: source .local/xtap-watch.env first (./scripts/demo --keep writes it)",
              file=sys.stderr)
        return 2
    from sim.testing import SimControl

    control = SimControl(url, ca)
    try:
        body = BLOCK_OUTBOUND if args.action == "block" else ALLOW_OUTBOUND
        event = control.set_partner_policy(
            args.tenant.lower(), VENDOR_TENANT_ID, body, actor=args.actor or "it-admin@client"
        )
    except Exception as exc:  # the control API's message names the problem
        print(f"simctl: {exc}", file=sys.stderr)
        return 1
    finally:
        control.close()
    verb = "blocks" if args.action == "block" else "allows"
    print(f"{args.tenant} now {verb} outbound B2B collaboration to the vendor "
          f"(audit event {event.get('id')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
