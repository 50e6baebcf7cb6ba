"""Reading the YAML files operators write, safely for their secrets.

PyYAML keeps the last of two equal keys without a word, and its error messages quote the
offending line, which in a settings file may hold a password. Files read here refuse repeated
keys, and their errors say where the file is broken and how, never what it says there.
"""

from __future__ import annotations

import re

import yaml

# A key shown in an error only when it looks like a name; any other key may be a value pasted
# in the wrong place, a URL with its password say.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_unique_keys(text: str) -> object:
    """The YAML document in ``text``, loaded safely; raises yaml.YAMLError, DuplicateKeyError
    among them, when it is broken."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping of the settings file names one key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping: PyYAML keeps the last
    value silently, and the operator most often edited the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_lines: dict[object, int] = {}
        for key_node, _ in node.value:
            # Keys merged in with ``<<`` may be overridden on purpose; only written keys count.
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = first_lines.get(key)
            except TypeError:
                continue  # an unhashable key, which the safe loader refuses on its own
            if first is None:
                first_lines[key] = key_node.start_mark.line + 1
            else:
                named = isinstance(key, str) and _NAME.fullmatch(key)
                shown = f"key {key}" if named else "a key"  # not a name: perhaps a URL
                raise DuplicateKeyError(
                    None,
                    None,
                    f"{shown} is written twice in one mapping (first at line {first})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


# Text PyYAML quotes from the file, such as an alias or tag that is really a password
# starting with '*' or '!'. A single character (escaped like '\t' or not) still shows, and so
# do PyYAML's own token names such as '<stream end>'.
_QUOTED_FILE_TEXT = re.compile(r"'(?!<)[^']{3,}'")


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Where a YAML file is broken and how, without PyYAML's quote of the offending line, which
    may hold a password: ``at line 2, column 27: mapping values are not allowed here``."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None or mark is None:
        return f"({type(exc).__name__})"
    where = f"at line {mark.line + 1}, column {mark.column + 1}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark:
        where += f" ({_unquoted(context)} from line {context_mark.line + 1})"
    return f"{where}: {_unquoted(problem)}"


def _unquoted(text: str) -> str:
    return _QUOTED_FILE_TEXT.sub("(text not shown)", text)
