"""Guarded synchronization into the online store: chunk validation, row rules, durable idempotent writes."""
