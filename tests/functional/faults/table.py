"""The fault table of issue 12 (no telemeter import, so that
``tools/bench/fault_table.py`` prints it cheaply)."""

from __future__ import annotations


def _fmt(value, width: int) -> str:
    return ('-' if value is None else str(value)).rjust(width)


def format_table(outcomes: list[dict]) -> str:
    head = (f'{"scenario":<44} {"stored of N":>15} {"not stored":>10} '
            f'{"dup":>5} {"recover s":>9} {"run s":>6}  notes')
    lines = [head, '-' * len(head)]
    for o in outcomes:
        notes = o.get('notes', '')
        if o['lost']:
            notes = (f'lost meters={o["lost_by_path"].get("meters")} '
                     f'polled={o["lost_by_path"].get("polled")} '
                     f'(first: {o.get("missing_sample", [])[:6]}) ' + notes)
        if o['dead']:
            notes += f'dead: {",".join(o["dead"])} '
        recover = o['recover_s']
        lines.append(
            f'{o["scenario"]:<44} '
            f'{o["stored"]:>7} of {o["n"]:<6} {o["lost"]:>10} '
            f'{o["duplicated"]:>5} '
            f'{_fmt(None if recover is None else round(recover, 1), 9)} '
            f'{o["seconds"]:>6}  {notes.strip()}')
    return '\n'.join(lines)
