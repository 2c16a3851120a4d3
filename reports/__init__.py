"""Reports built from a run directory's store: tables now; thresholds and figures later."""
