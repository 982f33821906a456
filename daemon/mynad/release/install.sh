#!/bin/sh
# install: the one command that installs myna-reader on Raspberry Pi OS Bookworm / Debian 12.
#
#   tar xf myna-reader-<version>-<arch>.tar && cd myna-reader-<version>-<arch> && sudo ./install
#
# In this order, each step safe to repeat (run it again after a failure):
#   1. Debian's python3, python3-venv and python3-cryptography (to check the bundle with);
#   2. the trusted release key(s) into /etc/myna-reader/release-keys/ (--keys, else those
#      already there, else the bundle's own config/release-keys/*.pub, fingerprint printed);
#   3. the bundle checked: signature over MANIFEST.json, every file's hash, nothing extra;
#   4. the Debian packages the manifest lists (pcscd, fonts, lrzsz, ...);
#   5. the `myna` user and groups (sysusers.d), /etc/myna-reader modes (tmpfiles.d);
#   6. the config /etc/myna-reader/mynad.toml, ONLY if there is none (a site's config is
#      never overwritten; the bundle's config/mynad.toml is for real hardware, every choice
#      explained in it);
#   7. the unit files, the boot check and the USB serial gadget (outside the releases);
#   8. the release: /opt/myna-reader/releases/<version> with its offline venv, `current`;
#   9. systemd: the gadget's boot settings, enable and (re)start mynad.
# Nothing is compiled on the reader: every Python package comes from the bundle's wheels.
#
# Options: --root DIR (install into a scratch tree; implies nothing about systemd)
#          --no-apt (skip 1 and 4)   --no-systemd (no sysusers/tmpfiles/systemctl: for tests)
#          --keys PATH (a .pub file or a folder of them)   --python PATH (default /usr/bin/python3)
#          --force (install an older release than the one installed)
# Exit status: 0 installed; 1 refused or failed (one sentence says why); 2 usage.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=/
APT=1
SYSTEMD=1
KEYS=
PY=/usr/bin/python3
FORCE=

say() { echo "install: $*"; }
die() { echo "install: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//;/^set -eu/d' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) [ $# -ge 2 ] || usage; ROOT=$2; shift 2 ;;
        --root=*) ROOT=${1#--root=}; shift ;;
        --no-apt) APT=; shift ;;
        --no-systemd) SYSTEMD=; shift ;;
        --keys) [ $# -ge 2 ] || usage; KEYS=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || usage; PY=$2; shift 2 ;;
        --force) FORCE=--force; shift ;;
        -h|--help) usage ;;
        *) echo "install: unknown option $1" >&2; usage ;;
    esac
done

