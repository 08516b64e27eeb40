---- MODULE ZombieFencing_VersionOnlyCommit ----
\* Mutant of ZombieFencing: overrides ClaimFenced with VersionOnly (specs/mutants/MUTANTS.json).
EXTENDS ZombieFencing

VersionOnly(p) == TRUE
====
