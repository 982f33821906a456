"""``mynactl host-key``: provision the host-link key from the console.

* ``generate [--export FILE]``: a new random key into ``[host] key_file`` (0600). With
  ``--export`` the same key is also written, 0600, to a file the technician chose (a USB
  stick for the host PC); that is the only way the key leaves this tool.
* ``show-fingerprint``: the key's fingerprint (e.g. ``3f2a-9c1b-7d10-e4a8``), to compare with
  the host's. The fingerprint is a labelled hash: it tells nothing about the key.
* ``import FILE``: install a key made elsewhere (the host's copy).

The key itself is never printed or logged. Replacing an existing key needs ``--force``,
because a new key at one end cuts the link until the other end has the same key. The
daemon reads the key when it starts: restart it after a change. Run as the daemon's user,
or as root with ``--owner USER`` (the daemon refuses a key file it does not own).
"""

from __future__ import annotations

import argparse
import os
import pwd
from pathlib import Path

from mynad.hostlink.auth import fingerprint
from mynad.hostlink.keyfile import HostKeyError, generate_key, load_key, read_key_text, write_key


def add_host_key(sub: argparse._SubParsersAction) -> None:
    """Register ``host-key`` under mynactl's subcommands."""
    p = sub.add_parser("host-key", help="the host-link key: generate, show its fingerprint, import")
    p.add_argument("--key-file", type=Path, default=None,
                   help="the key file (default: [host] key_file of the config)")
    hk = p.add_subparsers(dest="host_key_cmd", required=True)
    g = hk.add_parser("generate", help="make a new random key (the old one is kept unless --force)")
    g.add_argument("--export", type=Path, metavar="FILE",
                   help="also write the key to FILE (0600, must not exist) for the host PC")
    g.add_argument("--force", action="store_true", help="replace an existing key")
    g.add_argument("--owner", metavar="USER", help="give the key file to USER (the daemon's user; needs root)")
    g.set_defaults(func=cmd_generate)
    s = hk.add_parser("show-fingerprint", help="print the fingerprint of the installed key")
    s.set_defaults(func=cmd_show_fingerprint)
    i = hk.add_parser("import", help="install the key in FILE (64 hexadecimal digits)")
    i.add_argument("file", type=Path, metavar="FILE")
    i.add_argument("--force", action="store_true", help="replace an existing, different key")
    i.add_argument("--owner", metavar="USER", help="give the key file to USER (the daemon's user; needs root)")
    i.set_defaults(func=cmd_import)


def _key_file(args: argparse.Namespace) -> Path:
    if args.key_file is not None:
        return Path(args.key_file)
    from mynad.config import ConfigError, load_config

    try:
        return load_config(args.config).host.key_file
    except ConfigError as e:
        raise SystemExit(f"mynactl: {e} (or name the key file with --key-file)") from None


def _owner(name: str | None) -> tuple[int, int] | None:
    if not name:
        return None
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(f"mynactl: there is no user {name!r}") from None
    if os.geteuid() != 0 and pw.pw_uid != os.geteuid():
        raise SystemExit(f"mynactl: only root can give the key file to {name}")
    return pw.pw_uid, pw.pw_gid


def _fail(e: HostKeyError) -> SystemExit:
    return SystemExit(f"mynactl: {e}")


def cmd_generate(args: argparse.Namespace) -> int:
    path = _key_file(args)
    owner = _owner(args.owner)
    if args.export is not None and args.export.exists():
        raise SystemExit(f"mynactl: {args.export} already exists; choose a new file for the exported key")
    key = generate_key()
    try:
        write_key(path, key, replace=args.force, owner=owner)
        if args.export is not None:
            write_key(args.export, key)
    except HostKeyError as e:
        raise _fail(e) from None
    print(f"host key written to {path} (fingerprint {fingerprint(key)})")
    if args.export is not None:
        print(f"the host's copy is in {args.export} (0600): install it on the host PC, then delete it here")
    print("restart mynad to use it; the host must have the same key (compare the fingerprints)")
    return 0


def cmd_show_fingerprint(args: argparse.Namespace) -> int:
    path = _key_file(args)
    try:  # root may look at a key owned by the daemon's user; permissions are still checked
        key = load_key(path, require_owner=False)
    except HostKeyError as e:
        raise _fail(e) from None
    print(fingerprint(key))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    path = _key_file(args)
    owner = _owner(args.owner)
    try:
        key = read_key_text(args.file)
        if path.exists():
            try:
                same = load_key(path, require_owner=False) == key
            except HostKeyError:
                same = False
            if same:
                print(f"{path} already holds this key (fingerprint {fingerprint(key)})")
                return 0
        write_key(path, key, replace=args.force, owner=owner)
    except HostKeyError as e:
        raise _fail(e) from None
    print(f"host key imported into {path} (fingerprint {fingerprint(key)}); restart mynad to use it")
    return 0