case "$ROOT" in /*) ;; *) ROOT=$(pwd)/$ROOT ;; esac
ROOT=${ROOT%/}
if [ "$(id -u)" != 0 ] && [ -z "$ROOT" ]; then
    die "run it as root: sudo $0"
fi
ETC=$ROOT/etc/myna-reader
OPT=$ROOT/opt/myna-reader
STATE=$ROOT/var/lib/myna-reader
UNITS=$ROOT/etc/systemd/system
RELEASE_PY="$PY -m myna_release.install"
RARG=${ROOT:-/}                    # the installer's --root (ROOT is "" for the real root)
export PYTHONPATH="$HERE/installer"
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ inside the bundle: it is verified file by file

[ -f "$HERE/MANIFEST.json" ] && [ -d "$HERE/installer/myna_release" ] \
    || die "$HERE is not an unpacked myna-reader bundle (no MANIFEST.json / installer/)."

# 1 ---------------------------------------------------------------------------------------
if [ -n "$APT" ]; then
    say "Debian packages to check the bundle with (python3, python3-venv, python3-cryptography)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; is the network or the apt mirror reachable?"
    apt-get install -y -qq --no-install-recommends python3 python3-venv python3-cryptography >/dev/null \
        || die "apt-get could not install python3, python3-venv and python3-cryptography."
fi
command -v "$PY" >/dev/null 2>&1 || die "$PY is missing (Debian: apt-get install python3)."

# 2 ---------------------------------------------------------------------------------------
mkdir -p "$ETC/release-keys"
if [ -n "$KEYS" ]; then
    if [ -d "$KEYS" ]; then set -- "$KEYS"/*.pub; else set -- "$KEYS"; fi
    [ -f "$1" ] || die "no release key (*.pub) at $KEYS."
    for k in "$@"; do install -m 0644 "$k" "$ETC/release-keys/$(basename "$k")"; done
elif ! ls "$ETC/release-keys/"*.pub >/dev/null 2>&1; then
    ls "$HERE/config/release-keys/"*.pub >/dev/null 2>&1 \
        || die "no trusted release key: give one with --keys FILE.pub (from the release machine)."
    for k in "$HERE/config/release-keys/"*.pub; do install -m 0644 "$k" "$ETC/release-keys/"; done
    say "trusting the release key(s) this bundle carries; compare the fingerprint with the release machine's:"
    $PY -c 'import sys; from myna_release.keys import load_public_keys, fingerprint
for k in load_public_keys(sys.argv[1]): print("install:   " + fingerprint(k))' "$ETC/release-keys"
fi

# 3 ---------------------------------------------------------------------------------------
say "checking the bundle's signature and every file"
VERSION=$($RELEASE_PY "$HERE" --root "$RARG" --verify-only $FORCE) || exit 1

# 4 ---------------------------------------------------------------------------------------
if [ -n "$APT" ]; then
    PKGS=$($PY -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1], "rb"))["apt"]))' "$HERE/MANIFEST.json")
    if [ -n "$PKGS" ]; then
        say "Debian packages: $PKGS"
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $PKGS >/dev/null \
            || die "apt-get could not install: $PKGS"
    fi
fi

# 5 ---------------------------------------------------------------------------------------
mkdir -p "$ROOT/usr/lib/sysusers.d" "$ROOT/usr/lib/tmpfiles.d" "$ETC" "$STATE/update" "$OPT/bin" "$UNITS"
install -m 0644 "$HERE/systemd/myna-reader.sysusers.conf" "$ROOT/usr/lib/sysusers.d/myna-reader.conf"
install -m 0644 "$HERE/systemd/myna-reader.tmpfiles.conf" "$ROOT/usr/lib/tmpfiles.d/myna-reader.conf"
if [ -n "$SYSTEMD" ]; then
    say "the myna user and groups"
    systemd-sysusers --root="$RARG" myna-reader.conf || die "systemd-sysusers failed."
fi

# 6 ---------------------------------------------------------------------------------------
if [ -f "$ETC/mynad.toml" ]; then
    say "keeping the site's config $ETC/mynad.toml"
elif [ -f "$HERE/config/mynad.toml" ]; then
    install -m 0640 "$HERE/config/mynad.toml" "$ETC/mynad.toml"
    say "config for real hardware installed: $ETC/mynad.toml (edit it for this site, then: mynactl check-config)"
fi
if [ -n "$SYSTEMD" ]; then
    systemd-tmpfiles --root="$RARG" --create myna-reader.conf || die "systemd-tmpfiles failed."
    # the daemon (user myna) confirms its own trial in update/ (docs/update.md); ids from the
    # root's own passwd (a scratch root's users are not this machine's)
    IDS=$(awk -F: '$1 == "myna" { print $3 ":" $4 }' "$ROOT/etc/passwd")
    [ -n "$IDS" ] || die "the user myna was not created in $ROOT/etc/passwd."
    chown "$IDS" "$STATE" "$STATE/update"
    chmod 0750 "$STATE"
fi

# 7 ---------------------------------------------------------------------------------------
for u in mynad.service myna-rollback.service myna-usb-gadget.service; do
    [ -f "$HERE/systemd/$u" ] && install -m 0644 "$HERE/systemd/$u" "$UNITS/$u"
done
if [ -f "$HERE/systemd/myna-usb-gadget" ]; then
    install -m 0755 "$HERE/systemd/myna-usb-gadget" "$OPT/bin/myna-usb-gadget"
fi
# the technician's login on the UART (user tech from sysusers.d, docs/console.md): its shell
# is the console menu, its sudo rights exactly the console's update/rollback/factory reset
if [ -f "$HERE/systemd/myna-console" ]; then
    install -m 0755 "$HERE/systemd/myna-console" "$OPT/bin/myna-console"
    grep -qx /opt/myna-reader/bin/myna-console "$ROOT/etc/shells" 2>/dev/null \
        || echo /opt/myna-reader/bin/myna-console >> "$ROOT/etc/shells"
fi
if [ -f "$HERE/systemd/myna-reader.sudoers" ]; then
    mkdir -p "$ROOT/etc/sudoers.d"
    if command -v visudo >/dev/null 2>&1 && ! visudo -cqf "$HERE/systemd/myna-reader.sudoers"; then
        die "the bundle's sudoers rule does not parse (visudo -c); nothing was installed from it."
    fi
    install -m 0440 "$HERE/systemd/myna-reader.sudoers" "$ROOT/etc/sudoers.d/myna-reader"
fi

# 8 ---------------------------------------------------------------------------------------
CURRENT=$(readlink "$OPT/current" 2>/dev/null || true)
if [ "${CURRENT##*/}" = "$VERSION" ] && [ -f "$OPT/releases/$VERSION/.complete" ]; then
    say "release $VERSION is already installed and current"
else
    say "installing release $VERSION (an offline venv from the bundle's wheels; a few minutes on a Pi)"
    $RELEASE_PY "$HERE" --root "$RARG" --python "$PY" $FORCE || exit 1
fi
# a `mynactl` on the PATH that always runs the current release's
mkdir -p "$ROOT/usr/local/bin"
ln -sfn /opt/myna-reader/current/venv/bin/mynactl "$ROOT/usr/local/bin/mynactl"

# 9 ---------------------------------------------------------------------------------------
GADGET_UNIT=
[ -f "$UNITS/myna-usb-gadget.service" ] && GADGET_UNIT=myna-usb-gadget.service
if [ -n "$SYSTEMD" ] && [ -n "$ROOT" ]; then
    # another root (an SD card mounted here): enable the units in it, start nothing
    systemctl --root="$ROOT" enable --quiet mynad.service $GADGET_UNIT
    say "units enabled in $ROOT (they start when that system boots)"
elif [ -n "$SYSTEMD" ]; then
    if [ -x "$OPT/bin/myna-usb-gadget" ]; then
        "$OPT/bin/myna-usb-gadget" configure-boot || say "the USB serial gadget's boot settings were not changed"
    fi
    systemctl daemon-reload
    systemctl enable --quiet mynad.service $GADGET_UNIT
    systemctl restart mynad.service || die "mynad did not start; see: journalctl -u mynad -b"
    say "mynad started; check it with: mynactl status"
fi
if [ -n "$SYSTEMD" ] && grep -q '^tech:[!*]' "$ROOT/etc/shadow" 2>/dev/null; then
    say "the technician login 'tech' has no password yet: set one with  passwd tech  (docs/console.md)"
fi
say "done: release $VERSION"
