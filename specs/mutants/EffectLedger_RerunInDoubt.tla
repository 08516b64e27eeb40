---- MODULE EffectLedger_RerunInDoubt ----
\* Mutant of EffectLedger: overrides Startable with StartableInDoubt (specs/mutants/MUTANTS.json).
EXTENDS EffectLedger

StartableInDoubt(s) == s.st \in {"none", "not_applied", "in_doubt"} \/ (s.st = "started" /\ ~s.live)
====
