"""xnorflow model."""
