"""The client-side offline -> online loader (`fsd sync`): reads the offline store's latest values and publishes
them through the daemon's Publish stream, so they pass the same rules as any other write."""
