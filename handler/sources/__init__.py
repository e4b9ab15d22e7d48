"""What both platforms' entries share: direct payloads, the HTTP route, the maintenance job's bounds, deadlines.

Each platform's entry and its trigger adapters live in ``handler.aws`` and ``handler.scf``; neither imports the other.
"""

DEADLINE_MARGIN = 2.0  # seconds kept back to report, dead-letter and return before the platform's timeout
DEFAULT_BUDGET = 60.0  # when the context cannot say (local runs)


class MalformedEvent(ValueError):
    """The event has a trigger's shape but lacks what that trigger always sends; the message names the field.

    Only a hand-made event can be like this (the platforms send whole ones), so the invocation fails loudly
    with one line that says what is missing, rather than a KeyError from deep inside an adapter.
    """
