"""The ``sim`` subcommand: run the simulated mesh (fake cluster + Istio metrics) in the
foreground, for the demo, for rule authors and for end-to-end tests.

When everything listens it prints exactly one line,
``ready kubeconfig=PATH metrics=http://127.0.0.1:N/metrics``, and runs until SIGINT or
SIGTERM, then stops cleanly with exit code 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from analyzer.errors import BadInputError, ExitCode


def register(subparsers) -> None:
    """Add ``sim`` to the command line."""
    parser = subparsers.add_parser(
        "sim",
        help="run the simulated mesh in the foreground",
        description=(
            "Run a fake Kubernetes API with Istio sidecar injection and rolling restarts, "
            "plus a generator of standard Istio metrics, as a scenario describes. Prints "
            "'ready kubeconfig=PATH metrics=URL' when ready; stops on SIGINT/SIGTERM."
        ),
    )
    parser.add_argument(
        "--scenario",
        required=True,
        help="scenario file, or a short name such as healthy, bad-canary, "
        "bad-second-wave, night-drift, never-ready",
    )
    parser.add_argument(
        "--kubeconfig-out",
        metavar="PATH",
        help="where to write the kubeconfig (default: a temporary file)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="N",
        help="port of /metrics on 127.0.0.1 (default: a free port)",
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=0,
        metavar="N",
        help="port of the fake Kubernetes API on 127.0.0.1 (default: free)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        help="simulated seconds per real second (overrides the scenario)",
    )
    parser.add_argument(
        "--write-log",
        metavar="PATH",
        help="append every write request the API receives as a JSON line",
    )
    parser.set_defaults(handler=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    """Start the mesh, announce readiness, wait for a stop signal."""
    from analyzer.sim.mesh import SimStartError, SimulatedMesh
    from analyzer.sim.scenario import load_scenario

    for flag, port in (("--metrics-port", args.metrics_port), ("--api-port", args.api_port)):
        if not 0 <= port <= 65535:
            raise BadInputError(f"{flag}: {port} is not a TCP port")
    scenario = load_scenario(args.scenario)
    if args.time_scale is not None:
        if args.time_scale <= 0:
            raise BadInputError("--time-scale must be positive")
        scenario = scenario.model_copy(update={"time_scale": args.time_scale})
    mesh = SimulatedMesh(
        scenario,
        api_port=args.api_port,
        metrics_port=args.metrics_port,
        kubeconfig_path=args.kubeconfig_out,
        write_log_path=args.write_log,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            mesh.start()
        except SimStartError as error:
            raise BadInputError(str(error)) from None
        print(f"ready kubeconfig={mesh.kubeconfig_path} metrics={mesh.metrics_url}", flush=True)
        print(
            f"fake Kubernetes API at {mesh.api_url} (scenario {scenario.name}, "
            f"time scale {scenario.time_scale:g}×)",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.2):
            pass
    finally:
        mesh.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ExitCode.OK
