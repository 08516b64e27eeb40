---- MODULE CommitRecovery_NoTornTailDrop ----
\* Mutant of CommitRecovery: overrides WriteAfterTail with WriteAtEnd (specs/mutants/MUTANTS.json).
EXTENDS CommitRecovery

WriteAtEnd(l) == cache' = [cache EXCEPT ![ino] = Glue(cache[ino], l)]
====
