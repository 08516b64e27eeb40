---- MODULE MultiKeyCommit_IntentNotSynced ----
\* Mutant of MultiKeyCommit: overrides IntentDurable with IntentNotSynced (specs/mutants/MUTANTS.json).
EXTENDS MultiKeyCommit

IntentNotSynced == intD' = intD
====
