"""Run in a fresh interpreter: time one function's init, or a floor, and print milliseconds.

    python -S -B bench/cold_probe.py handler <function dir> <layer dir> <client,...>
    python -S -B bench/cold_probe.py floor <layer dir> <client,...>
    python -S -B bench/cold_probe.py stack <layer dir> <client,...> <kind>

`handler`: import the handler module `app` the way Lambda's runtime does (the function's build
folder, then the layer's python/ folder, on sys.path), then make the clients its first request
makes, through segmentation.storage.aws.
`floor`: `import boto3` (the layer's, so both sides load the same files) and make the same clients.
`stack`: the floor plus what the design puts in every function before any of our code: a pydantic
settings model and Powertools Logger; then, but for `direct` (the authorizer, which only logs),
Tracer (botocore patched), Metrics and the Powertools utility of the function's kind (`http`: the
REST resolver with validation, `batch`: the batch processor, `plain`: none).
Clients are `client:<service>` or `resource:dynamodb`. Nothing is invoked, so no AWS endpoint is
needed. Kept free of project imports: anything imported before the clock starts would hide its cost.
"""

import time

START = time.perf_counter()

import importlib  # noqa: E402
import sys  # noqa: E402


def _clients(make_resource, make_client, clients: list[str]) -> None:  # type: ignore[no-untyped-def]
    for client in clients:
        kind, service = client.split(":", 1)
        make_resource(service) if kind == "resource" else make_client(service)


def _handler(function_dir: str, layer_dir: str, clients: list[str]) -> None:
    sys.path[:0] = [function_dir, layer_dir]
    importlib.import_module("app")
    from segmentation.storage import aws

    _clients(lambda _service: aws.dynamodb(), aws.client, clients)


def _floor(layer_dir: str, clients: list[str]) -> None:
    sys.path[:0] = [layer_dir]
    import boto3

    _clients(boto3.resource, boto3.client, clients)


def _stack(layer_dir: str, clients: list[str], kind: str) -> None:
    _floor(layer_dir, clients)
    import pydantic
    from aws_lambda_powertools import Logger, Metrics, Tracer

    class Settings(pydantic.BaseModel):
        table: str = "users"
        limit: int = 100

    Settings()
    Logger()
    if kind == "direct":
        return
    Tracer(patch_modules=["botocore"])
    Metrics(namespace="Floor")
    if kind == "http":
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver

        APIGatewayRestResolver(enable_validation=True)
    elif kind == "batch":
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        BatchProcessor(event_type=EventType.SQS)


def main(argv: list[str]) -> None:
    mode, folders = argv[0], argv[1:]
    if mode == "handler":
        _handler(folders[0], folders[1], [c for c in folders[2].split(",") if c])
    elif mode == "floor":
        _floor(folders[0], [c for c in folders[1].split(",") if c])
    else:
        _stack(folders[0], [c for c in folders[1].split(",") if c], folders[2])
    print(f"{(time.perf_counter() - START) * 1000:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
