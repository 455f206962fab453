"""Each function's IAM permissions as a Markdown table, read from template.yaml
(``python -m shelflife_tools.iam``): the table in docs/RELIABILITY.md is this output,
and a test keeps it so."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shelflife_tools.template import TEMPLATE, load_template

_SHORTEN = (
    ("arn:${AWS::Partition}:", ""),
    ("${BucketPrefix}", "<prefix>"),
    ("${AWS::AccountId}", "<account>"),
    ("${AWS::Region}", "<region>"),
    ("${Table.Arn}", "Table"),
    ("${CredentialsParameter}", "<CredentialsParameter>"),
)


def _resource(value: Any) -> str:
    if isinstance(value, list):
        return "<br>".join(_resource(item) for item in value)
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target, attribute = value["Fn::GetAtt"]
            return target if attribute == "Arn" else f"{target}.{attribute}"
        if "Fn::Sub" in value:
            text = str(value["Fn::Sub"])
            for long, short in _SHORTEN:
                text = text.replace(long, short)
            return text
    return str(value)


def _statements(
    template: dict[str, Any], function: dict[str, Any]
) -> list[tuple[dict[str, Any], str]]:
    """Each statement and the condition it is granted under ("" for always)."""
    statements: list[dict[str, Any]] = []
    for policy in function["Properties"].get("Policies", []):
        if "Ref" in policy:
            document = template["Resources"][policy["Ref"]]["Properties"]["PolicyDocument"]
            statements += document["Statement"]
        else:
            statements += policy["Statement"]
    out: list[tuple[dict[str, Any], str]] = []
    for statement in statements:
        if "Fn::If" in statement:  # granted only when the condition holds
            condition, statement, _ = statement["Fn::If"]
            out.append((statement, condition))
        else:
            out.append((statement, ""))
    return out


def markdown(template_path: Path = TEMPLATE) -> str:
    template = load_template(template_path)
    rows = ["| function | statement | actions | resources |", "|---|---|---|---|"]
    for name, body in template["Resources"].items():
        if body["Type"] != "AWS::Serverless::Function":
            continue
        for statement, condition in _statements(template, body):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            sid = statement.get("Sid", "") + (f" (if {condition})" if condition else "")
            rows.append(
                f"| {name.removesuffix('Function')} | {sid} | "
                f"{'<br>'.join(f'`{a}`' for a in actions)} | "
                f"{_resource(statement['Resource']).replace('|', '/')} |"
            )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
