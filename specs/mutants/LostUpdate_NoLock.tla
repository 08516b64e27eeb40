---- MODULE LostUpdate_NoLock ----
\* Mutant of LostUpdate: overrides LockFree with LockIgnored (specs/mutants/MUTANTS.json).
EXTENDS LostUpdate

LockIgnored == TRUE
====
