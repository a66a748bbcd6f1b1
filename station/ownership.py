"""Who owns an installed station's files, so the ``station`` user's services can read their own data.

The Debian package's postinst makes the home ``/var/lib/station`` (``station:station``, 0700) and
``/etc/station`` (``root:station``, 0750). Technicians then run ``station provision``, ``doctor``,
``operator`` … as root, and every file those commands create would belong to root. The rule kept
here, after every command run as root (the CLI calls :func:`settle` when it exits) and at the end
of ``init_station`` and ``provision``:

* everything under the home belongs to the home's owner: folders 0700, files without any group or
  other bits (the queue, its ``-wal``/``-shm``, keys, ``pki/``, ``operators/``);
* a configuration kept outside the home (``/etc/station/station.toml``) is ``root:<home's group>``
  0640, so the services read it and cannot change it;
* nothing is world-readable; symbolic links are never followed.

As any other user nothing changes: a user can only create files it owns, which is already right.
A home owned by root (a development home made by root) is left as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from station.home import StationHome

MAX_ENTRIES = 100_000  # a station home holds a few dozen files; bound the walk anyway


def home_owner(home: StationHome) -> tuple[int, int] | None:
    """(uid, gid) of the home folder when it belongs to a user other than root, else None."""
    try:
        st = os.lstat(home.root)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid == 0:
        return None
    return st.st_uid, st.st_gid


def _fix(path: Path, uid: int, gid: int, mode: int, changed: list[Path]) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)
            changed.append(path)
        return
    if (st.st_uid, st.st_gid) != (uid, gid) or stat.S_IMODE(st.st_mode) != mode:
        os.chown(path, uid, gid, follow_symlinks=False)
        os.chmod(path, mode, follow_symlinks=False)
        changed.append(path)


def settle(home: StationHome) -> list[Path]:
    """Apply the rule above (only as root); the paths whose owner or mode changed."""
    if os.geteuid() != 0:
        return []
    owner = home_owner(home)
    if owner is None:
        return []
    uid, gid = owner
    changed: list[Path] = []
    seen = 0
    for top, dirs, files in os.walk(home.root, followlinks=False):
        for name in dirs + files:
            seen += 1
            if seen > MAX_ENTRIES:
                return changed
            path = Path(top) / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # removed meanwhile (a WAL checkpointed away)
            if stat.S_ISDIR(st.st_mode):
                _fix(path, uid, gid, 0o700, changed)
            else:
                _fix(path, uid, gid, stat.S_IMODE(st.st_mode) & 0o700 or 0o600, changed)
    _fix(home.root, uid, gid, 0o700, changed)
    config = home.config_path
    if config.exists() and not config.is_relative_to(home.root):
        _fix(config, 0, gid, 0o640, changed)
    return changed
