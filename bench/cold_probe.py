"""Run in a fresh interpreter: time one function's init, or the floor, and print milliseconds.

    python bench/cold_probe.py handler <code dir> <layer dir> <client,...>
    python bench/cold_probe.py floor <client,...>

`handler`: import the handler module `app` the way Lambda's runtime does (code folder and layer on
sys.path), then make the clients its first request makes, through segmentation.storage.aws.
`floor`: `import boto3` and make the same clients directly. Clients are `client:<service>` or
`resource:dynamodb`. Nothing is invoked, so no AWS endpoint is needed. Kept free of project
imports: anything imported before the clock starts would hide its cost.
"""

import time

START = time.perf_counter()

import importlib  # noqa: E402
import sys  # noqa: E402


def _handler(code_dir: str, layer_dir: str, clients: list[str]) -> None:
    sys.path[:0] = [code_dir, layer_dir]
    importlib.import_module("app")
    from segmentation.storage import aws

    for client in clients:
        kind, service = client.split(":", 1)
        aws.dynamodb() if kind == "resource" else aws.client(service)


def _floor(clients: list[str]) -> None:
    import boto3

    for client in clients:
        kind, service = client.split(":", 1)
        boto3.resource(service) if kind == "resource" else boto3.client(service)  # type: ignore[call-overload]


def main(argv: list[str]) -> None:
    if argv[0] == "handler":
        _handler(argv[1], argv[2], [c for c in argv[3].split(",") if c])
    else:
        _floor([c for c in argv[1].split(",") if c])
    print(f"{(time.perf_counter() - START) * 1000:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
