"""Render the config reference (every key, type, default, description) as Markdown from the
JSON Schema, so README.md cannot drift from the models: `python -m eventpipe.config.reference`
prints it and a test checks README.md contains it."""

from __future__ import annotations

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


if __name__ == "__main__":
    print(BEGIN)
    print(render_reference())
    print(END)
