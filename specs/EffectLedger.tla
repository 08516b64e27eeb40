----------------------------- MODULE EffectLedger -----------------------------
(***************************************************************************)
(* The fenced effect ledger (fencedstate.effects.EffectLedger) for ONE     *)
(* effect id: workers race on it, crash and resume from their checkpoint   *)
(* (a restarted worker runs the same effect id again, with a new claim or  *)
(* none), stall for any number of steps (no fairness: a SIGSTOPped zombie  *)
(* sits between any two of its steps while leases run out and its claim is *)
(* taken over), and settle in-doubt records with a truthful probe.  The    *)
(* record is one store key changed only by compare-and-set on its version; *)
(* `applied` counts the effect landing in the outside world.               *)
(*                                                                         *)
(* Actions: TakeClaim, Read, Replay, Start, Wait, MarkInDoubt, Probe,      *)
(* PreFire, Fire, Record, Expire, Crash.  (TakeClaim grants the work key's *)
(* claim, fencing the previous holder; Expire is the lease of a started    *)
(* record running out.)  Guards (mutants override them): VersionMatches,   *)
(* EpochCurrent, Startable.                                                *)
(*                                                                         *)
(* Bounds: Workers = {w1,w2}, MaxEpoch = 2 (two claims of the work key),   *)
(* MaxCrash = 1 (one crash and resume), MaxAttempt = 3: enough for a       *)
(* starter to stall past its lease, be probed "not applied", a second      *)
(* attempt to fire, and the zombie to wake.                                *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS Workers, MaxEpoch, MaxCrash, MaxAttempt

States == {"none", "started", "in_doubt", "completed", "not_applied"}
Rec(st, att, ver, live) == [st |-> st, att |-> att, ver |-> ver, live |-> live]
NoRec == Rec("none", 0, 0, FALSE)

VARIABLES rec,      \* the effect's record: state, attempt, version, lease live
          epoch,    \* the work key's current claim epoch
          myEp,     \* myEp[w]: epoch of w's claim, 0 = runs without a claim
          pc,       \* where each worker is in EffectLedger.run
          seen,     \* seen[w]: the record as w last read it
          myAtt,    \* myAtt[w]: the attempt w started
          outcome,  \* outcome[w]: what w's fn did ("ok", "error", "not_applied")
          got,      \* got[w]: the result w's run returned (the attempt that made it)
          applied,  \* ghost: times the effect landed in the outside world
          probeNo,  \* ghost: "not applied" verdicts given by probes
          settled,  \* ghost: attempts recorded completed or not_applied
          fires,    \* ghost: [att, stale] of every fired attempt
          stale,    \* ghost: stale[w] = w's claim was already taken over at its Start
          sawDone,  \* ghost: w's last Read found a completed record
          crashes   \* ghost: crashes so far

vars == <<rec, epoch, myEp, pc, seen, myAtt, outcome, got, applied, probeNo, settled,
          fires, stale, sawDone, crashes>>

PCs == {"idle", "read", "armed", "firing", "fired", "probing", "done", "raised"}

\* GUARD: the compare-and-set of every ledger write: the version the worker read (put's expected_version).
VersionMatches(w) == seen[w].ver = rec.ver
\* GUARD: "started" is committed only while the worker's claim is the work key's current grant.
EpochCurrent(w) == myEp[w] = 0 \/ myEp[w] = epoch
\* GUARD: a new attempt starts only over no record or a "not applied" one.
Startable(s) == s.st \in {"none", "not_applied"}
\* A completed record is replayed, never run again.
Replayable(s) == s.st = "completed"

InDoubt(s) == s.st = "in_doubt" \/ (s.st = "started" /\ ~s.live)

Init == /\ rec = NoRec
        /\ epoch = 0
        /\ myEp = [w \in Workers |-> 0]
        /\ pc = [w \in Workers |-> "idle"]
        /\ seen = [w \in Workers |-> NoRec]
        /\ myAtt = [w \in Workers |-> 0]
        /\ outcome = [w \in Workers |-> "ok"]
        /\ got = [w \in Workers |-> 0]
        /\ applied = 0 /\ probeNo = 0 /\ settled = {} /\ fires = {}
        /\ stale = [w \in Workers |-> FALSE]
        /\ sawDone = [w \in Workers |-> FALSE]
        /\ crashes = 0

\* A worker (re)starting takes the work key's claim, fencing the previous holder.
TakeClaim(w) == /\ pc[w] = "idle" /\ myEp[w] = 0 /\ epoch < MaxEpoch
                /\ epoch' = epoch + 1
                /\ myEp' = [myEp EXCEPT ![w] = epoch + 1]
                /\ UNCHANGED <<rec, pc, seen, myAtt, outcome, got, applied, probeNo,
                               settled, fires, stale, sawDone, crashes>>

Read(w) == /\ pc[w] = "idle"
           /\ seen' = [seen EXCEPT ![w] = rec]
           /\ sawDone' = [sawDone EXCEPT ![w] = rec.st = "completed"]
           /\ pc' = [pc EXCEPT ![w] = "read"]
           /\ UNCHANGED <<rec, epoch, myEp, myAtt, outcome, got, applied, probeNo, settled,
                          fires, stale, crashes>>

\* Completed: return the recorded result without calling fn.
Replay(w) == /\ pc[w] = "read" /\ Replayable(seen[w])
             /\ got' = [got EXCEPT ![w] = seen[w].att]
             /\ pc' = [pc EXCEPT ![w] = "done"]
             /\ UNCHANGED <<rec, epoch, myEp, seen, myAtt, outcome, applied, probeNo, settled,
                            fires, stale, sawDone, crashes>>

\* Commit "started" (a new attempt, with a live lease) by compare-and-set, atomically with
\* the claim check: a lost race re-reads (ConflictError), a stale claim raises FencedError.
Start(w) == /\ pc[w] = "read" /\ Startable(seen[w]) /\ seen[w].att < MaxAttempt
            /\ IF ~VersionMatches(w)
                 THEN /\ pc' = [pc EXCEPT ![w] = "idle"]
                      /\ UNCHANGED <<rec, myAtt, stale>>
               ELSE IF ~EpochCurrent(w)
                 THEN /\ pc' = [pc EXCEPT ![w] = "raised"]
                      /\ UNCHANGED <<rec, myAtt, stale>>
               ELSE /\ rec' = Rec("started", seen[w].att + 1, rec.ver + 1, TRUE)
                    /\ myAtt' = [myAtt EXCEPT ![w] = seen[w].att + 1]
                    /\ stale' = [stale EXCEPT ![w] = myEp[w] # 0 /\ myEp[w] # epoch]
                    /\ pc' = [pc EXCEPT ![w] = "armed"]
            /\ UNCHANGED <<epoch, myEp, seen, outcome, got, applied, probeNo, settled, fires,
                           sawDone, crashes>>

\* Someone else's attempt is running (its lease is live): wait for a change, read again.
Wait(w) == /\ pc[w] = "read" /\ seen[w].st = "started" /\ seen[w].live
           /\ pc' = [pc EXCEPT ![w] = "idle"]
           /\ UNCHANGED <<rec, epoch, myEp, seen, myAtt, outcome, got, applied, probeNo,
                          settled, fires, stale, sawDone, crashes>>

\* An expired "started" (or an in-doubt record): record "in_doubt", then either raise
\* EffectInDoubtError (no probe) or settle it with the probe.  Never run fn here.
MarkInDoubt(w) == /\ pc[w] = "read" /\ InDoubt(seen[w]) /\ ~Startable(seen[w])
                  /\ ~Replayable(seen[w])
                  /\ IF VersionMatches(w)
                       THEN /\ rec' = IF rec.st = "in_doubt" THEN rec
                                      ELSE [rec EXCEPT !.st = "in_doubt", !.ver = @ + 1]
                            /\ seen' = [seen EXCEPT ![w] = rec']
                            /\ \E hasProbe \in BOOLEAN :
                                   pc' = [pc EXCEPT ![w] = IF hasProbe THEN "probing"
                                                           ELSE "raised"]
                       ELSE /\ pc' = [pc EXCEPT ![w] = "idle"]
                            /\ UNCHANGED <<rec, seen>>
                  /\ UNCHANGED <<epoch, myEp, myAtt, outcome, got, applied, probeNo, settled,
                                 fires, stale, sawDone, crashes>>

\* The probe observes the outside world truthfully: the effect happened (record completed and
\* return it) or it did not (record not_applied: a later Start may run a new attempt).
Probe(w) == /\ pc[w] = "probing"
            /\ IF VersionMatches(w)
                 THEN /\ rec' = [rec EXCEPT !.st = IF applied > 0 THEN "completed"
                                                  ELSE "not_applied", !.ver = @ + 1]
                      /\ got' = [got EXCEPT ![w] = IF applied > 0 THEN rec.att ELSE 0]
                      /\ pc' = [pc EXCEPT ![w] = IF applied > 0 THEN "done" ELSE "idle"]
                      /\ probeNo' = IF applied > 0 THEN probeNo ELSE probeNo + 1
                      /\ settled' = settled \cup {rec.att}
                 ELSE /\ pc' = [pc EXCEPT ![w] = "idle"]
                      /\ UNCHANGED <<rec, got, probeNo, settled>>
            /\ UNCHANGED <<epoch, myEp, seen, myAtt, outcome, applied, fires, stale, sawDone,
                           crashes>>

