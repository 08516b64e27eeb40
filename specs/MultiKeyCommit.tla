--------------------------- MODULE MultiKeyCommit ---------------------------
(***************************************************************************)
(* Store.put_many on FileStore: an atomic commit to two keys through a     *)
(* durable intent (txn/<id>.json), racing a single-key writer and the      *)
(* recovery that any store operation runs when it finds a pending intent.  *)
(* The writer locks both keys, writes the intent (temp, fsync, rename) and *)
(* fsyncs txn/, appends the txn's line to each key (Write and Sync as one  *)
(* step, as CommitRecovery checks them, so a log line here is durable once *)
(* written), then unlinks the intent (not fsynced) and acknowledges.       *)
(* Recovery locks the keys and, per key, skips it if its last line is the  *)
(* txn's, appends the txn's line if the key is still at the intent's       *)
(* previous version, skips it if the line after that version is the txn's *)
(* (an intent whose unlink was lost to a power loss comes back after its   *)
(* keys moved on), and otherwise raises CorruptStateError ("key moved      *)
(* on").  Faults: any process is killed between any two steps (its locks   *)
(* are released); power loss kills everyone and reverts txn/ to its last   *)
(* fsynced entries.                                                        *)
(*                                                                         *)
(* Actions: the transaction's Lock, WriteIntent, SyncIntent, Write on each *)
(* key, Unlink, Ack; the single-key put's PutLock, PutCommit; recovery's   *)
(* RecoverLock, Redo; faults CrashT, CrashW, CrashR, PowerLoss (vocabulary *)
(* and implementing functions: specs/README.md).  Guards (mutants override *)
(* them): IntentDurable, TxnApplied.                                       *)
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
Lock == /\ tpc = "idle" /\ ~intC /\ \A k \in Keys : lk[k] = Free
        /\ lk' = [k \in Keys |-> "T"]
        /\ prev' = [k \in Keys |-> Len(log[k])]
        /\ tpc' = "locked"
        /\ UNCHANGED <<log, intC, intD, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

WriteIntent == /\ tpc = "locked"
               /\ intC' = TRUE /\ tpc' = "intent"
               /\ UNCHANGED <<log, intD, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

\* GUARD: txn/ is fsynced, so the intent is durable before any key changes.
IntentDurable == intD' = TRUE

SyncIntent == /\ tpc = "intent"
              /\ IntentDurable /\ tpc' = "appending"
              /\ UNCHANGED <<log, intC, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

Write(k) == /\ tpc = "appending" /\ ~LastIsTxn(k)
            /\ log' = [log EXCEPT ![k] = Append(@, Line(k, TRUE))]
            /\ tpc' = IF \A j \in Keys \ {k} : LastIsTxn(j) THEN "appended" ELSE "appending"
            /\ UNCHANGED <<intC, intD, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

\* The unlink is not fsynced: after a power loss the intent may come back.
Unlink == /\ tpc = "appended"
          /\ intC' = FALSE /\ tpc' = "unlinked"
          /\ UNCHANGED <<log, intD, prev, lk, wpc, rpc, wn, ackedT, ackedW, corrupt, crashes>>

Ack == /\ tpc = "unlinked"
       /\ ackedT' = TRUE /\ lk' = [k \in Keys |-> Free] /\ tpc' = "done"
       /\ UNCHANGED <<log, intC, intD, prev, wpc, rpc, wn, ackedW, corrupt, crashes>>

\* ---- a single-key writer on key a ----
PutLock == /\ wpc = "idle" /\ wn < MaxW /\ ~intC /\ lk["a"] = Free     \* pending check
           /\ lk' = [lk EXCEPT !["a"] = "W"] /\ wpc' = "locked" /\ wn' = wn + 1
           /\ UNCHANGED <<log, intC, intD, prev, tpc, rpc, ackedT, ackedW, corrupt, crashes>>

PutCommit == /\ wpc = "locked"
             /\ log' = [log EXCEPT !["a"] = Append(@, Line("a", FALSE))]
             /\ ackedW' = ackedW \cup {Len(log["a"]) + 1}
             /\ lk' = [lk EXCEPT !["a"] = Free] /\ wpc' = "idle"
             /\ UNCHANGED <<intC, intD, prev, tpc, rpc, wn, ackedT, corrupt, crashes>>

\* ---- recovery of a pending intent (any process) ----
RecoverLock == /\ rpc = "idle" /\ intC /\ \A k \in Keys : lk[k] = Free
               /\ lk' = [k \in Keys |-> "R"] /\ rpc' = "locked"
               /\ UNCHANGED <<log, intC, intD, prev, tpc, wpc, wn, ackedT, ackedW, corrupt, crashes>>

\* The txn was applied to k: its line is the one right after the intent's
\* previous version (a key can only have moved on after the txn was applied:
\* every writer recovers a pending intent first; an intent whose unlink was
\* lost by a power loss comes back after its keys moved on).
\* GUARD: recovery looks for the txn's line right after prev[k], not only
\* at the last line.
TxnApplied(k) == Len(log[k]) > prev[k] /\ log[k][prev[k] + 1].txn
Moved(k) == ~LastIsTxn(k) /\ ~TxnApplied(k) /\ Len(log[k]) # prev[k]

Redo == /\ rpc = "locked"
        /\ IF \E k \in Keys : Moved(k)
             THEN /\ corrupt' = TRUE                   \* CorruptStateError: intent stays
                  /\ UNCHANGED <<log, intC, intD>>
             ELSE /\ log' = [k \in Keys |-> IF LastIsTxn(k) \/ TxnApplied(k) THEN log[k]
                                            ELSE Append(log[k], Line(k, TRUE))]
                  /\ intC' = FALSE /\ intD' = FALSE    \* unlink + fsync_dir(txn/)
                  /\ UNCHANGED corrupt
        /\ lk' = [k \in Keys |-> Free] /\ rpc' = "idle"
        /\ UNCHANGED <<prev, tpc, wpc, wn, ackedT, ackedW, crashes>>

\* ---- faults ----
Unlocked(who) == [k \in Keys |-> IF lk[k] = who THEN Free ELSE lk[k]]

CrashT == /\ tpc \notin {"idle", "done"} /\ crashes < MaxCrashes
          /\ tpc' = "done" /\ lk' = Unlocked("T") /\ crashes' = crashes + 1
          /\ UNCHANGED <<log, intC, intD, prev, wpc, rpc, wn, ackedT, ackedW, corrupt>>

CrashW == /\ wpc = "locked" /\ crashes < MaxCrashes
          /\ wpc' = "idle" /\ lk' = Unlocked("W") /\ crashes' = crashes + 1
          /\ UNCHANGED <<log, intC, intD, prev, tpc, rpc, wn, ackedT, ackedW, corrupt>>

CrashR == /\ rpc = "locked" /\ crashes < MaxCrashes
          /\ rpc' = "idle" /\ lk' = Unlocked("R") /\ crashes' = crashes + 1
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

Next == \/ Lock \/ WriteIntent \/ SyncIntent \/ \E k \in Keys : Write(k)
        \/ Unlink \/ Ack
        \/ PutLock \/ PutCommit \/ RecoverLock \/ Redo
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
