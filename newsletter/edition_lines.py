"""Which line of an edition YAML an import error concerns, so staff see it beside that line.

The importer (editions.py) words every error as "FILE: WHERE: PROBLEM", where WHERE and the
start of PROBLEM name the place: `line 12`, `field 'subject.be'`, `topic 'economy'`,
`article #3`, `article 'economy': field 'translations.en.title'`. This module walks the YAML's
node tree (composed, never constructed: no object is built, aliases are not expanded) along
that place and returns the line of the deepest key it reaches (1-based).
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

_LINE = re.compile(r"\bline (\d+)\b")
_ARTICLE_SLUG = re.compile(r"\barticle '([^']*)'")
_ARTICLE_INDEX = re.compile(r"\barticle #(\d+)\b")
_TOPIC = re.compile(r"\btopic '([^']*)'")
_FIELD = re.compile(r"\bfield '([^']*)'")


def _key(mapping: Node, name: str) -> tuple[Node, Node] | None:
    if not isinstance(mapping, MappingNode):
        return None
    for key, value in mapping.value:
        if getattr(key, "value", None) == name:
            return key, value
    return None


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def error_line(text: str, detail: str) -> int | None:
    """The line `detail` (an import error without its file name) points at, if any."""
    found = _LINE.search(detail)
    if found and not _FIELD.search(detail):
        return int(found.group(1))
    if "not valid YAML" in detail or "larger than" in detail:
        return None  # no line known, and nothing to walk
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    if root is None:
        return None
    line: int | None = None
    node: Node = root
    fields = _FIELD.findall(detail)
    path: list[str] = []
    slug, index = _ARTICLE_SLUG.search(detail), _ARTICLE_INDEX.search(detail)
    if slug or index:
        pair = _key(node, "articles")
        if pair is None or not isinstance(pair[1], SequenceNode):
            return None
        line, articles = _line(pair[0]), pair[1].value
        item: Node | None = None
        if slug:
            item = next(
                (a for a in articles if (p := _key(a, "slug")) and p[1].value == slug.group(1)),
                None,
            )
        elif index:
            position = int(index.group(1)) - 1
            item = articles[position] if 0 <= position < len(articles) else None
        if item is None:
            return line
        node, line = item, _line(item)
    elif topic := _TOPIC.search(detail):
        pair = _key(node, "topics")
        if pair is None:
            return None
        line, node = _line(pair[0]), pair[1]
        pair = _key(node, topic.group(1))
        if pair is None:
            return line
        line, node = _line(pair[0]), pair[1]
        fields = [f for f in fields if f != "names"]
    for name in fields[:1]:
        path = name.split(".")
    for part in path:
        pair = _key(node, part)
        if pair is None:
            break
        line, node = _line(pair[0]), pair[1]
    return line
