"""The wire boundary: the only importer of the generated `fsd.v1` protobuf types. Requests become domain values
here and domain values become replies here; servicers and the client never touch a generated message."""
