"""Loads each function's handler by path and invokes it like Lambda does, one call at a time.

All functions share this process, so moto (not thread-safe in process) and module globals are
protected by one re-entrant lock: every invocation, and every AWS call the pollers make, holds it.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Metrics
from segmentation import clock

from infra.local import calls
from infra.local.intrinsics import ACCOUNT_ID, REGION
from infra.local.template import Function

# Every function invocation and every poller call into moto happens under this lock.
invoke_lock = threading.RLock()

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/[$LATEST]{self.aws_request_id[:8]}"
        self.identity = None
        self.client_context = None
        self._deadline = clock.now() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - clock.now()) * 1000))


@dataclass
class LocalFunction:
    spec: Function
    name: str
    handler: Handler

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            aws_request_id=str(uuid.uuid4()),
        )
        with invoke_lock, calls.invoking(self.spec.logical_id):
            try:
                return self.handler(event, context)
            finally:
                _drop_unpublished_metrics()


def _drop_unpublished_metrics() -> None:
    """Locally metrics are off (POWERTOOLS_METRICS_DISABLED), and then Powertools' @log_metrics
    neither prints nor clears them: they pile up across invocations until a hundred values
    print themselves. Lambda flushes after every invocation; here they are dropped instead."""
    Metrics().clear_metrics()


def load_function(spec: Function, name: str) -> LocalFunction:
    """Import functions/<folder>/<module>.py under a module name unique to this function."""
    module_name = f"local_lambda_{spec.logical_id}"
    module = _import_path(module_name, spec.module_file, spec.code_dir)
    handler = getattr(module, spec.handler_name, None)
    if not callable(handler):
        raise ImportError(f"{spec.module_file} has no callable {spec.handler_name}")
    return LocalFunction(spec=spec, name=name, handler=handler)


def _import_path(module_name: str, file: Path, code_dir: Path) -> Any:
    if not file.is_file():
        raise ImportError(f"{file} does not exist")
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Lambda puts the code folder on sys.path while the handler module imports its siblings.
    sys.path.insert(0, str(code_dir))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.path.remove(str(code_dir))
    return module
