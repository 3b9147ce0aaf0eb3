"""One module per table: the only code that talks to DynamoDB, builds keys and maps ClientError codes."""
