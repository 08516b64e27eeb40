---- MODULE ZombieFencing_GrantOverLiveClaim ----
\* Mutant of ZombieFencing: overrides GrantAllowed with GrantAlways (specs/mutants/MUTANTS.json).
EXTENDS ZombieFencing

GrantAlways == TRUE
====
