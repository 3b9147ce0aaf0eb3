"""AuthorizerFunction: API Gateway REQUEST authorizer (API keys and identity hashes).

Allows the whole API (`<api>/<stage>/*/*`) for a known caller: API Gateway caches the answer
per Authorization header, so it must not depend on the route; the API functions check roles.
Anything else raises "Unauthorized", which API Gateway answers with 401, except on the identity
routes (KeyOrUserHashAuthorizer, never cached): there the one method is allowed with no caller,
and the function answers the 401 itself, with the CORS headers a browser needs to read it (a
gateway response cannot name one of several allowed origins; segmentation.http.cors).

Every request of the API waits for this function on a cache miss, so it loads only what it uses:
Powertools' Logger, and no event data classes (importing one imports them all, about 20 ms of
each cold start) for the four fields it reads and the one policy it writes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.auth.access import authenticate_request
from segmentation.auth.keys import Principal, identity_route_user
from segmentation.settings import get_settings

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
        if identity_route_user(str(event.get("httpMethod") or ""), path) is not None:
            return let_the_function_refuse(str(event["methodArn"]))
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
    context = {
        "role": principal.role,
        "key_id": principal.key_id,
        "user_id": principal.user_id,
        "name": principal.name,
    }
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


def let_the_function_refuse(method_arn: str) -> dict[str, Any]:
    """Allows this one method with a context that names no caller (`refused`): the function's
    role check answers 401 before it reads anything (segmentation.http.auth.check_caller). It is
    metered like the identity-verified callers (their shared usage key): API Gateway refuses an
    allowed request that names no usage key (INVALID_API_KEY), without the CORS headers."""
    usage_key = get_settings().identity_usage_key
    return {
        **({"usageIdentifierKey": usage_key} if usage_key else {}),
        "principalId": "refused",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [method_arn]}],
        },
        "context": {"refused": True},
    }
