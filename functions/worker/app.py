"""Lambda entry point of the job worker: SQS FIFO records in, one job id per record.

Powertools' FIFO batch processor reports failed records back to SQS
(``ReportBatchItemFailures``), so only they are redelivered; after a failure the
rest of that repository's records (its message group) are reported failed
unprocessed, keeping its jobs in order, while other repositories go on.
"""

from __future__ import annotations

from typing import Any

from repohost.coldstart import loading

with loading():
    from aws_lambda_powertools.utilities.batch import (
        SqsFifoPartialProcessor,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from repohost.jobs.worker import run_job
    from repohost.logs import configure_logging

configure_logging()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def record_handler(record: SQSRecord) -> None:
    run_job(record.body.strip())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
