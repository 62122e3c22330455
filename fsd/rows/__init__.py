"""Publish rows and their checks, below both the daemon's publish path and the offline store: Arrow columns and
their validation (`columns`, `checks`) and the publish rules, one function per rule id (`rules`)."""
