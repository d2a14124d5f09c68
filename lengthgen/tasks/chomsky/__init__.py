"""Encoder tasks of Deletang et al. 2023 (neural_networks_chomsky_hierarchy)."""

CHOMSKY_TASKS = {}
