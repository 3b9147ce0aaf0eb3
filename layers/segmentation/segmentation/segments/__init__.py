"""Segments: definitions, commands (create, edit, delete), search, members and counts."""
