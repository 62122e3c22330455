"""Developer tools, never part of a deployment: the local cluster (`cluster`), the demo (`demo`) and `fsd init`'s
scaffold (`scaffold`)."""
