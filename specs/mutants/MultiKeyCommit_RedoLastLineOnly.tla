---- MODULE MultiKeyCommit_RedoLastLineOnly ----
\* Mutant of MultiKeyCommit: overrides TxnApplied with LastLineOnly (specs/mutants/MUTANTS.json).
EXTENDS MultiKeyCommit

LastLineOnly(k) == FALSE
====