MyLeaseLive(w) == rec.att = myAtt[w] /\ rec.st = "started" /\ rec.live

\* Just before fn: if the worker's own lease ran out (it stalled after Start), others may
\* already treat the attempt as in doubt: it does not fire, and records not_applied.
PreFire(w) == /\ pc[w] = "armed"
              /\ IF MyLeaseLive(w)
                   THEN /\ pc' = [pc EXCEPT ![w] = "firing"]
                        /\ UNCHANGED <<rec, settled>>
                   ELSE /\ pc' = [pc EXCEPT ![w] = "raised"]
                        /\ IF rec.att = myAtt[w] /\ rec.st \in {"started", "in_doubt"}
                             THEN /\ rec' = [rec EXCEPT !.st = "not_applied", !.ver = @ + 1]
                                  /\ settled' = settled \cup {rec.att}
                             ELSE UNCHANGED <<rec, settled>>
              /\ UNCHANGED <<epoch, myEp, seen, myAtt, outcome, got, applied, probeNo, fires,
                             stale, sawDone, crashes>>

\* fn runs: it returns (the effect landed), raises after or without landing it, or raises
\* EffectNotApplied (it definitely did not land).
Fire(w) == /\ pc[w] = "firing"
           /\ \E o \in {<<TRUE, "ok">>, <<TRUE, "error">>, <<FALSE, "error">>,
                        <<FALSE, "not_applied">>} :
                 /\ applied' = IF o[1] THEN applied + 1 ELSE applied
                 /\ outcome' = [outcome EXCEPT ![w] = o[2]]
                 /\ fires' = IF o[1] THEN fires \cup {[att |-> myAtt[w], stale |-> stale[w]]}
                             ELSE fires
           /\ pc' = [pc EXCEPT ![w] = "fired"]
           /\ UNCHANGED <<rec, epoch, myEp, seen, myAtt, got, probeNo, settled, stale, sawDone,
                          crashes>>

