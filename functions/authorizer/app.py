"""AuthorizerFunction: API Gateway REQUEST authorizer (API keys and identity hashes).

Allows the whole API (`<api>/<stage>/*/*`) for a known caller: API Gateway caches the answer
per Authorization header, so it must not depend on the route; the API functions check roles.
Anything else raises "Unauthorized", which API Gateway answers with 401.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.auth.access import authenticate_request

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = APIGatewayAuthorizerRequestEvent(event)
    principal = authenticate_request(
        request.http_method, request.path, request.headers, event.get("pathParameters") or {}
    )
    if principal is None:
        logger.info("refused", extra={"path": request.path})
        raise Exception("Unauthorized")  # the exact message API Gateway turns into a 401
    arn = request.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=principal.key_id or f"user:{principal.user_id}",
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"role": principal.role, "key_id": principal.key_id, "user_id": principal.user_id},
    )
    policy.allow_all_routes()
    return policy.asdict()
