"""Membership changes as a product: history, the feed, daily stats, EventBridge and webhooks."""
