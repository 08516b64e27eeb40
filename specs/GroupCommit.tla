---------------------------- MODULE GroupCommit -----------------------------
(***************************************************************************)
(* Commit path v2 (issue 13) on ONE key: early lock release with group    *)
(* commit.  A committer reads a snapshot, takes the key lock, checks its   *)
(* expected version (or none: a blind put) and its claim's epoch against  *)
(* the TRUE tail (durable or not), writes its record, notes its offset    *)
(* and releases the lock before any sync.  It then waits until the        *)
(* per-key durable watermark covers its offset.  A waiter that finds the   *)
(* watermark behind its offset and no sync running becomes the syncer:     *)
(* one fdatasync covers every record written so far, then the watermark   *)
(* advances to what it synced.  Readers see only records at or below the  *)
(* watermark.  A failed sync fails every commit past the watermark (each  *)
(* waiter gets StorageError), marks the key broken, and the next lock     *)
(* holder truncates the log back to the watermark and syncs before        *)
(* anything else.  A crash (power loss or host crash) loses every record  *)
(* past what was synced and kills every process.  A reclaim writes an     *)
(* epoch bump through the same log (Reclaim), so fencing is checked with  *)
(* early release too.                                                     *)
(*                                                                         *)
(* Actions: Read, Lock, RecoverTail, Check, Write, Abort, Unlock,          *)
(* SyncStart, SyncDone, SyncFail, Ack, Fail, Repair, Reclaim, Crash       *)
(* (vocabulary and implementing functions: specs/README.md).  Guards      *)
(* (mutants override them): VisibleLen, AckCovered, FailTargets.          *)
(*                                                                         *)
(* Bounds: Writers = {w1,w2}, MaxTries = 2 commit attempts each,           *)
(* MaxCrashes = 1, MaxFails = 1 failed sync, MaxReclaims = 1: two writers  *)
(* sharing one sync, a failed sync with a waiter besides the syncer, the   *)
(* truncation and a later commit reusing the failed offset, a crash at     *)
(* any step, and a reclaim racing a writer whose claim it fences.          *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets

CONSTANTS Writers, MaxTries, MaxCrashes, MaxFails, MaxReclaims, None

VARIABLES log,       \* Seq of [ver, ep, by, try]: the log every process sees (page cache)
          synced,    \* length of the prefix on disk: what a crash keeps
          wm,        \* the durable watermark readers and waiters see (<= synced)
          lock,      \* key lock holder, or None
          syncer,    \* the elected syncer, or None
          target,    \* the log length the running sync covers
          broken,    \* a sync failed: truncate back to wm before the next write
          pc,        \* per writer: "idle","lock","locked","checked","written","waiting","syncing"
          rv,        \* rv[w]: expected version (-1: none, a blind put)
          rep,       \* rep[w]: the epoch of w's claim
          mine,      \* mine[w]: the record w wrote in this attempt
          tries,     \* tries[w]: attempts w has finished (acked, refused or failed)
          doomed,    \* writers a failed sync has failed (StorageError pending)
          acked,     \* ghost: records acknowledged to their writers
          seen,      \* ghost: records a reader returned
          failed,    \* ghost: records past the watermark when a sync failed
          crashes, fails, reclaims

vars == <<log, synced, wm, lock, syncer, target, broken, pc, rv, rep, mine, tries,
          doomed, acked, seen, failed, crashes, fails, reclaims>>

NoRec == [ver |-> 0, ep |-> 0, by |-> None, try |-> 0]
KeyEpoch == IF log = <<>> THEN 0 ELSE log[Len(log)].ep
EpochAt(n) == IF n = 0 THEN 0 ELSE log[n].ep
Done(w) == pc[w] = "idle" /\ tries[w] = MaxTries

\* GUARD: a reader sees the log up to the watermark only.
VisibleLen == wm
\* GUARD: a commit is acknowledged only once the watermark covers its record.
AckCovered(w) == wm >= mine[w].ver
\* GUARD: a failed sync fails every commit past the watermark, not only the syncer's.
FailTargets(s) == {v \in Writers : pc[v] \in {"written", "waiting", "syncing"}
                                   /\ mine[v].ver > wm}

Init == /\ log = <<>> /\ synced = 0 /\ wm = 0
        /\ lock = None /\ syncer = None /\ target = 0 /\ broken = FALSE
        /\ pc = [w \in Writers |-> "idle"]
        /\ rv = [w \in Writers |-> -1]
        /\ rep = [w \in Writers |-> 0]
        /\ mine = [w \in Writers |-> NoRec]
        /\ tries = [w \in Writers |-> 0]
        /\ doomed = {} /\ acked = {} /\ seen = {} /\ failed = {}
        /\ crashes = 0 /\ fails = 0 /\ reclaims = 0

\* End of an attempt: back to idle, the lock released if held.
Finish(w) == /\ pc' = [pc EXCEPT ![w] = "idle"]
             /\ tries' = [tries EXCEPT ![w] = @ + 1]

\* Store.get / Claim.read: the newest visible record; the writer then commits
\* either at that version or blind, under a claim at that record's epoch.
Read(w) == /\ pc[w] = "idle" /\ tries[w] < MaxTries
           /\ LET n == VisibleLen IN
                /\ rv' \in {[rv EXCEPT ![w] = n], [rv EXCEPT ![w] = -1]}
                /\ rep' = [rep EXCEPT ![w] = EpochAt(n)]
                /\ seen' = IF n = 0 THEN seen ELSE seen \cup {log[n]}
           /\ pc' = [pc EXCEPT ![w] = "lock"]
           /\ UNCHANGED <<log, synced, wm, lock, syncer, target, broken, mine, tries,
                          doomed, acked, failed, crashes, fails, reclaims>>

Lock(w) == /\ pc[w] = "lock" /\ lock = None
           /\ lock' = w /\ pc' = [pc EXCEPT ![w] = "locked"]
           /\ UNCHANGED <<log, synced, wm, syncer, target, broken, rv, rep, mine, tries,
                          doomed, acked, seen, failed, crashes, fails, reclaims>>

\* The key is broken: truncate the log back to the watermark and sync that.
RecoverTail(w) == /\ pc[w] = "locked" /\ broken
                  /\ log' = SubSeq(log, 1, wm) /\ synced' = wm /\ broken' = FALSE
                  /\ UNCHANGED <<wm, lock, syncer, target, pc, rv, rep, mine, tries,
                                 doomed, acked, seen, failed, crashes, fails, reclaims>>

\* Any other store operation that finds the key broken and the lock free does
\* the same under the lock (Lock, truncate, sync, Unlock in one step).
Repair == /\ lock = None /\ broken
          /\ log' = SubSeq(log, 1, wm) /\ synced' = wm /\ broken' = FALSE
          /\ UNCHANGED <<wm, lock, syncer, target, pc, rv, rep, mine, tries,
                         doomed, acked, seen, failed, crashes, fails, reclaims>>

\* Version and fence against the true tail; a refusal (ConflictError,
\* FencedError) ends the attempt.
Check(w) == /\ pc[w] = "locked" /\ ~broken
            /\ IF (rv[w] = -1 \/ rv[w] = Len(log)) /\ rep[w] = KeyEpoch
                 THEN pc' = [pc EXCEPT ![w] = "checked"] /\ UNCHANGED <<lock, tries>>
                 ELSE Finish(w) /\ lock' = None
            /\ UNCHANGED <<log, synced, wm, syncer, target, broken, rv, rep, mine,
                           doomed, acked, seen, failed, crashes, fails, reclaims>>

Write(w) == /\ pc[w] = "checked" /\ ~broken
            /\ LET r == [ver |-> Len(log) + 1, ep |-> rep[w], by |-> w, try |-> tries[w]] IN
                 /\ log' = Append(log, r)
                 /\ mine' = [mine EXCEPT ![w] = r]
            /\ pc' = [pc EXCEPT ![w] = "written"]
            /\ UNCHANGED <<synced, wm, lock, syncer, target, broken, rv, rep, tries,
                           doomed, acked, seen, failed, crashes, fails, reclaims>>

\* A sync failed between this writer's Check and its Write: StorageError.
Abort(w) == /\ pc[w] = "checked" /\ broken
            /\ Finish(w) /\ lock' = None
            /\ UNCHANGED <<log, synced, wm, syncer, target, broken, rv, rep, mine,
                           doomed, acked, seen, failed, crashes, fails, reclaims>>

\* Early lock release: before any sync.
Unlock(w) == /\ pc[w] = "written"
             /\ lock' = None /\ pc' = [pc EXCEPT ![w] = "waiting"]
             /\ UNCHANGED <<log, synced, wm, syncer, target, broken, rv, rep, mine, tries,
                            doomed, acked, seen, failed, crashes, fails, reclaims>>

\* The watermark is behind this waiter's record and nobody syncs: it becomes
\* the syncer; its fdatasync covers the log as it is now.
SyncStart(w) == /\ pc[w] = "waiting" /\ w \notin doomed /\ ~broken
                /\ syncer = None /\ wm < mine[w].ver
                /\ syncer' = w /\ target' = Len(log)
                /\ pc' = [pc EXCEPT ![w] = "syncing"]
                /\ UNCHANGED <<log, synced, wm, lock, broken, rv, rep, mine, tries,
                               doomed, acked, seen, failed, crashes, fails, reclaims>>

SyncDone(w) == /\ pc[w] = "syncing"
               /\ synced' = IF target > synced THEN target ELSE synced
               /\ wm' = target
               /\ syncer' = None /\ pc' = [pc EXCEPT ![w] = "waiting"]
               /\ UNCHANGED <<log, lock, target, broken, rv, rep, mine, tries,
                              doomed, acked, seen, failed, crashes, fails, reclaims>>

\* fdatasync returned EIO: never retried; everything past wm is failed.
SyncFail(w) == /\ pc[w] = "syncing" /\ fails < MaxFails
               /\ broken' = TRUE /\ fails' = fails + 1
               /\ failed' = failed \cup {log[i] : i \in (wm + 1)..Len(log)}
               /\ doomed' = doomed \cup FailTargets(w)
               /\ syncer' = None /\ pc' = [pc EXCEPT ![w] = "waiting"]
               /\ UNCHANGED <<log, synced, wm, lock, target, rv, rep, mine, tries,
                              acked, seen, crashes, reclaims>>

Ack(w) == /\ pc[w] = "waiting" /\ w \notin doomed /\ AckCovered(w)
          /\ acked' = acked \cup {mine[w]}
          /\ Finish(w)
          /\ UNCHANGED <<log, synced, wm, lock, syncer, target, broken, rv, rep, mine,
                         doomed, seen, failed, crashes, fails, reclaims>>

\* The failed sync's error reaches this waiter (StorageError).
Fail(w) == /\ pc[w] = "waiting" /\ w \in doomed
           /\ doomed' = doomed \ {w}
           /\ Finish(w)
           /\ UNCHANGED <<log, synced, wm, lock, syncer, target, broken, rv, rep, mine,
                          acked, seen, failed, crashes, fails, reclaims>>

\* Store.reclaim: Lock, Write of an epoch bump, Unlock in one step.
Reclaim == /\ lock = None /\ ~broken /\ reclaims < MaxReclaims
           /\ log' = Append(log, [ver |-> Len(log) + 1, ep |-> KeyEpoch + 1, by |-> None, try |-> 0])
           /\ reclaims' = reclaims + 1
           /\ UNCHANGED <<synced, wm, lock, syncer, target, broken, pc, rv, rep, mine, tries,
                          doomed, acked, seen, failed, crashes, fails>>

\* Power loss or host crash: everything past what was synced is lost, every
\* process dies mid-attempt; on restart the watermark is the synced length.
Crash == /\ crashes < MaxCrashes
         /\ crashes' = crashes + 1
         /\ log' = SubSeq(log, 1, synced) /\ wm' = synced
         /\ lock' = None /\ syncer' = None /\ broken' = FALSE /\ doomed' = {}
         /\ pc' = [w \in Writers |-> "idle"]
         /\ tries' = [w \in Writers |-> IF pc[w] = "idle" THEN tries[w] ELSE tries[w] + 1]
         /\ UNCHANGED <<synced, target, rv, rep, mine, acked, seen, failed, fails, reclaims>>

Terminated == /\ \A w \in Writers : Done(w)
              /\ UNCHANGED vars

Next == \/ \E w \in Writers : \/ Read(w) \/ Lock(w) \/ RecoverTail(w) \/ Check(w)
                              \/ Write(w) \/ Abort(w) \/ Unlock(w) \/ SyncStart(w)
                              \/ SyncDone(w) \/ SyncFail(w) \/ Ack(w) \/ Fail(w)
        \/ Repair \/ Reclaim \/ Crash \/ Terminated

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
TypeOK == /\ pc \in [Writers -> {"idle","lock","locked","checked","written","waiting","syncing"}]
          /\ lock \in Writers \cup {None} /\ syncer \in Writers \cup {None}
          /\ wm <= synced /\ synced <= Len(log)
          /\ tries \in [Writers -> 0..MaxTries]

\* No reader ever returns a record that a crash or a failed sync can lose.
VisibleImpliesDurable == \A r \in seen : r.ver <= synced /\ log[r.ver] = r

\* Every acknowledged commit is on disk: it survives any crash.
AckImpliesDurable == \A r \in acked : r.ver <= synced /\ log[r.ver] = r

\* After a failed sync, no commit that was past the watermark is acknowledged.
FailedSyncFailsSuccessors == acked \cap failed = {}

\* No acknowledged commit is lost (as in LostUpdate and CommitRecovery).
NoLostAck == \A r \in acked : r.ver <= Len(log) /\ log[r.ver] = r

\* The version grows by exactly one per record (no ABA, no gap).
VersionContiguous == \A i \in 1..Len(log) : log[i].ver = i

\* A writer's record carries the key's epoch at the point it was written: a
\* reclaim fences every claim of an older epoch, durable or not.
NoStaleEpochCommit == \A i \in 1..Len(log) : log[i].by # None => log[i].ep = EpochAt(i - 1)
=============================================================================
