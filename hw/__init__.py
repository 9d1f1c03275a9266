"""Amaranth components of xnorflow accelerators (see docs/hardware-conventions.md)."""
