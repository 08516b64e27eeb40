---- MODULE ClaimExclusivity_NoFence ----
\* Mutant of ClaimExclusivity: overrides ClaimFenced with Unfenced (specs/mutants/MUTANTS.json).
EXTENDS ClaimExclusivity

Unfenced(a) == TRUE
====
