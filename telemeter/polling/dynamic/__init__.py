"""Dynamic pollsters: HTTP/JSON (or XML, text, local command) pollsters
defined in YAML files of ``[polling] pollsters_definitions_dirs``.

:mod:`.definitions` validates a definition, :mod:`.responses` fetches and
decodes responses and walks attribute paths, :mod:`.expression` evaluates
the ``| ...`` operations without ``eval``, :mod:`.pollster` turns response
entries into Samples and :mod:`.loader` builds the stevedore Extensions.
"""
