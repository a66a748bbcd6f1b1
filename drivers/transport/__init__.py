"""Byte transports (serial port, trace wrapper), separate from the protocols that run over them."""
