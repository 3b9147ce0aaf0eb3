"""AuthorizerFunction: API Gateway REQUEST authorizer (API keys and identity hashes).

Allows the whole API (`<api>/<stage>/*/*`) for a known caller: API Gateway caches the answer
per Authorization header, so it must not depend on the route; the API functions check roles.
Anything else raises "Unauthorized", which API Gateway answers with 401.

Every request of the API waits for this function on a cache miss, so it loads only what it uses:
Powertools' Logger, and no event data classes (importing one imports them all, about 20 ms of
each cold start) for the four fields it reads and the one policy it writes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.auth.access import authenticate_request
from segmentation.auth.keys import Principal

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # API Gateway keeps the client's spelling of header names; HTTP's are case-insensitive.
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    path = str(event.get("path") or "")
    principal = authenticate_request(
        str(event.get("httpMethod") or ""), path, headers, event.get("pathParameters") or {}
    )
    if principal is None:
        logger.info("refused", extra={"path": path})
        raise Exception("Unauthorized")  # the exact message API Gateway turns into a 401
    return allow_all_routes(str(event["methodArn"]), principal)


def allow_all_routes(method_arn: str, principal: Principal) -> dict[str, Any]:
    """The IAM policy that allows every method of the API's stage, the caller as context, and
    the usage key that meters the caller (API Gateway applies its usage plan's rate limit).

    `method_arn` is arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>.
    Context values must be strings, numbers or booleans (API Gateway answers 500 to anything
    else), so empty ones are left out.
    """
    *head, resource = method_arn.split(":", 5)  # a path may hold colons; the head does not
    api_id, stage = resource.split("/")[:2]
    context = {"role": principal.role, "key_id": principal.key_id, "user_id": principal.user_id}
    usage = {"usageIdentifierKey": principal.usage_key} if principal.usage_key else {}
    return {
        **usage,
        "principalId": principal.key_id or f"user:{principal.user_id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": [f"{':'.join(head)}:{api_id}/{stage}/*/*"],
                }
            ],
        },
        "context": {name: value for name, value in context.items() if value},
    }
