# Sphinx configuration of the telemeter release notes (reno).
#
# Build: tox -e releasenotes, or
#   sphinx-build -W -b html releasenotes/source releasenotes/build/html
# reno reads the notes from the git history of releasenotes/notes/, so a
# new note shows up once it is committed.

import datetime

project = 'telemeter release notes'
author = 'telemeter developers'
copyright = f'{datetime.date.today().year}, telemeter developers'

extensions = [
    'reno.sphinxext',
]

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
language = 'en'
exclude_patterns = []
pygments_style = 'sphinx'

html_theme = 'alabaster'
html_title = 'telemeter release notes'
html_static_path = []
