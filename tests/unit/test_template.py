"""template.yaml against the code: the table the models expect, buckets that are
private, encrypted and TLS-only, a layer that builds where Lambda looks, and function
settings that the settings model accepts."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from shelflife.adapters.table.models import IMAGE_SK, TTL_ATTRIBUTE, table_schema
from shelflife.domain.records import IMAGES_PREFIX
from shelflife.domain.settings import Settings
from shelflife.domain.uploads import INCOMING_PREFIX, QUARANTINE_PREFIX
from tests.support.template import ROOT, load_template, resource

ACCOUNT, REGION = "123456789012", "eu-west-1"
# Parameters given other values than their defaults (tests set them with monkeypatch).
GIVEN: dict[str, str] = {}


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
            return GIVEN.get(name, template["Parameters"][name].get("Default", ""))
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        named = template["Resources"].get(name, {}).get("Properties", {}).get("BucketName")
        return resolve(named) if named else f"shelflife-{name.lower()}"
    if "Fn::GetAtt" in value:
        target, attribute = value["Fn::GetAtt"]
        return f"arn-of-{target}.{attribute}"
    if "Fn::Sub" in value:

        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if "." in name and not name.startswith("AWS::"):  # ${Resource.Attribute}
                return str(resolve({"Fn::GetAtt": name.split(".", 1)}))
            return str(resolve({"Ref": name}))

        return re.sub(r"\$\{([^}]+)\}", variable, value["Fn::Sub"])
    if "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        resolved = resolve(items)
        return separator.join(resolved if isinstance(resolved, list) else [resolved])
    if "Fn::If" in value:
        name, then, otherwise = value["Fn::If"]
        chosen = then if holds(template["Conditions"][name]) else otherwise
        # AWS::NoValue drops the item; statements keep their intrinsics for allowed().
        keep = chosen == {"Ref": "AWS::NoValue"} or (isinstance(chosen, dict) and "Sid" in chosen)
        return chosen if keep else resolve(chosen)
    raise AssertionError(f"resolve() does not know {value}")


def holds(condition: Any) -> bool:
    """A template condition, with the parameters' defaults."""
    if "Fn::Equals" in condition:
        left, right = resolve(condition["Fn::Equals"])
        return bool(left == right)
    if "Fn::Not" in condition:
        return not holds(condition["Fn::Not"][0])
    if "Fn::And" in condition:
        return all(holds(part) for part in condition["Fn::And"])
    if "Fn::Or" in condition:
        return any(holds(part) for part in condition["Fn::Or"])
    for key in ("Condition", "Fn::Condition"):  # !Condition, as the loader reads it
        if key in condition:
            return holds(load_template()["Conditions"][condition[key]])
    raise AssertionError(f"holds() does not know {condition}")


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
    }


# The table's indexes as the last release deployed them (name: key attributes and
# projection). CloudFormation updates a table's indexes one at a time: an update that
# adds and deletes, or changes an index in place, fails on every existing stack. Each
# landing on main is a release (users deploy main); update this after one ships. These
# are d37aaa9's (by_location dropped in 78540fa).
DEPLOYED_INDEXES = {
    "by_due": (("due_shard", "due_at"), "ALL"),
    "by_owner": (("owner", "uploaded_at"), "ALL"),
}


def test_an_update_changes_at_most_one_index_of_a_deployed_table() -> None:
    indexes = {
        index["IndexName"]: (
            tuple(key["AttributeName"] for key in index["KeySchema"]),
            index["Projection"]["ProjectionType"],
        )
        for index in resource("Table")["Properties"]["GlobalSecondaryIndexes"]
    }
    kept = indexes.keys() & DEPLOYED_INDEXES.keys()
    assert {name: indexes[name] for name in kept} == {
        name: DEPLOYED_INDEXES[name] for name in kept
    }, "an index cannot change in place"
    assert len(indexes.keys() ^ DEPLOYED_INDEXES.keys()) <= 1


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


@pytest.mark.parametrize("name", ["UploadBucket", "TempBucket", "HotBucket", "ColdBucket"])
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
    assert set(resources_of_type("AWS::S3::Bucket")) == {
        "UploadBucket",
        "TempBucket",
        "HotBucket",
        "ColdBucket",
    }


