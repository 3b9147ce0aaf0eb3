"""Who calls: API keys, identity hashes, and the authorizer's logic."""
