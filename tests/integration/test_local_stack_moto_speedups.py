"""The local stack's cheaper TransactWriteItems snapshot keeps moto's all-or-nothing behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from segmentation.storage import aws

from infra.local import moto_speedups


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    moto_speedups.install()
    with mock_aws():
        aws.reset()
        client = aws.client("dynamodb")
        client.create_table(
            TableName="Pairs",
            KeySchema=[{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "m", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "g", "AttributeType": "S"},
                {"AttributeName": "m", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        client.create_table(
            TableName="Singles",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client
    aws.reset()


def _stream_length(client: Any) -> int:
    streams = aws.client("dynamodbstreams")
    arn = client.describe_table(TableName="Pairs")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return len(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def _items(client: Any, table: str) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=table)["Items"], key=repr)


def test_a_cancelled_transaction_changes_nothing(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="Pairs", Item={"g": {"S": "a"}, "m": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="Singles", Item={"id": {"S": "x"}, "n": {"N": "1"}})
    before = (_items(dynamodb, "Pairs"), _items(dynamodb, "Singles"), _stream_length(dynamodb))
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "Pairs", "Item": {"g": {"S": "a"}, "m": {"S": "2"}}}},
                {
                    "Update": {
                        "TableName": "Pairs",
                        "Key": {"g": {"S": "a"}, "m": {"S": "1"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Delete": {"TableName": "Singles", "Key": {"id": {"S": "x"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "Singles",
                        "Key": {"id": {"S": "missing"}},
                        "ConditionExpression": "attribute_exists(id)",
                    }
                },
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert (_items(dynamodb, "Pairs"), _items(dynamodb, "Singles"), _stream_length(dynamodb)) == before


def test_a_successful_transaction_applies_every_item(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="Singles", Item={"id": {"S": "x"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "Pairs", "Item": {"g": {"S": "a"}, "m": {"S": "2"}}}},
            {"Delete": {"TableName": "Singles", "Key": {"id": {"S": "x"}}}},
        ]
    )
    assert _items(dynamodb, "Pairs") == [{"g": {"S": "a"}, "m": {"S": "2"}}]
    assert _items(dynamodb, "Singles") == []
    assert _stream_length(dynamodb) == 1
