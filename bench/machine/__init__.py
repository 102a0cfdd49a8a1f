"""What a result was measured on (environment) and what the lab needs from this machine (doctor)."""
