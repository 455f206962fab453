"""The template's resources on the local stack: its intrinsic functions resolved
(``Resolver``), its table, queues and buckets created on moto, and the functions'
environment as Lambda would set it, with what differs locally."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

ACCOUNT = "123456789012"
REGION = "eu-west-1"
# Capacity of each tier's buckets locally: small enough that the dashboard shows fill.
LOCAL_QUOTA_BYTES = 64 * 1024**2


def resources_of(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


class Resolver:
    """Just enough of CloudFormation's intrinsic functions for the template's values:
    Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::If (conditions on parameters: Equals, Not,
    And, Or, Condition)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        refs: Mapping[str, str],
        attributes: Mapping[str, str],
    ) -> None:
        self.template = template
        self.parameters = {
            name: str(parameters.get(name, spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        self.refs = refs
        self.attributes = attributes

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            target, attribute = value["Fn::GetAtt"]
            return self.attributes.get(f"{target}.{attribute}", "")
        if "Fn::Sub" in value:
            return re.sub(
                r"\$\{([^}]+)\}", lambda m: str(self.variable(m.group(1))), value["Fn::Sub"]
            )
        if "Fn::Join" in value:
            separator, items = value["Fn::Join"]
            resolved = self(items)
            return separator.join(
                str(i) for i in (resolved if isinstance(resolved, list) else [resolved])
            )
        if "Fn::If" in value:
            condition, yes, no = value["Fn::If"]
            return self(yes) if self.condition(condition) else self(no)
        return {key: self(item) for key, item in value.items()}

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": os.environ.get("AWS_DEFAULT_REGION", REGION),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "shelflife-local",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            kind = self.template["Parameters"][name].get("Type", "String")
            text = self.parameters[name]
            if kind == "CommaDelimitedList":
                return [item for item in text.split(",") if item]
            return text
        return self.refs.get(name, name)

    def variable(self, name: str) -> Any:
        if "." in name and not name.startswith("AWS::"):
            return self.attributes.get(name, "")
        return self.ref(name)

    def condition(self, name: str) -> bool:
        spec = self.template.get("Conditions", {})[name]
        return bool(self._evaluate(spec))

    def _evaluate(self, spec: Any) -> Any:
        if isinstance(spec, dict):
            if "Fn::Equals" in spec:
                left, right = (self._evaluate(item) for item in spec["Fn::Equals"])
                return left == right
            if "Fn::Not" in spec:
                return not self._evaluate(spec["Fn::Not"][0])
            if "Fn::And" in spec:
                return all(self._evaluate(item) for item in spec["Fn::And"])
            if "Fn::Or" in spec:
                return any(self._evaluate(item) for item in spec["Fn::Or"])
            for key in ("Condition", "Fn::Condition"):  # !Condition, as the loader reads it
                if key in spec:
                    return self.condition(spec[key])
        return self(spec)


# ---- functions ---------------------------------------------------------------------


def create_resources(
    template: dict[str, Any],
    template_path: Path,
    parameters: Mapping[str, Any],
    endpoint: str,
    queues: dict[str, str],
) -> Resolver:
    """The template's table, queues and buckets on moto (``queues`` gets each queue's
    URL by logical name); the resolver answers the template's Ref and GetAtt for them."""
    from shelflife.adapters.backends import S3Backend
    from shelflife.domain.storage import BucketPolicy
    from shelflife_tools.template import create_table_from_template

    refs: dict[str, str] = {}
    attributes: dict[str, str] = {}
    resolver = Resolver(template, parameters, refs, attributes)
    table = "shelflife-local"
    create_table_from_template(table, template=template_path)
    refs["Table"] = table
    description = boto3.client("dynamodb").describe_table(TableName=table)["Table"]
    attributes["Table.Arn"] = description["TableArn"]
    attributes["Table.StreamArn"] = description["LatestStreamArn"]
    audit = f"{table}-audit"
    create_table_from_template(audit, template=template_path, logical="AuditTable")
    refs["AuditTable"] = audit
    audit_arn = boto3.client("dynamodb").describe_table(TableName=audit)["Table"]["TableArn"]
    attributes["AuditTable.Arn"] = audit_arn
    sqs = boto3.client("sqs")
    declared = resources_of(template, "AWS::SQS::Queue")
    # Dead-letter targets first, so redrive policies can name them.
    for name in sorted(
        declared, key=lambda n: "RedrivePolicy" in declared[n].get("Properties", {})
    ):
        properties = declared[name].get("Properties", {})
        queue_attributes: dict[Any, str] = {
            key: str(properties[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod")
            if key in properties
        }
        if "RedrivePolicy" in properties:
            queue_attributes["RedrivePolicy"] = json.dumps(resolver(properties["RedrivePolicy"]))
        url = sqs.create_queue(QueueName=f"shelflife-{name}", Attributes=queue_attributes)[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        refs[name] = url
        attributes[f"{name}.Arn"] = arn
        attributes[f"{name}.QueueName"] = f"shelflife-{name}"
        queues[name] = url
    s3 = S3Backend(region=REGION, endpoint_url=endpoint)
    for name, body in resources_of(template, "AWS::S3::Bucket").items():
        bucket = str(resolver(body["Properties"]["BucketName"]))
        tier = name.removesuffix("Bucket").lower()
        s3.create_bucket(bucket, BucketPolicy(tier=tier))
        cors = resolver(body["Properties"].get("CorsConfiguration"))
        if cors:  # the upload bucket's, for uploads from a page (the gallery)
            # CloudFormation's names for S3's.
            names = {"MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders", "Id": "ID"}
            rules = [{names.get(k, k): v for k, v in rule.items()} for rule in cors["CorsRules"]]
            client: Any = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
            client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        refs[name] = bucket
    for name in template["Resources"]:
        if template["Resources"][name]["Type"] == "AWS::Serverless::Function":
            refs[name] = name
            attributes[f"{name}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return resolver


def function_environment(
    template: dict[str, Any], resolver: Resolver, endpoint: str
) -> dict[str, str | None]:
    """Every function's environment variables, resolved, with what differs locally
    (no keys' parameter, B2 simulated, S3 and R2 on moto, small quotas, no X-Ray); None:
    unset."""
    variables: dict[str, Any] = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for body in resources_of(template, "AWS::Serverless::Function").values():
        variables.update(body["Properties"].get("Environment", {}).get("Variables", {}))
    environment: dict[str, str | None] = {}
    for name, value in variables.items():
        resolved = resolver(value)
        environment[name] = str(resolved) if resolved not in (None, "") else None
    environment.update(
        {
            # No parameter store locally: S3 needs no keys, B2 is simulated.
            "SHELFLIFE_CREDENTIALS_PARAMETER": None,
            "SHELFLIFE_B2_SIMULATED": "true",
            "SHELFLIFE_S3_ENDPOINT_URL": endpoint,
            # R2 on the same moto server (an S3 API, as R2's is), with keys it accepts:
            # its presigned URLs open locally too.
            "SHELFLIFE_R2_ENDPOINT_URL": endpoint,
            "SHELFLIFE_R2_ACCOUNT_ID": "local",
            "SHELFLIFE_R2_ACCESS_KEY_ID": "local",
            "SHELFLIFE_R2_SECRET_ACCESS_KEY": "local",
            "SHELFLIFE_TEMP_QUOTA_BYTES": str(LOCAL_QUOTA_BYTES),
            "SHELFLIFE_HOT_QUOTA_BYTES": str(LOCAL_QUOTA_BYTES),
            "SHELFLIFE_COLD_QUOTA_BYTES": str(LOCAL_QUOTA_BYTES),
            # No X-Ray daemon here. Metrics stay on: their EMF lines go to the
            # function's log file, as in Lambda.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    return environment
