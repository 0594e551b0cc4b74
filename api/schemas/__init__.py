"""Request and response bodies: ``XCreate`` in, ``XPublic`` out, wrapping the domain model."""
