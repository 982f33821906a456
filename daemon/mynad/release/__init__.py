"""Release bundles, signed updates with a trial, and rollback (docs/update.md, docs/release.md).

Stdlib + ``cryptography`` only, relative imports only: this package also runs, copied into a
bundle as ``installer/myna_release/``, under Debian's python3 at first install, and its
stdlib-only part is packed into ``myna-bootcheck``. Import nothing here (the boot check must
not pull in ``cryptography``).
"""
