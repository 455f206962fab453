"""The local stack: every function of template.yaml on its real handler, in this
process, with the event sources the template declares played the way Lambda plays them.

- moto's server on 127.0.0.1, in a process of its own, serves S3, DynamoDB (with
  streams) and SQS; every boto3 and pynamodb client of the process goes there
  (``AWS_ENDPOINT_URL``); B2 is b2sdk's in-memory simulator (``SHELFLIFE_B2_SIMULATED``).
- Resources come from the template: the tables (the images' with its keys, indexes,
  stream and TTL; the audit trail's), the buckets,
  the queues; the first bucket of each tier that the template does not create (HOT on
  R2, COLD on B2) is made at the provider as the operator would.
- Event sources, also from the template: the upload bucket's ObjectCreated events (S3
  notifications into a local queue, polled, delivered as Lambda's asynchronous S3
  invocation with its retries and on-failure queue), SQS event sources (partial batch
  responses), the table's stream through each of its mappings, cleanup's and
  audit's, each at its own position (filters, batches, retries, bisection, on-failure
  queue), the schedules on the stack's clock, and the
  HTTP API on 127.0.0.1 as HTTP API v2 events with a local JWT issuer.

Everything the template does not say (ports, the clock, where the token secret lives)
is an argument. ``pump()`` delivers what is waiting; ``serve()`` pumps in a thread.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from shelflife.domain import clock
from shelflife_tools.local import powertools_quirks
from shelflife_tools.local.context import LocalContext
from shelflife_tools.local.downloads import B2_DOWNLOADS, b2_download
from shelflife_tools.local.events import S3Source, Schedule, SqsSource
from shelflife_tools.local.functions import FunctionOutput, LocalFunction
from shelflife_tools.local.gateway import LocalGateway
from shelflife_tools.local.moto_process import MotoProcess
from shelflife_tools.local.resources import (
    ACCOUNT,
    REGION,
    Resolver,
    create_resources,
    function_environment,
    resources_of,
)
from shelflife_tools.local.tokens import AUDIENCE, ISSUER, TokenIssuer
from shelflife_tools.template import TEMPLATE, load_template

logger = logging.getLogger("shelflife.local")

# Parameters the local stack gives the template (the rest keep their defaults).
LOCAL_PARAMETERS = {
    "JwtIssuer": ISSUER,
    "JwtAudience": AUDIENCE,
    # The gateway's own pages (the gallery) upload straight to the upload bucket.
    "CorsAllowedOrigins": "http://127.0.0.1:*,http://localhost:*",
}
Handler = Callable[[dict[str, Any], Any], Any]


# ---- the stack -----------------------------------------------------------------------


class LocalStack:
    def __init__(
        self,
        *,
        template: Path = TEMPLATE,
        api_port: int = 3000,
        moto_port: int = 0,
        folder: Path | None = None,
        start_at: datetime | None = None,
        parameters: Mapping[str, str] | None = None,
        state: Path | None = None,
    ) -> None:
        self.template_path = template
        self.root = template.parent
        self.template = load_template(template)
        self.api_port = api_port
        self.moto_port = moto_port
        self.folder = folder or (self.root / ".shelflife-local")
        self.start_at = start_at
        # Where the stack's state is kept between runs (None: memory only).
        self.state = state
        self.parameters = {**LOCAL_PARAMETERS, **(parameters or {})}
        self.tokens = TokenIssuer.in_folder(self.folder)
        self.functions: dict[str, LocalFunction] = {}
        self.schedules: list[Schedule] = []
        self._next_due: dict[Schedule, datetime] = {}
        self.sqs_sources: list[SqsSource] = []
        self.s3_sources: list[S3Source] = []
        self.queues: dict[str, str] = {}  # logical id -> URL
        self.environment: dict[str, str] = {}
        self.gateway: LocalGateway | None = None
        self._server: MotoProcess | None = None
        self._started = False
        self._pump_lock = threading.Lock()
        self._serving = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_environ: dict[str, str | None] = {}
        # The table's stream mappings (cleanup's, audit's), each at its own position.
        self.streams: list[Any] = []
        self.endpoint = ""
        self._sqs_client: Any = None
        self.output: FunctionOutput | None = None
        self._terminal: TextIO = sys.stdout

    # ---- life ------------------------------------------------------------------------

    def start(self) -> LocalStack:
        from shelflife.adapters.backends import B2Backend

        B2Backend.drop_shared_simulator()
        # Powertools says so when an invocation had no metric to publish; locally noise.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        # A process of its own, started afresh: a new stack starts empty.
        self._server = MotoProcess(port=self.moto_port)
        self.endpoint = self._server.start()
        try:
            self._start_on(self.endpoint)
        except BaseException:
            self.stop()  # no server left behind; nothing saved over the state
            raise
        self._started = True
        return self

    def _start_on(self, endpoint: str) -> None:
        self._terminal = sys.stdout
        self.output = FunctionOutput(sys.stdout, self.folder / "logs")
        sys.stdout = self.output
        if self.start_at is not None:
            clock.set_clock(self.start_at)
        self._set_environ(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": endpoint,
                # botocore would send stream calls to an account endpoint moto lacks.
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            }
        )
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            self._set_environ({name: None})
        resolver = create_resources(
            self.template, self.template_path, self.parameters, self.endpoint, self.queues
        )
        environment = function_environment(self.template, resolver, self.endpoint)
        self.environment = {k: v for k, v in environment.items() if v is not None}
        self._set_environ(environment)
        self._load_functions(resolver)
        self._create_first_buckets()
        self._restore()
        self._wire_event_sources(resolver)
        self._start_gateway(resolver)

    def stop(self) -> None:
        started, self._started = self._started, False
        self._serving.clear()
        if self._thread is not None:
            # The delivery in progress finishes first: a snapshot taken mid-move would
            # not be a state the stack was ever in.
            self._thread.join()
        if self.state is not None and started:
            # Only a stack that started saves: a half-started one would save less than
            # it restored.
            self.drain()
            self._snapshot().save(*self._stores())
        if self.gateway is not None:
            self.gateway.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None
        for module_name in list(sys.modules):
            if module_name.startswith("functions.") and module_name.endswith(".app"):
                sys.modules.pop(module_name, None)
        if self.output is not None:
            sys.stdout = self._terminal
            # Loggers made while the stack ran (the functions') write where print does.
            for logger_ in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
                for handler in getattr(logger_, "handlers", []):
                    if isinstance(handler, logging.StreamHandler) and handler.stream is self.output:
                        handler.setStream(self._terminal)
            self.output.close_files()
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        clock.set_clock()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve(self, interval: float = 0.2) -> None:
        """Deliver events in a background thread until ``stop``."""
        self._serving.set()

        def loop() -> None:
            while self._serving.is_set():
                try:
                    delivered = self.pump()
                except Exception:  # keep serving: the failure is the function's, logged
                    logger.exception("local event delivery failed")
                    delivered = 0
                if not delivered:
                    time.sleep(interval)

        self._thread = threading.Thread(target=loop, name="shelflife-local-events", daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        assert self.gateway is not None, "start the stack first"
        return self.gateway.url

    def token(
        self, user: str, *, admin: bool = False, extra: Mapping[str, object] | None = None
    ) -> str:
        return self.tokens.token(user, admin=admin, extra=extra)

    def dashboard_link(self) -> str:
        """The dashboard with an admin token in the link (a browser tab sends no
        header; only the local gateway accepts the token this way)."""
        return f"{self.api_url}/dashboard?access_token={self.token('admin', admin=True)}"

    def gallery_link(self, user: str = "alice") -> str:
        """``user``'s gallery, signed in by the token in the link's fragment (never sent
        to a server: the page's script keeps it for the tab)."""
        return f"{self.api_url}/gallery#access_token={self.token(user)}"

    # ---- time ------------------------------------------------------------------------

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock on by ``delta``, run each schedule that came due (once: a
        schedule that missed several times catches up with one run), and deliver
        what follows until nothing is waiting."""
        clock.set_clock(offset=delta)
        self.drain()
        return clock.now()

    def _clock_control(self, asked: Mapping[str, Any]) -> Mapping[str, Any]:
        """``shelflife local clock``: the clock moved on by ``seconds`` (> 0, at most
        ten years), as ``advance`` does."""
        seconds = asked.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"seconds must be a number, got {seconds!r}")
        if not 0 < seconds <= 10 * 366 * 86400:
            raise ValueError(f"seconds must be over 0 and at most ten years, got {seconds}")
        return {"now": self.advance(timedelta(seconds=seconds)).isoformat()}

    # ---- delivery --------------------------------------------------------------------

    def pump(self) -> int:
        """Deliver everything waiting once: uploads, queue messages, stream records,
        due schedules. How many events were delivered."""
        with self._pump_lock:
            delivered = self._run_schedules()
            for source in self.s3_sources:
                delivered += self._pump_s3(source)
            for sqs in self.sqs_sources:
                delivered += self._pump_sqs(sqs)
            for stream in self.streams:
                delivered += stream.poll()
            return delivered

    def drain(self, *, timeout: float = 120.0) -> None:
        """Pump until two passes in a row find nothing (a delivery may cause more)."""
        deadline = time.monotonic() + timeout
        idle = 0
        while idle < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"events still arriving after {timeout} s")
            idle = idle + 1 if not self.pump() else 0

    def _run_schedules(self) -> int:
        now = clock.now()
        fired = 0
        for schedule in self.schedules:
            if now < self._next_due[schedule]:
                continue
            self._next_due[schedule] = schedule.next_after(now)
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{schedule.function}"],
                "detail": {},
            }
            self._invoke_async(schedule.function, event)
            fired += 1
        return fired

    def _pump_s3(self, source: S3Source) -> int:
        messages = self._receive(source.queue_url, 10)
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("Event") != "s3:TestEvent":
                self._invoke_async(source.function, body)
            self._sqs.delete_message(
                QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return len(messages)

    def _pump_sqs(self, source: SqsSource) -> int:
        messages = self._receive(source.queue_url, source.batch_size)
        if not messages:
            return 0
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": source.queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
        failed: set[str] = set(record["messageId"] for record in records)
        try:
            answer = self.functions[source.function].invoke({"Records": records})
            if source.partial and isinstance(answer, dict):
                failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            else:
                failed = set()
        except Exception:
            logger.exception("%s failed on a batch from its queue", source.function)
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(
                    QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return len(messages)

    def _invoke_async(self, function: str, event: dict[str, Any]) -> None:
        """Lambda's asynchronous invocation: retried on error, then the event goes to
        the on-failure destination."""
        target = self.functions[function]
        for attempt in range(1, target.max_retries + 2):
            try:
                target.invoke(json.loads(json.dumps(event)))
                return
            except Exception as e:
                logger.warning("%s failed (attempt %d): %s", function, attempt, e)
                error = e
        if target.on_failure_queue:
            self._sqs.send_message(
                QueueUrl=target.on_failure_queue,
                MessageBody=json.dumps(
                    {
                        "requestContext": {
                            "condition": "RetriesExhausted",
                            "functionArn": function,
                        },
                        "responsePayload": {
                            "errorType": type(error).__name__,
                            "errorMessage": str(error),
                        },
                        "requestPayload": event,
                    }
                ),
            )

    def _receive(self, queue_url: str, limit: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(limit, 10), AttributeNames=["All"]
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    @property
    def _sqs(self) -> Any:
        if self._sqs_client is None:
            import boto3

            self._sqs_client = boto3.client("sqs")
        return self._sqs_client

    # ---- building --------------------------------------------------------------------

    def _load_functions(self, resolver: Resolver) -> None:
        globals_ = self.template["Globals"]["Function"]
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        modules: dict[str, ModuleType] = {}
        for name, body in resources_of(self.template, "AWS::Serverless::Function").items():
            properties = body["Properties"]
            package = properties["CodeUri"].strip("/").replace("/", ".")
            module_name = f"{package}.{properties['Handler'].rpartition('.')[0]}"
            # The function's own modules (the api's are several) read this stack's
            # environment afresh.
            function_package = module_name.rpartition(".")[0]
            for loaded in [m for m in sys.modules if m.startswith(f"{function_package}.")]:
                sys.modules.pop(loaded, None)
            modules[name] = importlib.import_module(module_name)
            invoke_config = properties.get("EventInvokeConfig", {})
            destination = invoke_config.get("DestinationConfig", {}).get("OnFailure", {})
            on_failure = None
            if destination.get("Destination"):
                arn = resolver(destination["Destination"])
                on_failure = next(
                    (
                        url
                        for logical, url in self.queues.items()
                        if resolver.attributes.get(f"{logical}.Arn") == arn
                    ),
                    None,
                )
            self.functions[name] = LocalFunction(
                name=name,
                module=modules[name],
                timeout=int(properties.get("Timeout", globals_.get("Timeout", 3))),
                max_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
                on_failure_queue=on_failure,
                output=self.output,
            )
        # The api's admin routes invoke the other functions: in this process.
        from shelflife.adapters.invocation import InProcessInvoker
        from shelflife.services.operations import Operations
        from shelflife.wiring import ApiServices

        invoker = InProcessInvoker(
            {name: f.handler for name, f in self.functions.items()},
            context_factory=LocalContext,
        )
        for function in self.functions.values():
            module = function.module
            if isinstance(getattr(module, "services", None), ApiServices):
                operations = Operations(module.settings, invoker)
                module.__dict__["services"] = replace(module.services, operations=operations)
        # The pump's thread and the gateway's run functions at the same time.
        powertools_quirks.share_metrics_safely()

    def _stores(self) -> tuple[Any, Any]:
        from shelflife.adapters.backends import ProviderBackends
        from shelflife.domain.settings import Settings

        settings = Settings.from_env()
        return settings, ProviderBackends(settings)

    def _snapshot(self) -> Any:
        from shelflife_tools.local.state import Snapshot

        assert self.state is not None
        return Snapshot(self.state)

    def _restore(self) -> None:
        """The state the last run left in ``state``, if any; its clock goes on."""
        if self.state is None or not self._snapshot().exists():
            return
        saved_clock = self._snapshot().load(*self._stores())
        if self.start_at is None:
            clock.set_clock(saved_clock)

    def _create_first_buckets(self) -> None:
        """The first bucket of each tier the template does not create (COLD on B2, HOT
        on R2): made at the provider, as the operator does before deploying."""
        from shelflife.adapters.backends import ProviderBackends
        from shelflife.domain.settings import Settings, TierName
        from shelflife.domain.storage import BucketPolicy

        settings = Settings.from_env()
        backends = ProviderBackends(settings)
        for tier in TierName:
            tier_settings = settings.tier(tier)
            backend = backends.for_tier(tier)
            if not backend.bucket_exists(tier_settings.bucket):
                backend.create_bucket(tier_settings.bucket, BucketPolicy(tier=tier.value))

    def _wire_event_sources(self, resolver: Resolver) -> None:

        from shelflife_tools.local.streams import StreamMapping

        queue_by_arn = {resolver.attributes[f"{n}.Arn"]: (n, url) for n, url in self.queues.items()}
        start = clock.now()
        for name, body in resources_of(self.template, "AWS::Serverless::Function").items():
            for event in body["Properties"].get("Events", {}).values():
                properties = event.get("Properties", {})
                if event["Type"] == "Schedule":
                    schedule = Schedule.parse(name, str(resolver(properties["Schedule"])))
                    self.schedules.append(schedule)
                    self._next_due[schedule] = schedule.next_after(start)
                elif event["Type"] == "SQS":
                    arn = resolver(properties["Queue"])
                    _, url = queue_by_arn[arn]
                    self.sqs_sources.append(
                        SqsSource(
                            function=name,
                            queue_url=url,
                            queue_arn=arn,
                            batch_size=int(properties.get("BatchSize", 10)),
                            partial="ReportBatchItemFailures"
                            in properties.get("FunctionResponseTypes", []),
                        )
                    )
                elif event["Type"] == "S3":
                    self.s3_sources.append(
                        self._s3_source(name, resolver(properties["Bucket"]), properties)
                    )
        mappings = resources_of(self.template, "AWS::Lambda::EventSourceMapping")
        for name, body in mappings.items():
            properties = body["Properties"]
            function = resolver(properties["FunctionName"])
            destination = resolver(properties["DestinationConfig"]["OnFailure"]["Destination"])
            self.streams.append(
                StreamMapping.from_template(
                    resolver.refs["Table"],
                    self.functions[function].handler,
                    on_failure_queue_url=queue_by_arn[destination][1],
                    region=REGION,
                    name=name,
                    template=self.template_path,
                )
            )

    def _s3_source(self, function: str, bucket: str, properties: Mapping[str, Any]) -> S3Source:
        """S3 notifications of ``bucket`` into a local queue (Lambda's S3 trigger has no
        local equivalent in moto): the template's events and key filter."""
        import boto3

        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName=f"shelflife-local-{function}-s3")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rules = properties.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        prefix = next((rule["Value"] for rule in rules if rule["Name"] == "prefix"), "")
        events = properties["Events"]
        boto3.client("s3").put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn,
                        "Events": events if isinstance(events, list) else [events],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                    }
                ]
            },
        )
        return S3Source(function=function, bucket=bucket, queue_url=url, prefix=prefix)

    def _start_gateway(self, resolver: Resolver) -> None:
        public = set()
        handler_name = None
        for name, body in resources_of(self.template, "AWS::Serverless::Function").items():
            for event in body["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                handler_name = name
                properties = event["Properties"]
                if properties.get("Auth", {}).get("Authorizer") == "NONE":
                    public.add(f"{properties['Method']} {properties['Path']}")
        if handler_name is None:
            return
        function = self.functions[handler_name]
        self.gateway = LocalGateway(
            function.handler,
            self.tokens.authorize,
            port=self.api_port,
            public_routes=public,
            context_factory=LocalContext,
            query_tokens=True,
            files={B2_DOWNLOADS: b2_download},
            controls={"/_local/clock": self._clock_control},
        ).start()
        # The simulator's URLs name a host nothing answers on: its files are served
        # here instead, so every URL the API hands out opens (issue 23).
        from shelflife.adapters.backends import B2Backend

        B2Backend.shared_simulator().download_base = f"{self.gateway.url}{B2_DOWNLOADS}"

    def _set_environ(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_environ.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def running(**options: Any) -> Iterator[LocalStack]:
    """A started local stack, stopped on the way out."""
    stack = LocalStack(**options).start()
    try:
        yield stack
    finally:
        stack.stop()


def utc(text: str) -> datetime:
    """A ``--clock`` value: an ISO time (UTC if it names no zone)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
