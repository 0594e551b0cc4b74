"""Cross-cutting pieces of the service: settings, security, errors, limits, metrics."""
