"""Benchmarks of timpush-modifier against the floor (issue 6). Not tests: ``python -m bench`` runs them.

Every benchmark measures its candidates side by side in one run, in fresh child processes where the
process is what is measured, against an IM emulator that runs in a process of its own (so the server
never competes with the measured client for the GIL). Results are medians and ratios, never assertions.
"""
