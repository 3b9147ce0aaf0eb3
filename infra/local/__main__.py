"""`python -m infra.local` (what `make run` runs): the whole stack on http://127.0.0.1:${PORT:-3000}.

Environment: PORT, HOST (default 127.0.0.1), ADMIN_API_KEY, INGEST_API_KEY, IDENTITY_SECRET
(generated and printed when unset; a key the authorizer would refuse stops the start, exit 2),
SEED_DEMO (0 = empty workspace), SENDER_EMAIL, UNSUBSCRIBE_BASE_URL (where emails' unsubscribe links
point; this stack's own http://HOST:PORT by default), FILES_ENDPOINT_URL (where presigned URLs of
imports and exports point; this stack's own http://HOST:PORT/_local/s3 by default),
KEY_RATE_LIMITS (`off` turns the per-key rate limits off), LOCAL_LOG_LEVEL (the runner's own log
level, default INFO), LOCAL_GATEWAY_TIMEOUT (seconds before a request gets API Gateway's 504; 29).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import warnings
from types import FrameType

from infra.local import rate_limits, seed
from infra.local.stack import ConfigurationError, Keys, LocalStack, local_base_url


class _StopWhileStarting(BaseException):  # not Exception: handlers must not swallow it
    pass


def main() -> int:
    started = time.monotonic()
    logging.basicConfig(
        level=os.environ.get("LOCAL_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("infra.local.server").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # Powertools warns on every invocation that flushes no metrics; locally that is just noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "3000"))
    try:
        keys = Keys.from_environment(os.environ)
        enforce_rate_limits = rate_limits.enforced_from_environment(dict(os.environ))
        stack = LocalStack(
            keys=keys,
            parameters={
                "SenderEmail": os.environ.get("SENDER_EMAIL", "no-reply@example.com"),
                # Unsubscribe links point at this stack (UNSUBSCRIBE_BASE_URL overrides it).
                "UnsubscribeBaseUrl": local_base_url(host, port),
            },
            key_rate_limits=enforce_rate_limits,
            base_url=local_base_url(host, port),
        )
    except (ConfigurationError, ValueError) as error:
        print(f"The local stack cannot start: {error}", file=sys.stderr, flush=True)
        return 2
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if not stack.ready.is_set():
            raise _StopWhileStarting  # abandon the start; once ready, main() waits on `stopping`

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    from infra.local.server import make_server

    server = None
    code = 0
    try:
        stack.start()
        server = make_server(stack, host, port)
        threading.Thread(target=server.serve_forever, name="local-http", daemon=True).start()
        stack.start_background()
        if os.environ.get("SEED_DEMO", "1") != "0":
            from segmentation import clock

            seed.run(seed.SeedClient(stack, keys.admin_key), clock.now())
            stack.drain()
        stack.ready.set()
        _print_banner(host, port, keys, time.monotonic() - started, enforce_rate_limits)
        stopping.wait()
    except _StopWhileStarting:
        pass
    except seed.SeedError as error:
        logging.getLogger("infra.local").error("the demo seed failed (SEED_DEMO=0 skips it): %s", error)
        code = 1
    print("Stopping the local stack...", flush=True)
    if server is not None:
        server.shutdown()
        server.server_close()
    stack.stop()
    return code


def _print_banner(host: str, port: int, keys: Keys, seconds: float, enforce_rate_limits: bool) -> None:
    lines = [f"Local stack ready on http://{host}:{port} in {seconds:.1f} s (Ctrl-C stops it)"]
    lines.append(
        "  per-key rate limits: on (KEY_RATE_LIMITS=off turns them off)"
        if enforce_rate_limits
        else "  per-key rate limits: off (KEY_RATE_LIMITS=off)"
    )
    for name, value in (
        ("ADMIN_API_KEY", keys.admin_key),
        ("INGEST_API_KEY", keys.ingest_key),
        ("IDENTITY_SECRET", keys.identity_secret),
    ):
        origin = "generated" if name in keys.generated else "from the environment"
        lines.append(f"  {name}={value}  ({origin})")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
