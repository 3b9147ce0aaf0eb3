"""Segment upkeep: stored membership kept in step with users, companies, segments and time."""