def test_the_layer_builds_the_package_for_the_functions_runtime() -> None:
    layer = resource("SharedLayer")
    runtime = load_template()["Globals"]["Function"]["Runtime"]

    assert layer["Properties"]["ContentUri"] == "layers/shelflife/"
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert load_template()["Globals"]["Function"]["Architectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


def test_keys_never_pass_through_the_template() -> None:
    # The R2/B2 keys live in an SSM SecureString the user creates (free, where a
    # Secrets Manager secret is $0.40 a month); the template only names it.
    template = load_template()
    assert not resources_of_type("AWS::SecretsManager::Secret")
    assert not any("Key" in name for name in template["Parameters"] if name != "R2AccountId")
    rule = template["Rules"]["KeysWhenOffAws"]
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CredentialsParameter"}, ""]}]
    }
    # Every choice that puts bytes on R2 or B2 is one the rule covers.
    covered = {item["Fn::Equals"][0]["Ref"] for item in rule["RuleCondition"]["Fn::Or"]}
    assert covered == {"HotBackend", "ServeBackend", "ColdBackend"}


@pytest.mark.parametrize(
    ("given", "needed"),
    [
        ({}, False),
        ({"HotBackend": "r2"}, True),
        ({"ColdBackend": "b2"}, True),
        ({"ServeBackend": "r2"}, True),
    ],
)
def test_functions_read_the_keys_only_when_a_tier_is_off_aws(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], needed: bool
) -> None:
    for name, value in {**given, "CredentialsParameter": "/shelflife/keys"}.items():
        monkeypatch.setitem(GIVEN, name, value)
    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shelflife/keys"
    for function in ("CapacityFunction", "LifecycleFunction", "CleanupFunction", "ApiFunction"):
        assert allowed(function, "ssm:GetParameter", parameter) is needed, function
        assert not allowed(function, "ssm:GetParameter", f"{parameter}-other"), function
    assert not allowed("IngestFunction", "ssm:GetParameter", parameter)
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    named = resolve(variables["SHELFLIFE_CREDENTIALS_PARAMETER"])
    assert named == ("/shelflife/keys" if needed else "")


def test_the_functions_environment_makes_valid_settings() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    environ = {name: str(resolve(value)) for name, value in variables.items()}

    settings = Settings.from_env(environ)

    assert settings.table_name == "shelflife-table"
    assert settings.temp.bucket == f"shelflife-temp-{ACCOUNT}-{REGION}"
    assert settings.upload_bucket == f"shelflife-upload-{ACCOUNT}-{REGION}"
    assert settings.hot.bucket == f"shelflife-hot-{ACCOUNT}-{REGION}"
    assert settings.cold.backend.value == "s3"
    assert settings.cold.bucket == f"shelflife-cold-{ACCOUNT}-{REGION}"
    assert settings.storage_class("cold") == "GLACIER_IR"
    assert not settings.credentials_parameter
    assert settings.serve is None  # ServeBackend=none: published photos stay in HOT
    assert environ["POWERTOOLS_SERVICE_NAME"] == "shelflife"


def test_with_serve_backend_r2_the_functions_serve_published_photos_from_r2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"ServeBackend": "r2", "CredentialsParameter": "/shelflife/keys"}.items():
        monkeypatch.setitem(GIVEN, name, value)
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    environ = {name: str(resolve(value)) for name, value in variables.items()}

    settings = Settings.from_env(environ)

    assert settings.serve is not None
    assert (settings.serve.backend.value, settings.serve.bucket) == (
        "r2",
        f"shelflife-serve-{ACCOUNT}",
    )
    assert settings.serve_published == "auto"
    assert settings.credentials_parameter == "/shelflife/keys"
    # Serving beside HOT on R2 would be HOT itself: the template refuses it.
    rule = load_template()["Rules"]["ServeBesideHot"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "HotBackend"}, "s3"]}


# ---- functions: least privilege, wiring ---------------------------------------------


