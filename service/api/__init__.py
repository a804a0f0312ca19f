"""gRPC layer: servicers translate proto messages to use-case calls; one interceptor turns
domain errors into status codes and records metrics."""
