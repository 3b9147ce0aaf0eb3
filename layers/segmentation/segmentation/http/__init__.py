"""The HTTP layer shared by the API functions: resolver, auth, error mapping, models, routes."""
