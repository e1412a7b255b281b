# Sphinx configuration of the telemeter documentation.
#
# Build (tox -e docs does the same):
#   sphinx-build -W --keep-going -b html doc/source doc/build/html
# in an environment holding doc/requirements.txt and telemeter itself:
# oslo_config.sphinxext imports the option lists through the
# oslo.config.opts entry points of setup.cfg.

import datetime

# Choose oslo.service's threading backend and keep eventlet out, exactly as
# the console scripts do, before the option modules are imported.
import telemeter.cmd  # noqa: F401

project = 'telemeter'
author = 'telemeter developers'
copyright = f'{datetime.date.today().year}, telemeter developers'

extensions = [
    'oslo_config.sphinxext',
]

exclude_patterns = []
source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
language = 'en'
pygments_style = 'sphinx'
# Every :ref:, :doc: and option role must resolve (-W turns misses into
# errors).
nitpicky = False

html_theme = 'alabaster'
html_title = 'telemeter documentation'
html_theme_options = {
    'description': 'Telemetry collection for OpenStack-style clouds',
    'fixed_sidebar': False,
    'show_relbars': True,
}
html_last_updated_fmt = '%Y-%m-%d'
html_static_path = []


