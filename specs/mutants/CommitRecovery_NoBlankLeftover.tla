---- MODULE CommitRecovery_NoBlankLeftover ----
\* Mutant of CommitRecovery: overrides WriteAfterTail with WriteOverTail (specs/mutants/MUTANTS.json).
EXTENDS CommitRecovery

WriteOverTail(l) == cache' \in {[cache EXCEPT ![ino] = f] : f \in Remnants(cache[ino], l)}
====
