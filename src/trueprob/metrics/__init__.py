"""Metrics as functions: validate the inputs, build the mergeable state, finalise."""
