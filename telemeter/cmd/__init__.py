"""Console scripts.

oslo.messaging imports oslo.service's eventlet backend, which prints a
deprecation warning at import although telemeter never runs eventlet; it
would greet operators on every command and in every daemon's journal.
"""

import warnings

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
warnings.filterwarnings('ignore', message='eventletutils module is deprecated')
warnings.filterwarnings(
    'ignore', message="The 'oslo_service.eventlet_backdoor' module usage is "
                      'deprecated')
