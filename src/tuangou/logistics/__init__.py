"""Shipping and logistics: shipments, carrier events, the shipping SLA, tracking checks, cold chain."""
