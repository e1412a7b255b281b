"""Public home of the declarative definition helpers.

The code lives in :mod:`telemeter.notification.declarative`; these names are
part of the public contract (meter and event definitions, trait plugins).
"""

from telemeter.notification.declarative import (  # noqa: F401
    Definition,
    DefinitionException,
    DefinitionFileError,
    EventDefinitionException,
    MeterDefinitionException,
)
