"""Real cryptography: signing keys, JWTs, certificates. Core hands it bytes."""
