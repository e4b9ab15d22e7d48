"""One adapter per trigger, each turning its event into payloads and its outcomes into an answer."""


class MalformedEvent(ValueError):
    """The event has a trigger's shape but lacks what that trigger always sends; the message names the field.

    Only a hand-made event can be like this (the platforms send whole ones), so the invocation fails loudly
    with one line that says what is missing, rather than a KeyError from deep inside an adapter.
    """
