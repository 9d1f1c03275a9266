"""xnorflow gen."""
