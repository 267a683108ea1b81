"""Container lifecycle: one module per verb runq handles itself; the rest is delegated to runc (passthrough)."""
