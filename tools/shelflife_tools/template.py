"""Reading template.yaml, so tests and the local stack build exactly what the template
declares."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

# The project's folder: the tools live in <root>/tools/shelflife_tools.
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, ...) read as the long
    form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)
    return document


def resource(name: str, template: Path = TEMPLATE) -> dict[str, Any]:
    found: dict[str, Any] = load_template(template)["Resources"][name]
    return found


def create_table_from_template(
    table_name: str,
    *,
    endpoint_url: str | None = None,
    template: Path = TEMPLATE,
    logical: str = "Table",
) -> None:
    """Create a table as template.yaml declares it (``logical``: the images' table or
    the ``AuditTable``), in moto or the local stack."""
    import boto3

    properties: Any = resource(logical, template)["Properties"]
    client = boto3.client("dynamodb", endpoint_url=endpoint_url)
    stream = properties.get("StreamSpecification")
    options: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": properties["BillingMode"],
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
    }
    if properties.get("GlobalSecondaryIndexes"):
        options["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if stream:
        options["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    client.create_table(**options)
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
    )
