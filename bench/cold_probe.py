"""Run in a fresh interpreter: one cold start, or its floor, timed as init and first request.

    python -S -B -P bench/cold_probe.py handler <function dir> <layer dir> <handler> <event> <calls out>
    python -S -B -P bench/cold_probe.py floor <layer dir> <calls in>
    python -S -B -P bench/cold_probe.py stack <layer dir> <calls in> <kind>

`handler`: import the handler module `app` the way Lambda's runtime does (the function's build
folder, then the layer's python/ folder, on sys.path): that is init. Then call the handler once
with the sample event: that is the first request, whose AWS calls go to moto in server mode
(AWS_ENDPOINT_URL). The clients it made and the calls it sent are written to <calls out>.
`floor`: `import boto3` (the layer's, so both sides load the same files) and make the same
clients: init. Then send the same calls with the same parameters to the same server: first
request. A call that fails on the server (a condition that no longer holds) costs its round trip
on both sides alike and is not an error here.
`stack`: the floor plus, in init, what the design puts in every function before any of our code:
Powertools Logger; then, but for `direct` (the authorizer, which only logs), Tracer (botocore
patched), Metrics, a pydantic model, and the Powertools utility of the function's kind (`http`:
the REST resolver with validation, `batch`: the batch processor, `plain`: none).

Prints one JSON line: init_ms, first_ms and, for a handler, a short summary of its answer.
Inputs (the event, the calls) are read before the clock starts: Lambda's runtime reads the event.
Kept free of project imports: anything imported before the clock starts would hide its cost.
"""

import contextlib
import json  # Lambda's runtime has imported json (and so re) before it imports the handler
import sys
import time
from typing import Any


class _Context:
    """What Lambda passes as the context; Powertools reads these fields."""

    function_name = "cold-probe"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-probe"
    memory_limit_in_mb = 1024
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/cold-probe"
    log_stream_name = "2026/11/30/[$LATEST]cold"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _encode(value: Any) -> Any:
    """Call parameters as JSON: DynamoDB's Python types tagged so that the floor gets them back.
    Run after the clock stops: its imports are not counted."""
    import base64
    import decimal

    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, set | frozenset):
        return {"$set": [_encode(v) for v in value]}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(value).decode()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot record a call parameter of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    import base64
    import decimal

    if isinstance(value, dict):
        if "$set" in value:
            return {_decode(v) for v in value["$set"]}
        if "$decimal" in value:
            return decimal.Decimal(value["$decimal"])
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class _AfterImport:
    """A meta path finder that runs `then` right after module `name` has been executed."""

    def __init__(self, name: str, then: Any) -> None:
        self.name, self.then = name, then

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        loader, then = spec.loader, self.then

        class Loader:
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                loader.exec_module(module)
                sys.modules[name] = module
                then()

        spec.loader = Loader()
        return spec


class _Recorder:
    """Notes each client boto3 makes and each call a client sends (cost: a list append)."""

    def __init__(self) -> None:
        self.clients: list[list[str]] = []  # [kind, service], in the order made
        self.by_client: dict[int, int] = {}  # id(botocore client) -> index in clients
        self.calls: list[tuple[int, str, dict[str, Any]]] = []

    def install(self) -> None:
        """Patch boto3 once the handler's own code has imported it (a function that never imports
        boto3, like the console's, must not pay for it here)."""
        sys.meta_path.insert(0, _AfterImport("boto3", self._patch))

    def _patch(self) -> None:
        import boto3
        import botocore.client

        make_client, make_resource, send = (
            boto3.client,
            boto3.resource,
            botocore.client.BaseClient._make_api_call,
        )
        recorder = self

        def client(service: str, *args: Any, **kwargs: Any) -> Any:
            made = make_client(service, *args, **kwargs)
            recorder._note("client", service, made)
            return made

        def resource(service: str, *args: Any, **kwargs: Any) -> Any:
            made = make_resource(service, *args, **kwargs)
            recorder._note("resource", service, made.meta.client)
            return made

        def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
            index = recorder.by_client.get(id(self))
            if index is None:
                index = recorder._note("client", self.meta.service_model.service_name, self)
            recorder.calls.append((index, operation, params))
            return send(self, operation, params)

        boto3.client, boto3.resource = client, resource
        botocore.client.BaseClient._make_api_call = api_call  # type: ignore[method-assign]

    def _note(self, kind: str, service: str, made: Any) -> int:
        self.clients.append([kind, service])
        self.by_client[id(made)] = len(self.clients) - 1
        return len(self.clients) - 1

    def dump(self, path: str) -> None:
        calls = [[index, operation, _encode(params)] for index, operation, params in self.calls]
        with open(path, "w") as out:
            json.dump({"clients": self.clients, "calls": calls}, out)


def _summary(answer: Any) -> str:
    """Enough of the answer to tell that the first request did its work (status, failures)."""
    if isinstance(answer, dict):
        if "statusCode" in answer:
            return f"status {answer['statusCode']}"
        if "batchItemFailures" in answer:
            return f"{len(answer['batchItemFailures'])} batch item failures"
        if "policyDocument" in answer:
            return f"policy {answer['policyDocument']['Statement'][0]['Effect']}"
    return type(answer).__name__


def handler(function_dir: str, layer_dir: str, handler_name: str, event_path: str, calls_out: str) -> None:
    with open(event_path) as source:
        event = json.load(source)
    start = time.perf_counter()
    sys.path[:0] = [function_dir, layer_dir]
    recorder = _Recorder()
    recorder.install()
    import app

    initialised = time.perf_counter()
    answer = getattr(app, handler_name)(event, _Context())
    done = time.perf_counter()
    recorder.dump(calls_out)
    _report(start, initialised, done, summary=_summary(answer))


def floor(layer_dir: str, calls_in: str, kind: str = "") -> None:
    """The floor; with a `kind`, the stack floor of that kind."""
    with open(calls_in) as source:
        recorded = json.load(source)
    calls = [(index, operation, _decode(params)) for index, operation, params in recorded["calls"]]
    start = time.perf_counter()
    sys.path[:0] = [layer_dir]
    import boto3
    import botocore.exceptions

    clients = [
        boto3.resource(service).meta.client if kind == "resource" else boto3.client(service)
        for kind, service in recorded["clients"]
    ]
    if kind:
        _frameworks(kind)
    initialised = time.perf_counter()
    for index, operation, params in calls:
        with contextlib.suppress(botocore.exceptions.ClientError):
            clients[index]._make_api_call(operation, params)
    _report(start, initialised, time.perf_counter())


def _frameworks(kind: str) -> None:
    import pydantic
    from aws_lambda_powertools import Logger, Metrics, Tracer

    Logger()
    if kind == "direct":
        return
    Tracer(patch_modules=["botocore"])
    Metrics(namespace="Floor")

    class Body(pydantic.BaseModel):
        name: str = "floor"
        limit: int = 100

    Body.model_validate({"name": "stack"})
    if kind == "http":
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver

        APIGatewayRestResolver(enable_validation=True)
    elif kind == "batch":
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        BatchProcessor(event_type=EventType.SQS)


def _report(start: float, initialised: float, done: float, **extra: Any) -> None:
    times = {"init_ms": (initialised - start) * 1000, "first_ms": (done - initialised) * 1000}
    print(json.dumps({**times, **extra}))


if __name__ == "__main__":
    mode, arguments = sys.argv[1], sys.argv[2:]
    handler(*arguments) if mode == "handler" else floor(
        *arguments[:2], arguments[2] if mode == "stack" else ""
    )
