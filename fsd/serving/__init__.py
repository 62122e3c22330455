"""gRPC serving: server assembly, thin servicers, the error interceptor, proto <-> domain conversion."""
