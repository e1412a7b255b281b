"""telemeter: OpenStack Ceilometer-style telemetry agents and storage."""


class NotImplementedError(NotImplementedError):
    """Raised by a plugin for an operation its backend does not support.

    It subclasses the builtin so callers may catch either.
    """
