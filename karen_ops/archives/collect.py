"""Choosing what goes into an archive: configured paths, folders walked with excludes, logs.

A configured path may be a file, a folder (taken whole, minus the excludes) or a glob such as
``/etc/systemd/system/ai-karen*.service``. A configured file that is a symbolic link is taken
by its content, since the operator named it; links met while walking a folder are kept as
links. Paths that do not exist are reported, not fatal, unless none of them exists.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from karen_ops import settings
from karen_ops.archives.config import SECTION
from karen_ops.errors import ArchiveError, ConfigurationError

# A folder holding this file is a Python virtual environment, whatever it is called.
VIRTUALENV_MARKER = "pyvenv.cfg"


@dataclass(frozen=True)
class Source:
    """One entry of an archive: a file, folder or link on this host."""

    path: Path
    # True for a path named in the settings: a link is archived as the file it points to.
    follow: bool = False

    @property
    def arcname(self) -> str:
        """The name inside the archive: the absolute path without its leading '/'."""
        return self.path.as_posix().lstrip("/")


@dataclass
class Selection:
    """What an archive will take, and what it was asked for but could not find."""

    sources: list[Source] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)


def select_paths(
    configured: Iterable[str],
    *,
    setting: str,
    excludes: Iterable[str] = (),
    skip_virtualenvs: bool = False,
) -> Selection:
    """Every entry under the configured paths, folders walked, excluded names left out."""
    patterns = _absolute(configured, setting)
    excludes = tuple(excludes)
    selection = Selection()
    seen: set[Path] = set()

    for pattern in patterns:
        matches = _expand(pattern)
        if not matches:
            selection.missing.append(pattern)
            continue
        for match in matches:
            if match.is_dir():
                entries = _walk(match, excludes, skip_virtualenvs, selection.excluded)
            else:
                entries = iter([Source(match, follow=True)])
            for source in entries:
                if source.path not in seen:
                    seen.add(source.path)
                    selection.sources.append(source)

    _require_some(patterns, selection, setting)
    return selection


def select_rotated_logs(folders: Iterable[str], patterns: Iterable[str]) -> Selection:
    """Regular files under the log folders whose names match a rotated-log pattern."""
    setting = f"{SECTION}.log_paths"
    roots = _absolute(folders, setting)
    patterns = tuple(patterns)
    selection = Selection()

    for root in roots:
        top = Path(root)
        if not top.is_dir():
            selection.missing.append(root)
            continue
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if any(fnmatchcase(name, pattern) for pattern in patterns) and _is_file(path):
                    selection.sources.append(Source(path))

    _require_some(roots, selection, setting)
    return selection


def _absolute(configured: Iterable[str], setting: str) -> list[str]:
    paths = list(configured)
    if not paths:
        raise ConfigurationError(
            f"{setting} is empty, so there is nothing to archive; list the paths in the "
            f"{SECTION} section of the {settings.OPS_CONFIG} file"
        )
    relative = [path for path in paths if not os.path.isabs(path)]
    if relative:
        raise ConfigurationError(
            f"{setting} holds relative path(s) {', '.join(relative)}; an archive is taken by a "
            f"scheduled run whose working folder is not yours, so give absolute paths in the "
            f"{settings.OPS_CONFIG} file"
        )
    return paths


def _expand(pattern: str) -> list[Path]:
    if glob.has_magic(pattern):
        return [Path(match) for match in sorted(glob.glob(pattern, include_hidden=True))]
    path = Path(pattern)
    return [path] if os.path.lexists(path) else []


def _walk(
    top: Path, excludes: tuple[str, ...], skip_virtualenvs: bool, excluded: list[str]
) -> Iterator[Source]:
    """The folder itself, then everything under it that no exclude matches."""
    yield Source(top, follow=True)
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        kept_dirs = []
        for name in sorted(dirs):
            path = here / name
            if _matches(top, path, excludes) or (
                skip_virtualenvs and (path / VIRTUALENV_MARKER).is_file()
            ):
                excluded.append(str(path))
            elif path.is_symlink():
                # A link to a folder is kept as a link; what it points to is not walked.
                yield Source(path)
            else:
                kept_dirs.append(name)
                yield Source(path)
        dirs[:] = kept_dirs

        for name in sorted(files):
            path = here / name
            if _matches(top, path, excludes):
                excluded.append(str(path))
            else:
                yield Source(path)


def _matches(top: Path, path: Path, excludes: tuple[str, ...]) -> bool:
    """A pattern without '/' matches an entry's name; one with '/' the end of its path."""
    relative = path.relative_to(top).as_posix()
    for pattern in excludes:
        if "/" not in pattern:
            if fnmatchcase(path.name, pattern):
                return True
        elif fnmatchcase(relative, pattern) or fnmatchcase(relative, "*/" + pattern):
            return True
    return False


def _is_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _require_some(configured: list[str], selection: Selection, setting: str) -> None:
    if len(selection.missing) == len(configured):
        raise ArchiveError(
            f"none of the paths in {setting} exists on this host: "
            f"{', '.join(selection.missing)}; set {setting} in the {settings.OPS_CONFIG} file "
            "to the paths this host uses"
        )
