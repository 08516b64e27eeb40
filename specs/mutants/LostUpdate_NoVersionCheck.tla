---- MODULE LostUpdate_NoVersionCheck ----
\* Mutant of LostUpdate: overrides VersionMatches with AnyVersion (specs/mutants/MUTANTS.json).
EXTENDS LostUpdate

AnyVersion(w) == TRUE
====
