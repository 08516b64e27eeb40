---- MODULE EffectLedger_NoClaimCheck ----
\* Mutant of EffectLedger: overrides EpochCurrent with EpochIgnored (specs/mutants/MUTANTS.json).
EXTENDS EffectLedger

EpochIgnored(w) == TRUE
====
