"""gRPC layer: servicers translate proto messages to app calls; one interceptor turns
domain errors into status codes and records metrics."""
