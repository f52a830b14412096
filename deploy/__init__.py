"""Running several workers on one machine: the nginx template and the launcher that uses it."""
