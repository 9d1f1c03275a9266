"""xnorflow boards."""
