"""Consumers of the model that judge a ruleset: chain graph, shadowed rules, explanations."""
