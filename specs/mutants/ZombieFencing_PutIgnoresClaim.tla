---- MODULE ZombieFencing_PutIgnoresClaim ----
\* Mutant of ZombieFencing: overrides PutAllowed with PutAlways (specs/mutants/MUTANTS.json).
EXTENDS ZombieFencing

PutAlways == TRUE
====
