"""Render the config reference (every key, type, default, description) as Markdown from the
JSON Schema, so docs/configuration.md cannot drift from the models:
`python -m eventpipe.config.reference --write docs/configuration.md` rewrites the generated block
between the markers (the hand-written text around it is kept) and a test checks it is current."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from eventpipe.config.schema import config_json_schema

BEGIN = "<!-- config-reference:begin -->"
END = "<!-- config-reference:end -->"


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    for option in node.get("anyOf", ()):
        if isinstance(option, dict) and "$ref" in option:
            return str(option["$ref"]).rsplit("/", 1)[-1]
    return None


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    name = _ref_name(node)
    return dict(defs[name]) if name else node


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "anyOf" in node:
        return " or ".join(_type(o) for o in node["anyOf"] if o.get("type") != "null")
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    return str(kind)


def _rows(node: dict[str, Any], defs: dict[str, Any], prefix: str,
          seen: tuple[str, ...] = ()) -> list[str]:
    rows: list[str] = []
    for key, prop in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        target = _resolve(prop, defs)
        if target.get("type") == "array" and isinstance(target.get("items"), dict):
            item_ref = _ref_name(target["items"])
            items = _resolve(target["items"], defs)
            if "properties" in items:
                description = _clean(prop.get("description", ""))
                if item_ref in seen:  # recursive (route.routes): say so instead of looping
                    rows.append(f"| `{path}` | list of {item_ref} | | {description} "
                                f"(each item has the same keys as its parent) |")
                    continue
                rows.append(f"| `{path}` | list | | {description} |")
                rows.extend(_rows(items, defs, f"{path}[].",
                                  (*seen, item_ref) if item_ref else seen))
                continue
        if "properties" in target:
            rows.append(f"| `{path}` | map | | {_clean(prop.get('description', ''))} |")
            ref = _ref_name(prop)
            rows.extend(_rows(target, defs, f"{path}.", (*seen, ref) if ref else seen))
            continue
        default = prop.get("default")
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{path}` | {_type(prop)} | {shown} | "
                    f"{_clean(prop.get('description', ''))} |")
    return rows


def _clean(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_reference() -> str:
    """The Markdown table of every config key."""
    schema = config_json_schema()
    defs: dict[str, Any] = dict(schema.get("$defs", {}))  # type: ignore[call-overload]
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += _rows(schema, defs, "")
    return "\n".join(lines)


def with_reference(document: str, table: str) -> str:
    """`document` with the text between BEGIN and END replaced by `table`."""
    start = document.index(BEGIN) + len(BEGIN)
    return f"{document[:start]}\n{table}\n{document[document.index(END, start):]}"


def main(argv: list[str]) -> int:
    """No arguments: print the table. `--write PATH`: regenerate PATH's block in place."""
    if not argv:
        print(BEGIN, render_reference(), END, sep="\n")
        return 0
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(with_reference(path.read_text(), render_reference()))
        return 0
    print("usage: python -m eventpipe.config.reference [--write docs/configuration.md]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
