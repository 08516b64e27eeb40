--------------------------- MODULE MultiKeyCommit_IntentNotSynced ---------------------------
\* MUTANT of MultiKeyCommit: deletes the fsync of txn/ that makes the intent durable before the first key is appended. TLC must report AllOrNothing violated.
(***************************************************************************)
(* Store.put_many on FileStore: an atomic commit to two keys through a     *)
(* durable intent (txn/<id>.json), racing a single-key writer and the      *)
(* recovery that any store operation runs when it finds a pending intent.  *)
(* The writer locks both keys, writes the intent (temp, fsync, rename) and *)
(* fsyncs txn/, appends the txn's line to each key (write + fdatasync, as  *)
(* in CommitRecovery, so a log line here is durable once appended), then   *)
(* unlinks the intent, fsyncs txn/ and acknowledges.  Recovery locks the   *)
(* keys and, per key, skips it if its last line is the txn's, appends the  *)
(* txn's line if the key is still at the intent's previous version, skips *)
(* it if the line after that version is the txn's (the FIX: today's        *)
(* FileStore._redo looks at the last line only, see mutant                 *)
(* MultiKeyCommit_RedoLastLineOnly), and otherwise raises                  *)
(* CorruptStateError ("key moved on").  Faults: any                        *)
(* process is killed between any two steps (its locks are released); power *)
(* loss kills everyone and reverts txn/ to its last fsynced entries.       *)
(*                                                                         *)
(* Actions -> implementation (src/fencedstate):                            *)
(*   TLock         FileStore._transition_many: KeyLocks.hold_many (sorted) *)
(*                 + keylog.read_tail of each key                          *)
(*   TIntent       FileStore._write_intent: write temp, fsync, os.rename   *)
(*   TSyncIntent   FileStore._write_intent: keylog.fsync_dir of txn/       *)
(*   TAppend(k)    keylog.append of the txn line to key k                  *)
(*   TUnlink       FileStore._apply_locked: unlink of the intent (not      *)
(*                 fsynced: a power loss can bring the intent back)        *)
(*   TAck          FileStore._apply_locked returns, locks released         *)
(*   WLock/WCommit Store.put on key a (FileStore._transition_many checks   *)
(*                 FileStore._pending before and after locking)            *)
(*   RLock/RRedo   FileStore._recover_pending / FileStore._redo            *)
(*                                                                         *)
(* Bounds: one transaction on keys {a, b}, MaxW = 3 single-key commits on  *)
(* key a, MaxCrashes = 3 (process kills and power losses in any mix).      *)
(***************************************************************************)
EXTENDS Naturals, Sequences

CONSTANTS MaxW, MaxCrashes, Free

Keys == {"a", "b"}

VARIABLES log,          \* [Keys -> Seq([v, txn])]: durable log lines
          intC, intD,   \* the intent's directory entry: current / fsynced
          prev,         \* [Keys -> Nat]: the versions recorded in the intent
          lk,           \* [Keys -> {"T","W","R",Free}]: key locks
          tpc, wpc, rpc,
          wn,           \* single-key commits attempted so far
          ackedT, ackedW,
          corrupt,      \* recovery raised CorruptStateError
          crashes

vars == <<log, intC, intD, prev, lk, tpc, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

HasTxn(k) == \E i \in 1..Len(log[k]) : log[k][i].txn
LastIsTxn(k) == log[k] # <<>> /\ log[k][Len(log[k])].txn
Line(k, t) == [v |-> Len(log[k]) + 1, txn |-> t]

Init == /\ log = [k \in Keys |-> <<>>]
        /\ intC = FALSE /\ intD = FALSE
        /\ prev = [k \in Keys |-> 0]
        /\ lk = [k \in Keys |-> Free]
        /\ tpc = "idle" /\ wpc = "idle" /\ rpc = "idle"
        /\ wn = 0 /\ ackedT = FALSE /\ ackedW = {}
        /\ corrupt = FALSE /\ crashes = 0

\* ---- the multi-key writer (one transaction) ----
TLock == /\ tpc = "idle" /\ ~intC /\ \A k \in Keys : lk[k] = Free
         /\ lk' = [k \in Keys |-> "T"]
         /\ prev' = [k \in Keys |-> Len(log[k])]
         /\ tpc' = "locked"
         /\ UNCHANGED <<log, intC, intD, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

TIntent == /\ tpc = "locked"
           /\ intC' = TRUE /\ tpc' = "intent"
           /\ UNCHANGED <<log, intD, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

TSyncIntent == /\ tpc = "intent"
               /\ intD' = intD /\ tpc' = "appending"                 \* MUTANT: intent not fsynced
               /\ UNCHANGED <<log, intC, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

TAppend(k) == /\ tpc = "appending" /\ ~LastIsTxn(k)
              /\ log' = [log EXCEPT ![k] = Append(@, Line(k, TRUE))]
              /\ tpc' = IF \A j \in Keys \ {k} : LastIsTxn(j) THEN "appended" ELSE "appending"
              /\ UNCHANGED <<intC, intD, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

\* The unlink is not fsynced: after a power loss the intent may come back.
TUnlink == /\ tpc = "appended"
           /\ intC' = FALSE /\ tpc' = "unlinked"
           /\ UNCHANGED <<log, intD, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

TAck == /\ tpc = "unlinked"
        /\ ackedT' = TRUE /\ lk' = [k \in Keys |-> Free] /\ tpc' = "done"
        /\ UNCHANGED <<log, intC, intD, prev, wpc, rpc, wn, ackedW, corrupt, crashes>>

