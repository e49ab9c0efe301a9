"""Executing a plan: hosts, the server session, the load generators, the samplers around the measured window, the sweep executor, profiles. Imports format and plan, never analysis or render."""
