"""Quality measures of captured biometrics: ``finger`` scores a fingerprint image 0-100 with reasons."""
