"""Shared test cases, graph builders and oracle helpers; test modules import these, never each other."""
