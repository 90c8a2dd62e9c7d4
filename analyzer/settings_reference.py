"""Renders the settings reference (docs/configuration.md) from the settings model itself.

So the documentation of every ``CANARY_*`` variable cannot drift from the code: a test
compares the file with this output; ``make docs`` rewrites it.
"""

from __future__ import annotations

from typing import Annotated, get_args, get_origin

from pydantic import BaseModel

from analyzer.settings import Settings

HEADER = """# Configuration reference

Every setting is an environment variable `CANARY_<GROUP>__<FIELD>` (nested groups use a
double underscore); command-line flags override them. Durations accept `30s`, `10m`,
`1h30m`, `2d` as Prometheus does (a bare number has no unit and is refused). Dictionaries
and lists are JSON, e.g. `CANARY_PROMETHEUS__HEADERS='{"X-Scope-OrgID": "tenant-1"}'`,
`CANARY_UPGRADE__WAVES='[1, 2, 4]'`. A `CANARY_*` variable that is not listed here is an
error naming it (`CANARY_SERVICE__URL`, read by the control verbs, excepted).

This file is generated from `analyzer/settings.py` (`make docs`); a test keeps it current.
"""


def _type_name(annotation: object) -> str:
    if get_origin(annotation) is Annotated:  # e.g. a list of durations: its items' type
        return _type_name(get_args(annotation)[0])
    if get_origin(annotation) is list:
        return f"list[{', '.join(_type_name(arg) for arg in get_args(annotation))}]"
    text = str(annotation).replace("typing.", "").replace("pathlib.", "")
    text = text.replace("datetime.timedelta", "duration").replace("<class '", "").replace("'>", "")
    return text.replace("Annotated[duration, BeforeValidator", "duration").split(
        ", BeforeValidator"
    )[0]


def reference_markdown() -> str:
    """The whole reference page as Markdown."""
    parts = [HEADER]
    for group_name, group_field in Settings.model_fields.items():
        model = group_field.default_factory() if group_field.default_factory else None
        if not isinstance(model, BaseModel):
            continue
        doc = (type(model).__doc__ or "").strip().splitlines()[0]
        parts.append(f"\n## {group_name}\n\n{doc}\n")
        parts.append("| variable | type | meaning and default |\n| --- | --- | --- |")
        for field_name, field in type(model).model_fields.items():
            variable = f"`CANARY_{group_name.upper()}__{field_name.upper()}`"
            description = (field.description or "").replace("|", "\\|")
            type_name = _type_name(field.annotation).replace("|", "\\|")
            parts.append(f"| {variable} | {type_name} | {description} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
