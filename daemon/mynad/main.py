"""``mynad``: the reader daemon's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from mynad import __version__
from mynad.config import ConfigError, load_config

DEFAULT_CONFIG = "/etc/myna-reader/mynad.toml"
# EX_CONFIG from sysexits.h: the unit's RestartPreventExitStatus=78 stops a
# broken config from being restarted in a loop.
EXIT_CONFIG = 78


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mynad", description="My Number card reader daemon (顔認証付きカードリーダー)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"TOML config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--check-config", action="store_true", help="validate the config and exit")
    parser.add_argument("--simulator", action="store_true",
                        help="this run is for mynasim: allow the simulated device backends (backend = \"sim\")")
    parser.add_argument("--version", action="version", version=f"mynad {__version__}")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"mynad: {e}", file=sys.stderr)
        return EXIT_CONFIG
    from mynad.logsetup import setup_logging

    setup_logging(cfg.reader.log_level)  # severities reach journald as <N> prefixes
    if args.check_config:
        from myna_drivers.devices import sim_sections

        sims = sim_sections(cfg)
        if sims and not args.simulator:
            print(f"mynad: {args.config}: {', '.join(f'[{s}]' for s in sims)} use the simulator's backend "
                  "(\"sim\"); a reader needs backend = \"real\" (or pass --simulator under mynasim)",
                  file=sys.stderr)
            return EXIT_CONFIG
        print(f"{args.config}: OK")
        return 0
    from mynad.app import App, StartupError
    from mynad.memory import tune_allocator

    tune_allocator()
    from mynad.hardening import forbid_core_dumps

    forbid_core_dumps()  # before any PIN is typed: no core dump may hold one (docs/security.md)

    try:
        return asyncio.run(App(cfg, simulator=args.simulator).run())
    except StartupError as e:
        logging.getLogger("mynad").error("cannot start: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
