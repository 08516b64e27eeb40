---- MODULE ZombieFencing_NoLeaseCheck ----
\* Mutant of ZombieFencing: overrides LeaseUnexpired with LeaseIgnored (specs/mutants/MUTANTS.json).
EXTENDS ZombieFencing

LeaseIgnored == TRUE
====
