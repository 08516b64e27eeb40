----------------------------- MODULE LostUpdate -----------------------------
(***************************************************************************)
(* N writers run Store.update on ONE key concurrently: read the latest     *)
(* snapshot, compute the new value from it, commit at the version they     *)
(* read, and on ConflictError re-read and retry.  The value is the set of  *)
(* contributions <<w, k>> (writer w's k-th increment), so a lost update is *)
(* an acknowledged contribution missing from the key's current value.      *)
(* The key's log is `log`: one record per accepted commit, as the          *)
(* FileStore keeps one line per event in data/<key>.jsonl.                 *)
(*                                                                         *)
(* Actions: Read, Lock, Check, Write, Ack (the shared vocabulary and the   *)
(* functions implementing each: specs/README.md).  Write stands for Write *)
(* and Sync as one step: this spec does not model power loss.             *)
(* Guards (mutants override them): LockFree, VersionMatches.              *)
(*                                                                         *)
(* Bounds: Writers = {w1,w2,w3}, Rounds = 2: three writers each commit two *)
(* increments, so every interleaving of up to 6 accepted commits and every *)
(* conflict/retry pattern among three racers is covered.                   *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS Writers, Rounds, NoLock

VARIABLES log,     \* Seq of [ver, val, by]: the key's accepted commits
          pc,      \* pc[w] \in {"read","lock","check","write","ack","done"}
          rv,      \* rv[w]: version writer w read
          rval,    \* rval[w]: value writer w read
          round,   \* round[w]: number of increments w has had acknowledged
          lock,    \* holder of the key lock, or NoLock
          acked    \* set of acknowledged contributions <<w, k>>

vars == <<log, pc, rv, rval, round, lock, acked>>

CurVer == Len(log)
CurVal == IF log = <<>> THEN {} ELSE log[Len(log)].val

Init == /\ log = <<>>
        /\ pc = [w \in Writers |-> "read"]
        /\ rv = [w \in Writers |-> 0]
        /\ rval = [w \in Writers |-> {}]
        /\ round = [w \in Writers |-> 0]
        /\ lock = NoLock
        /\ acked = {}

Read(w) == /\ pc[w] = "read"
           /\ rv' = [rv EXCEPT ![w] = CurVer]
           /\ rval' = [rval EXCEPT ![w] = CurVal]
           /\ pc' = [pc EXCEPT ![w] = "lock"]
           /\ UNCHANGED <<log, round, lock, acked>>

\* GUARD: the key lock is free (KeyLocks.hold).
LockFree == lock = NoLock

\* GUARD: expected_version == current version (rules.check_version).
VersionMatches(w) == rv[w] = CurVer

Lock(w) == /\ pc[w] = "lock"
           /\ LockFree
           /\ lock' = w
           /\ pc' = [pc EXCEPT ![w] = "check"]
           /\ UNCHANGED <<log, rv, rval, round, acked>>

\* On a mismatch: ConflictError, release the lock, re-read and retry.
Check(w) == /\ pc[w] = "check"
            /\ IF VersionMatches(w)
                 THEN /\ pc' = [pc EXCEPT ![w] = "write"]
                      /\ lock' = lock
                 ELSE /\ pc' = [pc EXCEPT ![w] = "read"]
                      /\ lock' = NoLock
            /\ UNCHANGED <<log, rv, rval, round, acked>>

Write(w) == /\ pc[w] = "write"
            /\ log' = Append(log, [ver |-> rv[w] + 1,    \* expected_version + 1
                                   val |-> rval[w] \cup {<<w, round[w] + 1>>},
                                   by  |-> w])
            /\ pc' = [pc EXCEPT ![w] = "ack"]
            /\ UNCHANGED <<rv, rval, round, lock, acked>>

Ack(w) == /\ pc[w] = "ack"
          /\ acked' = acked \cup {<<w, round[w] + 1>>}
          /\ round' = [round EXCEPT ![w] = @ + 1]
          /\ pc' = [pc EXCEPT ![w] = IF round[w] + 1 = Rounds THEN "done" ELSE "read"]
          /\ lock' = NoLock
          /\ UNCHANGED <<log, rv, rval>>

Terminated == /\ \A w \in Writers : pc[w] = "done"
              /\ UNCHANGED vars

Next == \/ \E w \in Writers : Read(w) \/ Lock(w) \/ Check(w) \/ Write(w) \/ Ack(w)
        \/ Terminated

Spec == Init /\ [][Next]_vars /\ \A w \in Writers : WF_vars(Read(w) \/ Lock(w) \/ Check(w) \/ Write(w) \/ Ack(w))

-----------------------------------------------------------------------------
TypeOK == /\ pc \in [Writers -> {"read","lock","check","write","ack","done"}]
          /\ round \in [Writers -> 0..Rounds]
          /\ lock \in Writers \cup {NoLock}

\* No acknowledged write is lost: every acked contribution is in the current value.
NoLostAck == \A c \in acked : c \in CurVal

\* The version grows by exactly one per accepted commit: record i has version i.
VersionContiguous == \A i \in 1..Len(log) : log[i].ver = i

\* At most one commit is accepted per version.
OneAcceptPerVersion == \A i, j \in 1..Len(log) : log[i].ver = log[j].ver => i = j

\* Liveness: with weak fairness every writer eventually gets all its updates in
\* (conflicts are retried; the lock is always released).
AllUpdatesLand == <>(\A w \in Writers : pc[w] = "done")
=============================================================================
