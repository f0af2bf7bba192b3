"""Ingest: a month's manifest landed in S3 → start exactly one execution for that month."""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from streamflow.ingest import month_from_key, start_month_execution
from streamflow.logs import bind, logger
from streamflow.settings import Settings

settings = Settings.from_env()


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    results = []
    for record in event.records:
        key = unquote_plus(record.s3.get_object.key)  # S3 event keys are URL-encoded
        upload = month_from_key(record.s3.bucket.name, key)
        if upload is None:
            logger.info("not a manifest, ignored", extra={"key": key})
            continue
        bind(upload.month)
        result = start_month_execution(settings, upload)
        if result.get("rejected"):
            logger.error(f"MONTH_REJECTED month={upload.month} report={result['report']}", extra=result)
        else:
            logger.info("execution started" if result["started"] else "duplicate upload, execution exists",
                        extra=result)
        results.append(result)
    return {"executions": results}
