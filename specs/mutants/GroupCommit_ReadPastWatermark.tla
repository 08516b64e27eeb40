---- MODULE GroupCommit_ReadPastWatermark ----
\* Mutant of GroupCommit: overrides VisibleLen with WholeLog (specs/mutants/MUTANTS.json).
EXTENDS GroupCommit

WholeLog == Len(log)
====
