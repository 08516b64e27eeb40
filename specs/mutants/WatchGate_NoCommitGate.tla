---- MODULE WatchGate_NoCommitGate ----
\* Mutant of WatchGate: overrides CommitHoldsGate with GateNotHeld (specs/mutants/MUTANTS.json).
EXTENDS WatchGate

GateNotHeld(c) == gate
====
