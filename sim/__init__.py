"""cocotb + Verilator verification of xnorflow hardware against the golden executor."""
