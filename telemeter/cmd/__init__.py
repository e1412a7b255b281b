"""Console scripts.

Every command and daemon runs on threads, never on eventlet. oslo.messaging
imports oslo.service, which loads its eventlet backend unless told
otherwise, and futurist imports eventlet whenever it is installed;
eventlet then patches in dnspython. That costs each process about 10 MB of
memory and a quarter of a second of start-up, and prints a deprecation
warning into every journal. So before anything else is imported, the
threading backend is chosen and eventlet's import is refused (a ``None``
entry in ``sys.modules``: the libraries that could use it fall back to the
standard library).
"""

import sys
import warnings

if 'eventlet' not in sys.modules:
    sys.modules['eventlet'] = None  # type: ignore[assignment]

from oslo_service import backend as _backend

if _backend.get_backend_type() is None:
    _backend.init_backend(_backend.BackendType.THREADING)

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
warnings.filterwarnings('ignore', message='eventletutils module is deprecated')
warnings.filterwarnings(
    'ignore', message="The 'oslo_service.eventlet_backdoor' module usage is "
                      'deprecated')
