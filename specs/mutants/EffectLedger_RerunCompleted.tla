---- MODULE EffectLedger_RerunCompleted ----
\* Mutant of EffectLedger: overrides Startable with StartableCompleted (specs/mutants/MUTANTS.json).
EXTENDS EffectLedger

StartableCompleted(s) == s.st \in {"none", "not_applied", "completed"}
====
