"""The template's event sources on the local stack, as values the stack plays: the
schedules (on the stack's clock), SQS event source mappings and the upload bucket's S3
notifications."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Schedule:
    function: str
    expression: str
    every: timedelta | None = None  # rate(...)
    at: tuple[int, int] | None = None  # cron(M H * * ? *): daily at H:M UTC

    @classmethod
    def parse(cls, function: str, expression: str) -> Schedule:
        rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
        if rate:
            unit = rate.group(2).rstrip("s")
            return cls(function, expression, every=timedelta(**{f"{unit}s": int(rate.group(1))}))
        cron = re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", expression)
        if cron:
            return cls(function, expression, at=(int(cron.group(2)), int(cron.group(1))))
        raise ValueError(
            f"the local stack plays rate(...) and daily cron(M H * * ? *), not {expression}"
        )

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        assert self.at is not None
        hour, minute = self.at
        due = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return due if due > moment else due + timedelta(days=1)


@dataclass
class SqsSource:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    partial: bool


@dataclass
class S3Source:
    function: str
    bucket: str
    queue_url: str
    prefix: str
