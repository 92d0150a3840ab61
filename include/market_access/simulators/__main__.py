"""Command line: python -m market_access.simulators serve … starts the four source systems."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from market_access.settings import settings
from market_access.simulators.faults import PROFILES, FaultConfig
from market_access.simulators.server import SimulatorServer, default_credentials
from market_access.simulators.world import GENERATOR_VERSION, World, fmt

# fixed order: port = port-base + index
SYSTEM_ORDER = ("gov_service", "market_supervision", "credit", "random_inspection")


def _say(message: str) -> None:
    print(message, flush=True)


def _progress(label: str, done: int, total: int) -> None:
    _say(f"{label} {done}/{total}")


def _systems(spec: str) -> list[str]:
    if spec.strip() == "all":
        return list(SYSTEM_ORDER)
    chosen = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SYSTEM_ORDER))
    if unknown or not chosen:
        raise SystemExit(
            f"--systems: unknown {unknown or spec!r}; choose 'all' or some of {', '.join(SYSTEM_ORDER)}"
        )
    return [s for s in SYSTEM_ORDER if s in chosen]


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _saved_day(state_file: Path, seed: int, scale: float) -> int:
    """The day a previous run reached with the same seed and scale (0 otherwise)."""
    if not state_file.exists():
        return 0
    try:
        saved = json.loads(state_file.read_text(encoding="utf-8"))
    except ValueError:
        _say(f"ignoring unreadable {state_file}")
        return 0
    if (
        saved.get("seed") != seed
        or saved.get("scale") != scale
        or saved.get("generator_version") != GENERATOR_VERSION
    ):
        _say(f"{state_file} belongs to another seed/scale/generator; starting at day 0")
        return 0
    return int(saved.get("day", 0))


def _persist(state_file: Path, world: World) -> None:
    _write_json(
        state_file,
        {
            "seed": world.seed,
            "scale": world.scale,
            "day": world.day,
            "clock": fmt(world.clock),
            "generator_version": GENERATOR_VERSION,
        },
    )


def serve(args: argparse.Namespace) -> int:
    systems = _systems(args.systems)
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    endpoints_file, state_file = state_dir / "endpoints.json", state_dir / "state.json"
    endpoints_file.unlink(missing_ok=True)  # its presence means "listening"

    started = time.monotonic()
    world = World.cached(args.seed, args.scale, None if args.no_cache else state_dir, _progress)
    _say(f"world ready in {time.monotonic() - started:.1f}s: seed {args.seed}, scale {args.scale}")
    day = _saved_day(state_file, args.seed, args.scale)
    if day:
        _say(f"replaying {day} simulated days from {state_file}")
        world.advance(day, _progress)
    if args.advance:
        world.advance(args.advance, _progress)
    _persist(state_file, world)
    _say(f"simulated clock {fmt(world.clock)} (day {world.day})")

    lock = threading.Lock()

    def persist(w: World) -> None:
        with lock:
            _persist(state_file, w)

    servers = []
    for system in systems:
        port = 0 if args.port_base == 0 else args.port_base + SYSTEM_ORDER.index(system)
        client_id, secret = default_credentials(system)
        servers.append(
            SimulatorServer(
                world,
                system,
                host=args.host,
                port=port,
                client_id=client_id,
                client_secret=secret,
                faults=FaultConfig.profile(args.faults, args.seed),
                token_ttl=args.token_ttl,
                on_advance=persist,
            ).start()
        )
    _write_json(
        endpoints_file,
        {
            s.system: {"url": s.url, "client_id": s.client_id, "client_secret": s.client_secret}
            for s in servers
        },
    )
    for s in servers:
        _say(f"{s.system} listening on {s.url} (faults {args.faults})")
    _say(f"endpoints written to {endpoints_file}; stop with Ctrl-C or SIGTERM")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    _say("stopping")
    for s in servers:
        s.stop()
    endpoints_file.unlink(missing_ok=True)
    return 0


def submissions(args: argparse.Namespace) -> int:
    from market_access import directory
    from market_access.simulators.submissions import generate

    try:
        depts = directory.load(args.departments)
    except directory.DirectoryError as exc:
        raise SystemExit(str(exc)) from None
    try:
        out = generate(Path(args.inbox), seed=args.seed, quarter=args.period, day=args.day, directory=depts)
    except ValueError as exc:
        raise SystemExit(f"--period: {exc}") from None
    _say(f"wrote {len(out)} submission files into {args.inbox} (period {args.period}, day {args.day})")
    for path, tags in out.tags.items():
        _say(f"  {path}: {'; '.join(tags)}")
    return 0


def parser() -> argparse.ArgumentParser:
    cfg = settings()
    p = argparse.ArgumentParser(
        prog="python -m market_access.simulators",
        description="The four government source systems, simulated, for demo and tests.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="generate (or load) the world and serve it until SIGTERM/SIGINT")
    s.add_argument("--systems", default="all", help="all, or a comma list of " + ", ".join(SYSTEM_ORDER))
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument(
        "--port-base",
        type=int,
        default=8701,
        help="first port; systems get port-base + 0..3 in the order above; 0 picks free ports",
    )
    s.add_argument("--seed", type=int, default=cfg.sim_seed)
    s.add_argument("--scale", type=float, default=cfg.sim_scale)
    s.add_argument("--faults", choices=sorted(PROFILES), default=cfg.sim_faults)
    s.add_argument(
        "--state-dir",
        default=str(cfg.simulator_dir),
        help="keeps state.json (the simulated day), endpoints.json and the world cache",
    )
    s.add_argument(
        "--advance", type=int, default=0, metavar="N", help="advance N simulated days before serving"
    )
    s.add_argument("--token-ttl", type=int, default=1800, help="seconds a token lives (expires_in)")
    s.add_argument(
        "--no-cache", action="store_true", help="always generate; never read or write the world cache"
    )
    s.set_defaults(func=serve)

    g = sub.add_parser("submissions", help="write realistic department submission files into an inbox")
    g.add_argument("--inbox", default=str(cfg.submissions_inbox), help="the inbox; one folder per dept_code")
    g.add_argument("--seed", type=int, default=cfg.sim_seed)
    g.add_argument("--period", default="2026Q2", help="the quarter reported on, e.g. 2026Q2")
    g.add_argument(
        "--day", type=int, default=0, help="0: the quarter's bulk of files; N > 0: what arrives on day N"
    )
    g.add_argument("--departments", default=str(cfg.departments_csv), help="the department directory CSV")
    g.set_defaults(func=submissions, scale=cfg.sim_scale)  # main() checks --scale of every command
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.scale <= 0:
        raise SystemExit("--scale must be positive")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
