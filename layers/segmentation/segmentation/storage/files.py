"""The bucket of CSV files (FilesBucket): imports' uploads and exports. The only S3 code.

- `uploads/<job_id>.csv`: a file to import, PUT by a client through a presigned URL, or written
  here from a request's body. Its creation is what starts the import: the bucket notifies the
  ImportQueue (an S3 event record) for every object created under `uploads/`.
- `exports/<job_id>.csv`: an export, written as a multipart upload (each part at least 5 MB but
  the last), fetched through a presigned GET.
The bucket's lifecycle rules expire both and abort multipart uploads left unfinished.

Presigned URLs are made by a client of their own (`files_endpoint_url`: locally the stack's
/_local/s3 routes, which serve them from moto in process).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.jobs import CSV_SUFFIX, upload_key
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

EXPORTS = "exports/"
__all__ = ["upload_key"]
# S3's smallest part of a multipart upload (all but the last).
MIN_PART_BYTES = 5 * 1024 * 1024
_READ_BLOCK = 256 * 1024
_TRANSIENT = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"})


def export_key(job_id: str) -> str:
    return f"{EXPORTS}{job_id}{CSV_SUFFIX}"


def carry_key(job_id: str, step: int) -> str:
    """Rows of an export not in a part yet, kept between two runs (a sparse filter's pages)."""
    return f"{EXPORTS}{job_id}.carry-{step}"


def _bucket() -> str:
    return get_settings().files_bucket


def _s3() -> Any:
    return aws.client("s3")


def _call(operation: str, **arguments: Any) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = getattr(_s3(), operation)(Bucket=_bucket(), **arguments)
    except ClientError as error:
        if dynamo.error_code(error) in _TRANSIENT:
            raise errors.Retryable(f"S3: {dynamo.error_code(error)}") from error
        raise
    return answer


def put(key: str, body: bytes) -> None:
    _call("put_object", Key=key, Body=body, ContentType="text/csv")


def read(key: str) -> bytes:
    """A small object whole (an export's carried rows)."""
    body = _call("get_object", Key=key)["Body"]
    try:
        data: bytes = body.read()
    finally:
        body.close()
    return data


def abort_multipart(key: str, upload_id: str) -> None:
    """Drop an unfinished upload's parts (a failed export); gone already is fine."""
    try:
        _call("abort_multipart_upload", Key=key, UploadId=upload_id)
    except ClientError as error:
        if dynamo.error_code(error) != "NoSuchUpload":
            raise


def presigned_put(key: str, seconds: int) -> str:
    """A URL a client PUTs the file to (any content type), good for `seconds`."""
    url: str = aws.s3_signer(get_settings().files_endpoint_url).generate_presigned_url(
        "put_object", Params={"Bucket": _bucket(), "Key": key}, ExpiresIn=seconds, HttpMethod="PUT"
    )
    return url


def presigned_get(key: str, seconds: int, filename: str) -> str:
    """A URL that downloads the file as `filename` (an attachment), good for `seconds`."""
    url: str = aws.s3_signer(get_settings().files_endpoint_url).generate_presigned_url(
        "get_object",
        Params={
            "Bucket": _bucket(),
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": "text/csv; charset=utf-8",
        },
        ExpiresIn=seconds,
    )
    return url


def size(key: str) -> int | None:
    """The object's size in bytes, or None when there is none."""
    try:
        answer = _call("head_object", Key=key)
    except ClientError as error:
        if dynamo.error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(answer["ContentLength"])


def blocks_from(key: str, offset: int) -> Iterator[bytes]:
    """The object's bytes from `offset` to its end, a block at a time (streamed, never whole)."""
    try:
        answer = _call("get_object", Key=key, Range=f"bytes={offset}-")
    except ClientError as error:
        if dynamo.error_code(error) == "InvalidRange":  # at (or past) the end: nothing is left
            return
        raise
    body = answer["Body"]
    try:
        while True:
            block = body.read(_READ_BLOCK)
            if not block:
                return
            yield block
    finally:
        body.close()


def start_multipart(key: str) -> str:
    answer = _call("create_multipart_upload", Key=key, ContentType="text/csv; charset=utf-8")
    return str(answer["UploadId"])


def upload_part(key: str, upload_id: str, number: int, body: bytes) -> None:
    """Part `number` (1...10,000); sending a part again replaces it (a retried chunk)."""
    _call("upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=body)


def complete_multipart(key: str, upload_id: str, parts: int) -> None:
    """Join parts 1..`parts`, their ETags read back from S3 (ListParts): nothing to keep meanwhile."""
    etags: dict[int, str] = {}
    marker = 0
    while True:
        answer = _call("list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker)
        for part in answer.get("Parts", []):
            etags[int(part["PartNumber"])] = str(part["ETag"])
        if not answer.get("IsTruncated"):
            break
        marker = int(answer["NextPartNumberMarker"])
    missing = [number for number in range(1, parts + 1) if number not in etags]
    if missing:
        raise errors.Retryable(f"parts {missing[:5]} of the export are not in S3 yet")
    _call(
        "complete_multipart_upload",
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, parts + 1)]},
    )
