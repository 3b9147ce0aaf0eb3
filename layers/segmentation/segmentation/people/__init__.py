"""People: users, companies, their attributes, and the record the engine evaluates."""