\* Record what fn did on the worker's own attempt (completed, in_doubt or not_applied), by
\* compare-and-set; a record that moved on to another attempt is left alone.
Record(w) == /\ pc[w] = "fired"
             /\ IF rec.att = myAtt[w] /\ rec.st \in {"started", "in_doubt"}
                  THEN /\ rec' = [rec EXCEPT !.st = CASE outcome[w] = "ok" -> "completed"
                                                      [] outcome[w] = "error" -> "in_doubt"
                                                      [] OTHER -> "not_applied",
                                             !.ver = @ + 1, !.live = FALSE]
                       /\ settled' = IF outcome[w] = "error" THEN settled
                                     ELSE settled \cup {rec.att}
                  ELSE UNCHANGED <<rec, settled>>
             /\ got' = [got EXCEPT ![w] = IF outcome[w] = "ok" THEN myAtt[w] ELSE 0]
             /\ pc' = [pc EXCEPT ![w] = IF outcome[w] = "ok" THEN "done" ELSE "raised"]
             /\ UNCHANGED <<epoch, myEp, seen, myAtt, outcome, applied, probeNo, fires, stale,
                            sawDone, crashes>>

\* Time passes beyond a started record's lease (its starter crashed, stalled or is slow).
Expire == /\ rec.st = "started" /\ rec.live
          /\ rec' = [rec EXCEPT !.live = FALSE]
          /\ UNCHANGED <<epoch, myEp, pc, seen, myAtt, outcome, got, applied, probeNo, settled,
                         fires, stale, sawDone, crashes>>

\* kill -9 anywhere (even after its run returned, before the checkpoint was saved): the
\* worker resumes from its checkpoint and runs the same effect id again, claim lost.
Crash(w) == /\ crashes < MaxCrash /\ pc[w] # "idle"
            /\ crashes' = crashes + 1
            /\ pc' = [pc EXCEPT ![w] = "idle"]
            /\ myEp' = [myEp EXCEPT ![w] = 0]
            /\ myAtt' = [myAtt EXCEPT ![w] = 0]
            /\ got' = [got EXCEPT ![w] = 0]
            /\ sawDone' = [sawDone EXCEPT ![w] = FALSE]
            /\ UNCHANGED <<rec, epoch, seen, outcome, applied, probeNo, settled, fires, stale>>

Finished == /\ \A w \in Workers : pc[w] \in {"done", "raised"}
            /\ UNCHANGED vars

Next == \/ Expire \/ Finished
        \/ \E w \in Workers : \/ TakeClaim(w) \/ Read(w) \/ Replay(w) \/ Start(w) \/ Wait(w)
                              \/ MarkInDoubt(w) \/ Probe(w) \/ PreFire(w) \/ Fire(w)
                              \/ Record(w) \/ Crash(w)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
TypeOK == /\ rec.st \in States /\ rec.att \in 0..MaxAttempt
          /\ pc \in [Workers -> PCs]
          /\ epoch \in 0..MaxEpoch

\* The effect lands at most once, unless a probe said an attempt had not happened (and a
\* stalled attempt then landed after all) or the outside system deduplicates by token.id.
AtMostOnceUnlessIdempotent == applied <= 1 + probeNo

\* A run that finds the record completed returns the recorded result and never calls fn.
CompletedIsReplayed ==
    \A w \in Workers : sawDone[w] => /\ pc[w] \in {"read", "done"}
                                     /\ pc[w] = "done" => got[w] = rec.att
                                     /\ rec.st = "completed"

\* An attempt that may have happened is never silently treated as not done (a new attempt
\* starts only once every earlier one was settled) nor as done (completed means it landed).
InDoubtNeverSilent == /\ \A a \in 1..(rec.att - 1) : a \in settled
                      /\ rec.st = "completed" => applied >= 1

\* No effect fires from a run whose claim was already taken over when it committed "started".
StaleClaimNeverFires == \A f \in fires : ~f.stale
=============================================================================
