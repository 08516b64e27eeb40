---- MODULE WatchGate_NoGateWait ----
\* Mutant of WatchGate: overrides GateFree with GateIgnored (specs/mutants/MUTANTS.json).
EXTENDS WatchGate

GateIgnored == TRUE
====
