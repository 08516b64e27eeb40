---- MODULE ClaimExclusivity_LeaseNeverExpires ----
\* Mutant of ClaimExclusivity: overrides GrantAllowed with GrantAfterRelease (specs/mutants/MUTANTS.json).
EXTENDS ClaimExclusivity

GrantAfterRelease == holder = None
====
