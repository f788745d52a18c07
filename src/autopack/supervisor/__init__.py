"""The Supervisor: owns run/tier/phase lifecycle and writes every artefact."""
