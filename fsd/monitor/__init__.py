"""Freshness monitoring, serving-consistency validation and skew: they read, and act only through the registry."""