def policy_statements(function: str) -> list[dict[str, Any]]:
    """The function's inline statements and those of the stack's managed policies it
    refers to (no AWS managed policies, no SAM policy templates)."""
    statements: list[dict[str, Any]] = []
    for policy in resource(function)["Properties"]["Policies"]:
        assert isinstance(policy, dict), "inline statements or the stack's own policies only"
        if "Ref" in policy:
            managed = resource(policy["Ref"])
            assert managed["Type"] == "AWS::IAM::ManagedPolicy"
            policy = managed["Properties"]["PolicyDocument"]
        assert "Statement" in policy, "inline statements or the stack's own policies only"
        for statement in policy["Statement"]:
            if "Fn::If" in statement:  # a statement only under a condition
                statement = resolve(statement)
                if statement == {"Ref": "AWS::NoValue"}:
                    continue
            statements.append(statement)
    return statements


def allowed(function: str, action: str, arn: str) -> bool:
    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    return any(
        action in listed(s["Action"])
        and any(
            fnmatch.fnmatchcase(arn, str(pattern)) for pattern in listed(resolve(s["Resource"]))
        )
        for s in policy_statements(function)
        if s["Effect"] == "Allow"
    )


@pytest.mark.parametrize(
    "function",
    ["IngestFunction", "CapacityFunction", "LifecycleFunction", "CleanupFunction", "ApiFunction"],
)
def test_no_function_gets_wildcard_actions_or_resources(function: str) -> None:
    for statement in policy_statements(function):
        actions = (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
        assert all("*" not in action for action in actions), statement
        resources = resolve(statement["Resource"])
        for arn in resources if isinstance(resources, list) else [resources]:
            assert arn != "*", statement
            assert not arn.endswith(":::*"), statement


def test_ingest_may_do_exactly_what_the_service_does() -> None:
    uploads = f"arn:aws:s3:::shelflife-upload-{ACCOUNT}-{REGION}"
    temp = f"arn:aws:s3:::shelflife-temp-{ACCOUNT}-{REGION}"
    photo = f"images/{'a' * 32}/{'b' * 64}.jpg"

    assert allowed("IngestFunction", "s3:GetObject", f"{uploads}/{INCOMING_PREFIX}alice/a.jpg")
    assert allowed("IngestFunction", "s3:DeleteObject", f"{uploads}/{INCOMING_PREFIX}alice/a.jpg")
    assert allowed("IngestFunction", "s3:PutObject", f"{uploads}/{QUARANTINE_PREFIX}alice/x/a.jpg")
    assert allowed("IngestFunction", "s3:PutObject", f"{temp}/{photo}")
    assert allowed("IngestFunction", "s3:PutObject", f"{temp}-1/{photo}")  # overflow bucket
    assert photo.startswith(IMAGES_PREFIX)
    # Not: overwriting uploads, deleting stored images, other buckets.
    assert not allowed("IngestFunction", "s3:PutObject", f"{uploads}/{INCOMING_PREFIX}alice/a.jpg")
    assert not allowed("IngestFunction", "s3:DeleteObject", f"{temp}/{photo}")
    assert not allowed(
        "IngestFunction", "s3:PutObject", f"arn:aws:s3:::shelflife-hot-{ACCOUNT}-{REGION}/{photo}"
    )
    assert not allowed("IngestFunction", "dynamodb:DeleteItem", "arn-of-Table.Arn")
    assert not allowed("IngestFunction", "dynamodb:Scan", "arn-of-Table.Arn")


def test_ingest_is_triggered_by_incoming_uploads_only_with_a_dead_letter_queue() -> None:
    properties = resource("IngestFunction")["Properties"]
    event = properties["Events"]["Upload"]

    assert event["Type"] == "S3"
    assert event["Properties"]["Bucket"] == {"Ref": "UploadBucket"}
    assert event["Properties"]["Filter"]["S3Key"]["Rules"] == [
        {"Name": "prefix", "Value": INCOMING_PREFIX}
    ]
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert resource("IngestDeadLetterQueue")["Properties"]["SqsManagedSseEnabled"] is True
    assert properties["CodeUri"] == "functions/ingest/"
    assert (ROOT / "functions" / "ingest" / "app.py").is_file()


OVERFLOW_SETUP = [
    "s3:CreateBucket",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPolicy",
    "s3:PutBucketTagging",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketCORS",
    "s3:GetBucketPolicy",
]


def test_capacity_may_do_exactly_what_the_service_does() -> None:
    table = "arn-of-Table.Arn"
    for tier in ("temp", "hot", "cold"):
        base = f"arn:aws:s3:::shelflife-{tier}-{ACCOUNT}-{REGION}"
        for action in OVERFLOW_SETUP:
            assert allowed("CapacityFunction", action, f"{base}-1"), (action, tier)
            assert allowed("CapacityFunction", action, f"{base}-12"), (action, tier)
            # Not the stack's own first bucket (CloudFormation owns its settings), not
            # another stack's or account's buckets.
            assert not allowed("CapacityFunction", action, base), (action, tier)
            assert not allowed("CapacityFunction", action, "arn:aws:s3:::someone-else-1")
    assert not allowed(
        "CapacityFunction", "s3:CreateBucket", f"arn:aws:s3:::shelflife-upload-{ACCOUNT}-{REGION}-1"
    )
    for action in ("dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert allowed("CapacityFunction", action, table)
    # A cleanup reads the bucket's records by a scan (there is no index by bucket).
    assert allowed("CapacityFunction", "dynamodb:Scan", table)
    for index in ("by_owner", "by_due"):
        assert not allowed("CapacityFunction", "dynamodb:Query", f"{table}/index/{index}")
    assert not allowed("CapacityFunction", "dynamodb:DeleteItem", table)
    # Objects are deleted by the cleanup function only (invariant 2).
    assert not allowed(
        "CapacityFunction", "s3:DeleteObject", f"arn:aws:s3:::shelflife-temp-{ACCOUNT}-{REGION}/x"
    )


def test_ingest_may_open_temp_overflow_buckets_only() -> None:
    temp = f"arn:aws:s3:::shelflife-temp-{ACCOUNT}-{REGION}"
    for action in OVERFLOW_SETUP:
        assert allowed("IngestFunction", action, f"{temp}-1"), action
        assert not allowed(
            "IngestFunction", action, f"arn:aws:s3:::shelflife-hot-{ACCOUNT}-{REGION}-1"
        )


def test_capacity_runs_on_its_schedule_and_alarms_watch_what_it_publishes() -> None:
    properties = resource("CapacityFunction")["Properties"]
    [event] = properties["Events"].values()
    assert event == {
        "Type": "Schedule",
        "Properties": {
            "Schedule": {"Ref": "CapacityCheckRate"},
            "Description": "shelflife capacity check",
        },
    }
    # The price book prices the default schedule's runs (issue 21: the stack's bill).
    rate = resolve({"Ref": "CapacityCheckRate"})
    amount, unit = re.fullmatch(r"rate\((\d+) (minutes|hours?)\)", rate).groups()  # type: ignore[union-attr]
    minutes = int(amount) * (60 if unit.startswith("hour") else 1)
    from shelflife.domain.pricebook import book

    assert book().stack.capacity.per_month == 30 * 24 * 60 // minutes
    assert properties["CodeUri"] == "functions/capacity/"
    assert (ROOT / "functions" / "capacity" / "app.py").is_file()
    # The capacity report states what the function publishes (measurements()).
    source = (ROOT / "layers" / "shelflife" / "shelflife" / "services" / "capacity.py").read_text()
    environment = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    for alarm in ("BucketFullAlarm", "OverflowFailedAlarm"):
        alarm_properties = resource(alarm)["Properties"]
        assert f'Measurement("{alarm_properties["MetricName"]}"' in source
        assert alarm_properties["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
        assert alarm_properties["Dimensions"] == [
            {"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}
        ]
        assert alarm_properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_lifecycle_may_do_exactly_what_the_service_does() -> None:
    table = "arn-of-Table.Arn"
    photo = f"images/{'a' * 32}/{'b' * 64}.jpg"
    temp = f"arn:aws:s3:::shelflife-temp-{ACCOUNT}-{REGION}"
    hot = f"arn:aws:s3:::shelflife-hot-{ACCOUNT}-{REGION}"
    cold = f"arn:aws:s3:::shelflife-cold-{ACCOUNT}-{REGION}"
    for bucket in (temp, f"{temp}-2", hot, f"{hot}-1", cold, f"{cold}-1"):
        assert allowed("LifecycleFunction", "s3:GetObject", f"{bucket}/{photo}"), bucket
        assert allowed("LifecycleFunction", "s3:ListBucket", bucket), bucket
    for bucket in (hot, f"{hot}-1", cold, f"{cold}-1"):
        assert allowed("LifecycleFunction", "s3:PutObject", f"{bucket}/{photo}"), bucket
    for action in OVERFLOW_SETUP:
        assert allowed("LifecycleFunction", action, f"{hot}-1"), action
        assert allowed("LifecycleFunction", action, f"{cold}-1"), action
        assert not allowed("LifecycleFunction", action, f"{temp}-1"), action
    # Nothing goes back into TEMP; objects are deleted by the cleanup function only.
    assert not allowed("LifecycleFunction", "s3:PutObject", f"{temp}/{photo}")
    assert not allowed("LifecycleFunction", "s3:DeleteObject", f"{hot}/{photo}")
    assert not allowed("LifecycleFunction", "s3:DeleteObject", f"{temp}/{photo}")
    assert not allowed("LifecycleFunction", "s3:DeleteObject", f"{cold}/{photo}")
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"):
        assert allowed("LifecycleFunction", action, table), action
    assert allowed("LifecycleFunction", "dynamodb:Query", f"{table}/index/by_due")
    assert not allowed("LifecycleFunction", "dynamodb:Query", f"{table}/index/by_owner")
    assert not allowed("LifecycleFunction", "dynamodb:Scan", table)
    assert allowed("LifecycleFunction", "sqs:SendMessage", "arn-of-LifecycleContinuationQueue.Arn")


def test_lifecycle_runs_daily_at_3_and_continues_through_its_queue() -> None:
    properties = resource("LifecycleFunction")["Properties"]
    events = properties["Events"]
    assert events["Daily"]["Properties"]["Schedule"] == "cron(0 3 * * ? *)"
    continuation = events["Continuation"]["Properties"]
    assert continuation["Queue"] == {"Fn::GetAtt": ["LifecycleContinuationQueue", "Arn"]}
    assert continuation["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = properties["Environment"]["Variables"]
    assert Settings.from_env(
        {
            "SHELFLIFE_LIFECYCLE_CONTINUATION_QUEUE_URL": str(
                resolve(next(iter(variables.values())))
            )
        },
        table_name="t-1",
        temp={"bucket": "temp-bucket"},
        hot={"bucket": "hot-bucket"},
        cold={"bucket": "cold-bucket"},
    ).lifecycle_continuation_queue_url
    queue = resource("LifecycleContinuationQueue")["Properties"]
    # A message is not handed out again while its invocation may still run.
    assert queue["VisibilityTimeout"] >= properties["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["LifecycleDeadLetterQueue", "Arn"]
    }
    for name in ("LifecycleContinuationQueue", "LifecycleDeadLetterQueue"):
        assert resource(name)["Properties"]["SqsManagedSseEnabled"] is True
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["LifecycleDeadLetterQueue", "Arn"]}
    # The sweep's report states what the function publishes (METRICS, measurements()).
    source = (ROOT / "layers" / "shelflife" / "shelflife" / "services" / "lifecycle.py").read_text()
    alarm = resource("LifecycleFailuresAlarm")["Properties"]
    assert f'"{alarm["MetricName"]}"' in source
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_cleanup_may_do_exactly_what_the_service_does() -> None:
    table = "arn-of-Table.Arn"
    photo = f"images/{'a' * 32}/{'b' * 64}.jpg"
    temp = f"arn:aws:s3:::shelflife-temp-{ACCOUNT}-{REGION}"
    hot = f"arn:aws:s3:::shelflife-hot-{ACCOUNT}-{REGION}"
    cold = f"arn:aws:s3:::shelflife-cold-{ACCOUNT}-{REGION}"
    for bucket in (temp, f"{temp}-3", hot, f"{hot}-1", cold, f"{cold}-2"):
        assert allowed("CleanupFunction", "s3:DeleteObject", f"{bucket}/{photo}"), bucket
        assert not allowed("CleanupFunction", "s3:PutObject", f"{bucket}/{photo}"), bucket
    uploads = f"arn:aws:s3:::shelflife-upload-{ACCOUNT}-{REGION}"
    assert not allowed("CleanupFunction", "s3:DeleteObject", f"{uploads}/{INCOMING_PREFIX}a.jpg")
    assert not allowed("CleanupFunction", "s3:DeleteObject", f"{temp}/{QUARANTINE_PREFIX}a.jpg")
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"):
        assert allowed("CleanupFunction", action, table), action
    # The reconciler reads a bucket's records by a scan (there is no index by bucket).
    assert allowed("CleanupFunction", "dynamodb:Scan", table)
    for index in ("by_owner", "by_due"):
        assert not allowed("CleanupFunction", "dynamodb:Query", f"{table}/index/{index}")
    # The stream path never changes image records; a reconcile fix marks them lost and
    # repairs counters (UpdateItem). Nothing here removes a record.
    assert not allowed("CleanupFunction", "dynamodb:DeleteItem", table)
    # The reconciler lists the buckets on S3 and HEADs their images, and that is all.
    for bucket in (temp, f"{temp}-3", hot, cold):
        assert allowed("CleanupFunction", "s3:ListBucket", bucket), bucket
        assert allowed("CleanupFunction", "s3:GetObject", f"{bucket}/{photo}"), bucket
    assert not allowed("CleanupFunction", "s3:ListBucket", uploads)
    stream = f"{table}/stream/2026-11-21T12:00:00.000"
    for action in ("GetRecords", "GetShardIterator", "DescribeStream", "ListStreams"):
        assert allowed("CleanupFunction", f"dynamodb:{action}", stream), action
    assert not allowed(
        "CleanupFunction", "dynamodb:GetRecords", "arn:aws:dynamodb:::table/x/stream/y"
    )
    queue = "arn-of-CleanupDeadLetterQueue.Arn"
    for action in ("SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        assert allowed("CleanupFunction", f"sqs:{action}", queue), action
    assert not allowed("CleanupFunction", "sqs:SendMessage", "arn-of-IngestDeadLetterQueue.Arn")
    # The stream reaches the function through its own mapping, so SAM adds no managed
    # policy that reads every stream in the account.
    assert "Events" not in resource("CleanupFunction")["Properties"]


def test_cleanup_is_driven_by_the_stream_with_bounded_retries_and_a_dead_letter_queue() -> None:
    mapping = resource("CleanupStreamMapping")["Properties"]
    function = resource("CleanupFunction")["Properties"]

    assert mapping["FunctionName"] == {"Ref": "CleanupFunction"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    # More retries than the function's own attempts, so the function dead-letters a
    # change with its reason before Lambda gives up on the batch.
    assert mapping["MaximumRetryAttempts"] > Settings.model_fields["cleanup_max_attempts"].default
    # Records Lambda gives up on stay in the stream (24 h) long enough to be redriven.
    assert 0 < mapping["MaximumRecordAgeInSeconds"] <= 12 * 3600
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["CleanupDeadLetterQueue", "Arn"]}
    assert function["Environment"]["Variables"] == {
        "SHELFLIFE_CLEANUP_DEAD_LETTER_QUEUE_URL": {"Ref": "CleanupDeadLetterQueue"}
    }
    for name in ("CleanupDeadLetterQueue",):
        queue = resource(name)["Properties"]
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["VisibilityTimeout"] >= function["Timeout"]
    patterns = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert {p["eventName"][0] for p in patterns} == {"MODIFY", "REMOVE"}
    assert all(p["dynamodb"]["Keys"] == {"sk": {"S": [IMAGE_SK]}} for p in patterns)
    assert (ROOT / "functions" / "cleanup" / "app.py").is_file()


def test_cleanup_alarms_watch_the_dead_letters_and_what_the_function_publishes() -> None:
    # A release states what the function publishes (OUTCOME_METRICS, measurements());
    # the handler counts the retries.
    source = (ROOT / "layers" / "shelflife" / "shelflife" / "services" / "cleanup.py").read_text()
    source += (ROOT / "functions" / "cleanup" / "app.py").read_text()
    dead_letters = resource("CleanupDeadLettersAlarm")["Properties"]
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["CleanupDeadLetterQueue", "QueueName"]}}
    ]
    assert (dead_letters["Threshold"], dead_letters["ComparisonOperator"]) == (
        0,
        "GreaterThanThreshold",
    )
    defaults = Settings.model_fields
    for alarm, setting in (
        ("CleanupFailuresWarningAlarm", "cleanup_warning_failed_per_hour"),
        ("CleanupPendingWarningAlarm", "cleanup_warning_pending"),
    ):
        properties = resource(alarm)["Properties"]
        assert f'"{properties["MetricName"]}"' in source, alarm
        assert properties["Threshold"] == defaults[setting].default, alarm
        assert properties["Period"] == 3600
    for alarm in (
        "CleanupDeadLettersAlarm",
        "CleanupFailuresWarningAlarm",
        "CleanupIteratorAgeAlarm",
    ):
        assert resource(alarm)["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_api_may_do_exactly_what_the_routes_do() -> None:
    table = "arn-of-Table.Arn"
    uploads = f"arn:aws:s3:::shelflife-upload-{ACCOUNT}-{REGION}"
    temp = f"arn:aws:s3:::shelflife-temp-{ACCOUNT}-{REGION}"
    hot = f"arn:aws:s3:::shelflife-hot-{ACCOUNT}-{REGION}"
    cold = f"arn:aws:s3:::shelflife-cold-{ACCOUNT}-{REGION}"
    photo = f"images/{'a' * 32}/{'b' * 64}.jpg"
    # Presigned POSTs carry the signer's rights: incoming/ of the upload bucket only.
    assert allowed("ApiFunction", "s3:PutObject", f"{uploads}/{INCOMING_PREFIX}alice/x-a.jpg")
    assert not allowed("ApiFunction", "s3:PutObject", f"{uploads}/{QUARANTINE_PREFIX}a.jpg")
    assert not allowed("ApiFunction", "s3:PutObject", f"{temp}/{photo}")
    for bucket in (temp, f"{temp}-2", hot, cold):
        assert allowed("ApiFunction", "s3:GetObject", f"{bucket}/{photo}"), bucket
        # Objects are deleted by the cleanup function and the reconciler only.
        assert not allowed("ApiFunction", "s3:DeleteObject", f"{bucket}/{photo}"), bucket
    for action in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query"):
        assert allowed("ApiFunction", f"dynamodb:{action}", table), action
    assert not allowed("ApiFunction", "dynamodb:DeleteItem", table)
    # An admin's export of every record scans the table (reads only).
    assert allowed("ApiFunction", "dynamodb:Scan", table)
    for index in ("by_owner", "by_due"):
        assert allowed("ApiFunction", "dynamodb:Query", f"{table}/index/{index}"), index
    for function in ("LifecycleFunction", "CapacityFunction", "CleanupFunction"):
        assert allowed("ApiFunction", "lambda:InvokeFunction", f"arn-of-{function}.Arn")
    assert not allowed("ApiFunction", "lambda:InvokeFunction", "arn-of-IngestFunction.Arn")
    queue = "arn-of-CleanupDeadLetterQueue.Arn"
    assert allowed("ApiFunction", "sqs:GetQueueAttributes", queue)
    assert not allowed("ApiFunction", "sqs:ReceiveMessage", queue)


def test_the_http_api_checks_tokens_on_every_route_but_health_and_the_document() -> None:
    api = resource("Api")["Properties"]
    auth = api["Auth"]
    jwt = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert jwt["JwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": [{"Ref": "JwtAudience"}],
    }
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    parameters = load_template()["Parameters"]
    assert "Default" not in parameters["JwtIssuer"]
    assert "Default" not in parameters["JwtAudience"]
    events = resource("ApiFunction")["Properties"]["Events"]
    open_routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in events.values()
        if e["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    }
    assert open_routes == {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/gallery"),
    }
    assert all(
        e["Type"] == "HttpApi" and e["Properties"]["ApiId"] == {"Ref": "Api"}
        for e in events.values()
    )
    # The function answers open routes the same way (functions/api/common.py).
    source = (ROOT / "functions" / "api" / "common.py").read_text()
    public = ("/health", "/openapi.json", "/docs", "/gallery")
    found = re.search(r"PUBLIC_ROUTES = \{(.*?)\}\n", source, re.S)
    assert found is not None
    assert re.findall(r'\("GET", "([^"]+)"\)', found[1]) == list(public)


def test_the_api_function_is_told_where_its_admin_runs_happen() -> None:
    variables = {
        **load_template()["Globals"]["Function"]["Environment"]["Variables"],
        **resource("ApiFunction")["Properties"]["Environment"]["Variables"],
    }
    settings = Settings.from_env({name: str(resolve(value)) for name, value in variables.items()})
    assert settings.lifecycle_function_name == "shelflife-lifecyclefunction"
    assert settings.capacity_function_name == "shelflife-capacityfunction"
    assert settings.cleanup_function_name == "shelflife-cleanupfunction"
    assert settings.admin_group == "admin"
    assert settings.cleanup_dead_letter_queue_url == "shelflife-cleanupdeadletterqueue"
    # API Gateway answers after 30 seconds whatever the function does.
    assert resource("ApiFunction")["Properties"]["Timeout"] < 30
    assert settings.api_run_seconds < resource("ApiFunction")["Properties"]["Timeout"]


# ---- security checks ------------------------------------------------------------------

# The checkov checks the template skips, reviewed (docs/RELIABILITY.md says why).
REVIEWED_SKIPS = {
    "CKV_AWS_115",
    "CKV_AWS_116",
    "CKV_AWS_117",
    "CKV_AWS_173",
    "CKV_AWS_18",
    "CKV_AWS_21",
    "CKV_AWS_27",
    "CKV_AWS_119",
    "CKV_AWS_158",
}


def test_every_security_check_skipped_says_why_and_was_reviewed() -> None:
    seen = set()
    for name, body in load_template()["Resources"].items():
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert set(skip) == {"id", "comment"}, name
            assert len(skip["comment"].split()) >= 8, (name, skip["id"])
            seen.add(skip["id"])
    assert seen == REVIEWED_SKIPS
    reliability = (ROOT / "docs" / "RELIABILITY.md").read_text()
    assert all(check in reliability for check in REVIEWED_SKIPS)


def test_the_iam_table_in_the_docs_is_the_templates() -> None:
    from shelflife_tools.iam import markdown

    text = (ROOT / "docs" / "RELIABILITY.md").read_text()
    table = text.split("<!-- iam:begin -->\n", 1)[1].split("<!-- iam:end -->", 1)[0]
    assert table == markdown(), "run python -m shelflife_tools.iam and paste the table"


def test_by_default_the_stack_pays_for_no_metric_trace_or_alarm() -> None:
    # Issue 21, part 4: custom metrics ($0.30 each a month), X-Ray traces and alarms
    # ($0.10 each) cost more than a small deployment's whole storage; Monitoring=full
    # turns all of them on.
    template = load_template()
    conditions = template["Conditions"]
    assert template["Parameters"]["Monitoring"]["Default"] == "lean"
    assert not holds(conditions["FullMonitoring"])
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    environment = {name: resolve(value) for name, value in variables.items()}
    assert environment["POWERTOOLS_METRICS_DISABLED"] == "true"
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert resolve(template["Globals"]["Function"]["Tracing"]) == "PassThrough"
    watchers = {
        **resources_of_type("AWS::CloudWatch::Alarm"),
        **resources_of_type("AWS::SNS::Topic"),
    }
    assert len(watchers) == 9
    for name, body in watchers.items():
        assert body.get("Condition") == "FullMonitoring", name
    assert template["Outputs"]["AlarmTopicArn"]["Condition"] == "FullMonitoring"
    # With Monitoring=full: everything on, as before.
    full = template["Globals"]["Function"]
    assert full["Tracing"]["Fn::If"][1] == "Active"
    assert full["Environment"]["Variables"]["POWERTOOLS_METRICS_DISABLED"]["Fn::If"][1] == "false"
