"""The Redis home's parts beside its scripts (``handler.state.redis_store``): ``server`` asks a server what it
is at a process's first use (one ``INFO``), refuses one that cannot keep the order and opens the right client
(a cluster's for a node in cluster mode); ``faults`` says redis-py's errors in words, transient or not.

Imported only with a Redis store (redis-py is not on the cold path otherwise). The package's name shadows
nothing: ``import redis`` inside it is the absolute import of redis-py.
"""
