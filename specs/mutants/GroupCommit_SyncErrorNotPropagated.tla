---- MODULE GroupCommit_SyncErrorNotPropagated ----
\* Mutant of GroupCommit: overrides FailTargets with SyncerOnly (specs/mutants/MUTANTS.json).
EXTENDS GroupCommit

SyncerOnly(s) == {s}
====
