"""Readers of the optional inputs that come beside a dataset (probabilities, annotations, …)."""
