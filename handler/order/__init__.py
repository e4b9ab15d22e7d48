"""One room for order (DESIGN "Order: a newer change is never undone"): the order key (``key``), what a store
must do for it (``store``; the homes are in ``handler.state``), the task's per-field decision under its lease
(``task``: ``TaskOrder.claim``, the one question the service asks), the look-ahead within one payload
(``payload``) and the key on its travels through dead letters and redrive (``travel``)."""
