---- MODULE GroupCommit_AckAtOwnWrite ----
\* Mutant of GroupCommit: overrides AckCovered with OwnWriteDone (specs/mutants/MUTANTS.json).
EXTENDS GroupCommit

OwnWriteDone(w) == TRUE
====
