"""Assembling the runq runtime root (see runq.layout) from Debian packages: `python3 -m runq.build STEP...`."""
