"""The registry: feature definitions, version rules and history; the only writer of which version serves."""
