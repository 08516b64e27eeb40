---- MODULE CommitRecovery_DirFsyncOnlyOnCreate ----
\* Mutant of CommitRecovery: overrides DirSyncNeeded with CreatorOnly (specs/mutants/MUTANTS.json).
EXTENDS CommitRecovery

CreatorOnly == created
====
