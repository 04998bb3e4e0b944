"""Generated bad-input files for the data tests (nothing binary is committed)."""
