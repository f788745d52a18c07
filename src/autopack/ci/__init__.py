"""The Verifier: CI profiles, the command runner, JUnit parsing, the preflight gate."""