\* ---- a single-key writer on key a ----
WLock == /\ wpc = "idle" /\ wn < MaxW /\ ~intC /\ lk["a"] = Free     \* pending check
         /\ lk' = [lk EXCEPT !["a"] = "W"] /\ wpc' = "locked" /\ wn' = wn + 1
         /\ UNCHANGED <<log, intC, intD, prev, tpc, rpc, ackedT, ackedW, corrupt, crashes>>

WCommit == /\ wpc = "locked"
           /\ log' = [log EXCEPT !["a"] = Append(@, Line("a", FALSE))]
           /\ ackedW' = ackedW \cup {Len(log["a"]) + 1}
           /\ lk' = [lk EXCEPT !["a"] = Free] /\ wpc' = "idle"
           /\ UNCHANGED <<intC, intD, prev, tpc, rpc, wn, ackedT, corrupt, crashes>>

\* ---- recovery of a pending intent (any process) ----
RLock == /\ rpc = "idle" /\ intC /\ \A k \in Keys : lk[k] = Free
         /\ lk' = [k \in Keys |-> "R"] /\ rpc' = "locked"
         /\ UNCHANGED <<log, intC, intD, prev, tpc, wpc, wn, ackedT, ackedW, corrupt, crashes>>

\* The txn was applied to k: its line is the one right after the intent's
\* previous version (a key can only have moved on after the txn was applied:
\* every writer recovers a pending intent first; an intent whose unlink was
\* lost by a power loss comes back after its keys moved on).
Applied(k) == Len(log[k]) > prev[k] /\ log[k][prev[k] + 1].txn             \* GUARD: redo finds applied txn
Moved(k) == ~LastIsTxn(k) /\ ~Applied(k) /\ Len(log[k]) # prev[k]

RRedo == /\ rpc = "locked"
         /\ IF \E k \in Keys : Moved(k)
              THEN /\ corrupt' = TRUE                   \* CorruptStateError: intent stays
                   /\ UNCHANGED <<log, intC, intD>>
              ELSE /\ log' = [k \in Keys |-> IF LastIsTxn(k) \/ Applied(k) THEN log[k]
                                             ELSE Append(log[k], Line(k, TRUE))]
                   /\ intC' = FALSE /\ intD' = FALSE    \* unlink + fsync_dir(txn/)
                   /\ UNCHANGED corrupt
         /\ lk' = [k \in Keys |-> Free] /\ rpc' = "idle"
         /\ UNCHANGED <<prev, tpc, wpc, wn, ackedT, ackedW, crashes>>

\* ---- faults ----
Release(who) == [k \in Keys |-> IF lk[k] = who THEN Free ELSE lk[k]]

CrashT == /\ tpc \notin {"idle", "done"} /\ crashes < MaxCrashes
          /\ tpc' = "done" /\ lk' = Release("T") /\ crashes' = crashes + 1
          /\ UNCHANGED <<log, intC, intD, prev, wpc, rpc, wn, ackedT, ackedW, corrupt>>

CrashW == /\ wpc = "locked" /\ crashes < MaxCrashes
          /\ wpc' = "idle" /\ lk' = Release("W") /\ crashes' = crashes + 1
          /\ UNCHANGED <<log, intC, intD, prev, tpc, rpc, wn, ackedT, ackedW, corrupt>>

CrashR == /\ rpc = "locked" /\ crashes < MaxCrashes
          /\ rpc' = "idle" /\ lk' = Release("R") /\ crashes' = crashes + 1
          /\ UNCHANGED <<log, intC, intD, prev, tpc, wpc, wn, ackedT, ackedW, corrupt>>

PowerLoss == /\ crashes < MaxCrashes
             /\ intC' = intD
             /\ lk' = [k \in Keys |-> Free]
             /\ tpc' = IF tpc = "idle" THEN "idle" ELSE "done"
             /\ wpc' = "idle" /\ rpc' = "idle" /\ crashes' = crashes + 1
             /\ UNCHANGED <<log, intD, prev, wn, ackedT, ackedW, corrupt>>

Done == /\ tpc \in {"idle", "done"} /\ wpc = "idle" /\ rpc = "idle"
        /\ ~intC /\ wn = MaxW
        /\ UNCHANGED vars

Next == \/ TLock \/ TIntent \/ TSyncIntent \/ \E k \in Keys : TAppend(k)
        \/ TUnlink \/ TAck
        \/ WLock \/ WCommit \/ RLock \/ RRedo
        \/ CrashT \/ CrashW \/ CrashR \/ PowerLoss \/ Done

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
TypeOK == /\ tpc \in {"idle","locked","intent","appending","appended","unlinked","done"}
          /\ lk \in [Keys -> {"T", "W", "R", Free}]

\* A multi-key commit lands on every key or on none: whenever no intent is
\* pending and no transaction is in flight.
AllOrNothing == (~intC /\ tpc \in {"idle", "done"} /\ rpc = "idle") => (HasTxn("a") = HasTxn("b"))

\* No acknowledged commit is lost (single-key or multi-key).
NoLostAck == /\ ackedT => \A k \in Keys : HasTxn(k)
             /\ \A v \in ackedW : Len(log["a"]) >= v

\* Recovery never finds a key "moved on" (CorruptStateError that would block
\* every later operation on the store).
RecoveryNeverStuck == ~corrupt
=============================================================================
