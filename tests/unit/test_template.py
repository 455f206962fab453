"""template.yaml against the code: the table the models expect, buckets that are
private, encrypted and TLS-only, a layer that builds where Lambda looks, and function
settings that the settings model accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shelflife.settings import Settings
from shelflife.table.models import TTL_ATTRIBUTE, table_schema
from tests.support.template import load_template, resource

ACCOUNT, REGION = "123456789012", "eu-west-1"


def resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: body for name, body in load_template()["Resources"].items() if body["Type"] == kind
    }


def resolve(value: Any) -> Any:
    """Just enough of CloudFormation to evaluate the functions' environment with the
    parameters' defaults."""
    template = load_template()
    if isinstance(value, list):
        return [resolve(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if name in template.get("Parameters", {}):
            return template["Parameters"][name].get("Default", "")
        return {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION}.get(
            name, f"shelflife-{name.lower()}"
        )
    if "Fn::Sub" in value:
        return re.sub(
            r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)})), value["Fn::Sub"]
        )
    if "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        resolved = resolve(items)
        return separator.join(resolved if isinstance(resolved, list) else [resolved])
    raise AssertionError(f"resolve() does not know {value}")


def test_table_keys_attributes_and_indexes_match_the_models() -> None:
    properties = resource("Table")["Properties"]
    expected = table_schema()

    assert properties["KeySchema"] == expected["KeySchema"]
    assert (
        sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"])
        == (expected["AttributeDefinitions"])
    )
    assert (
        sorted(properties["GlobalSecondaryIndexes"], key=lambda i: i["IndexName"])
        == (expected["GlobalSecondaryIndexes"])
    )
    assert {index["IndexName"] for index in expected["GlobalSecondaryIndexes"]} == {
        "by_due",
        "by_owner",
        "by_hash",
    }


def test_table_streams_both_images_expires_records_and_keeps_backups() -> None:
    table = resource("Table")
    properties = table["Properties"]

    assert properties["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("name", ["UploadBucket", "TempBucket", "HotBucket"])
def test_buckets_are_private_encrypted_tls_only_and_kept(name: str) -> None:
    bucket = resource(name)
    properties = bucket["Properties"]
    policies = [
        body["Properties"]["PolicyDocument"]["Statement"]
        for body in resources_of_type("AWS::S3::BucketPolicy").values()
        if body["Properties"]["Bucket"] == {"Ref": name}
    ]

    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any(
        r.get("AbortIncompleteMultipartUpload")
        for r in properties["LifecycleConfiguration"]["Rules"]
    )
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    (statements,) = policies
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_every_bucket_in_the_template_is_checked() -> None:
    assert set(resources_of_type("AWS::S3::Bucket")) == {"UploadBucket", "TempBucket", "HotBucket"}


def test_the_layer_builds_the_package_for_the_functions_runtime() -> None:
    layer = resource("SharedLayer")
    runtime = load_template()["Globals"]["Function"]["Runtime"]

    assert layer["Properties"]["ContentUri"] == "layers/shelflife/"
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert load_template()["Globals"]["Function"]["Architectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


@pytest.mark.parametrize(
    "parameter", ["R2AccessKeyId", "R2SecretAccessKey", "B2ApplicationKeyId", "B2ApplicationKey"]
)
def test_credentials_are_never_echoed(parameter: str) -> None:
    assert load_template()["Parameters"][parameter]["NoEcho"] is True


def test_the_functions_environment_makes_valid_settings() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    environ = {name: str(resolve(value)) for name, value in variables.items()}

    settings = Settings.from_env(environ)

    assert settings.table_name == "shelflife-table"
    assert settings.temp.bucket == "shelflife-tempbucket"
    assert settings.hot.bucket == f"shelflife-hot-{ACCOUNT}-{REGION}"
    assert settings.cold.backend.value == "b2"
    assert environ["POWERTOOLS_SERVICE_NAME"] == "shelflife"
