"""End-to-end tests of the DIMSE-N service classes (PS3.7 10; PS3.4 F, J, R)."""
