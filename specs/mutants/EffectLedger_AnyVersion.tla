---- MODULE EffectLedger_AnyVersion ----
\* Mutant of EffectLedger: overrides VersionMatches with AnyVersion (specs/mutants/MUTANTS.json).
EXTENDS EffectLedger

AnyVersion(w) == TRUE
====
