---- MODULE CommitRecovery_NoTempFsync ----
\* Mutant of CommitRecovery: overrides SyncTemp with SkipTempSync (specs/mutants/MUTANTS.json).
EXTENDS CommitRecovery

SkipTempSync == disk' = disk
====
