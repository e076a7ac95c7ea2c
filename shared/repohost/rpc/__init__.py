"""The JSON-RPC protocol: envelope, method registry, argument checking, encoding."""
