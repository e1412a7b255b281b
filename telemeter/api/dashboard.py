"""The operator page (see issue 11); filled in below."""

ROUTES: list = []
