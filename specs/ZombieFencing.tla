---------------------------- MODULE ZombieFencing ----------------------------
(***************************************************************************)
(* Claims (fenced write grants) with leases on ONE key: claim, renew,      *)
(* release, reclaim by a recovery process, lease expiry as time passes,    *)
(* claim commits and claimless CAS puts, and processes that stall for any  *)
(* number of steps (no fairness: a process may sit between reading and     *)
(* committing while time passes, leases expire and the key is reclaimed -  *)
(* a SIGSTOPped zombie).  Time is a discrete clock `now`; a lease is live  *)
(* iff now < deadline.                                                     *)
(*                                                                         *)
(* Actions: Claim, Renew, Release, Reclaim, Read, Commit, Tick.  Commit is *)
(* Lock, Check, Write, Sync and Ack as one atomic step (this spec is about *)
(* the rules, not the I/O; see specs/README.md for the vocabulary and the *)
(* implementing functions).  Guards (mutants override them): GrantAllowed,*)
(* ClaimFenced = EpochFenced /\ LeaseUnexpired, VersionMatches,            *)
(* PutAllowed.                                                             *)
(*                                                                         *)
(* Bounds: Procs = {p1,p2}, MaxEpoch = 3 (up to three grants/reclaims),    *)
(* MaxVersion = 2 accepted commits, MaxTime = 3 ticks, TTL = 2: enough for *)
(* a claim to expire, be reclaimed and re-granted while the first holder   *)
(* is still stalled with a commit in flight, and for renewals to race      *)
(* expiry.                                                                 *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS Procs, MaxEpoch, MaxVersion, MaxTime, TTL, None

VARIABLES now,      \* discrete monotonic clock
          epoch,    \* the key's current epoch (persisted in its log)
          holder,   \* current claim holder, or None
          deadline, \* lease deadline of the current holder
          log,      \* accepted commits, one record per log line
          pc,       \* pc[p] \in {"idle","commit"}
          rv,       \* rv[p]: version p read before committing
          my,       \* my[p]: the Claim object p holds: [ep |-> 0] = none
          revoked,  \* ghost: epochs revoked by Reclaim
          grants    \* ghost: sequence of epochs in the order they were created

vars == <<now, epoch, holder, deadline, log, pc, rv, my, revoked, grants>>

Ver == Len(log)
LeaseLive == holder # None /\ now < deadline
NoClaim == [ep |-> 0, dl |-> 0]

\* GUARD: Store.claim grants only when no live claim exists (ClaimHeldError).
GrantAllowed == ~LeaseLive
\* GUARD: a claim commit's epoch is the key's epoch and its owner the holder.
EpochFenced(p) == my[p].ep = epoch /\ holder = p
\* GUARD: the holder's lease is live (FencedError reason 'expired').
LeaseUnexpired == now < deadline
\* The whole fence of a claim commit (rules.check_fence).
ClaimFenced(p) == EpochFenced(p) /\ LeaseUnexpired
\* GUARD: expected version == current version (rules.check_version).
VersionMatches(p) == rv[p] = Ver
\* GUARD: a claimless put is refused while someone holds a live claim.
PutAllowed == ~LeaseLive

Init == /\ now = 0
        /\ epoch = 0
        /\ holder = None
        /\ deadline = 0
        /\ log = <<>>
        /\ pc = [p \in Procs |-> "idle"]
        /\ rv = [p \in Procs |-> 0]
        /\ my = [p \in Procs |-> NoClaim]
        /\ revoked = {}
        /\ grants = <<>>

Tick == /\ now < MaxTime
        /\ now' = now + 1
        /\ UNCHANGED <<epoch, holder, deadline, log, pc, rv, my, revoked, grants>>

Claim(p) == /\ pc[p] = "idle" /\ my[p].ep = 0
            /\ epoch < MaxEpoch
            /\ GrantAllowed
            /\ epoch' = epoch + 1
            /\ holder' = p
            /\ deadline' = now + TTL
            /\ my' = [my EXCEPT ![p] = [ep |-> epoch + 1, dl |-> now + TTL]]
            /\ grants' = Append(grants, epoch + 1)
            /\ UNCHANGED <<now, log, pc, rv, revoked>>

\* A renew succeeds only for the current, live holder; otherwise the Claim
\* object raises FencedError and the process drops it.
Renew(p) == /\ pc[p] = "idle" /\ my[p].ep # 0
            /\ IF my[p].ep = epoch /\ holder = p /\ now < deadline
                 THEN /\ deadline' = now + TTL
                      /\ my' = [my EXCEPT ![p] = [ep |-> @.ep, dl |-> now + TTL]]
                 ELSE /\ deadline' = deadline
                      /\ my' = [my EXCEPT ![p] = NoClaim]
            /\ UNCHANGED <<now, epoch, holder, log, pc, rv, revoked, grants>>

Release(p) == /\ pc[p] = "idle" /\ my[p].ep # 0
              /\ IF my[p].ep = epoch /\ holder = p
                   THEN holder' = None /\ deadline' = 0
                   ELSE UNCHANGED <<holder, deadline>>
              /\ my' = [my EXCEPT ![p] = NoClaim]
              /\ UNCHANGED <<now, epoch, log, pc, rv, revoked, grants>>

Reclaim == /\ epoch < MaxEpoch
           /\ epoch' = epoch + 1
           /\ holder' = None /\ deadline' = 0
           /\ revoked' = revoked \cup {epoch}
           /\ grants' = Append(grants, epoch + 1)
           /\ UNCHANGED <<now, log, pc, rv, my>>

Read(p) == /\ pc[p] = "idle" /\ Ver < MaxVersion
           /\ rv' = [rv EXCEPT ![p] = Ver]
           /\ pc' = [pc EXCEPT ![p] = "commit"]
           /\ UNCHANGED <<now, epoch, holder, deadline, log, my, revoked, grants>>

\* Under the key lock: a claim commit needs the fence (the claim's epoch is
\* the key's, its owner the holder, the lease live); a claimless put needs
\* no live claim.  Both need the version they read.  A rejected commit
\* leaves the state untouched.
Check(p) == IF my[p].ep # 0 THEN ClaimFenced(p) /\ VersionMatches(p)
                            ELSE PutAllowed /\ VersionMatches(p)

Commit(p) == /\ pc[p] = "commit"
             /\ IF Check(p)
                  THEN log' = Append(log, [ver |-> rv[p] + 1, by |-> p,
                                           kind |-> IF my[p].ep # 0 THEN "claim" ELSE "put",
                                           cep |-> my[p].ep, kep |-> epoch,
                                           hold |-> holder, live |-> LeaseLive])
                  ELSE log' = log
             /\ pc' = [pc EXCEPT ![p] = "idle"]
             /\ rv' = [rv EXCEPT ![p] = 0]
             /\ UNCHANGED <<now, epoch, holder, deadline, my, revoked, grants>>

\* The bounds are exhausted: allowed to stutter, so TLC's deadlock check still
\* reports any other state in which nothing can move (e.g. a stuck lock).
BoundsExhausted == /\ now = MaxTime /\ epoch = MaxEpoch /\ Ver = MaxVersion
                   /\ \A p \in Procs : pc[p] = "idle"
                   /\ UNCHANGED vars

Next == \/ Tick \/ Reclaim \/ BoundsExhausted
        \/ \E p \in Procs : Claim(p) \/ Renew(p) \/ Release(p) \/ Read(p) \/ Commit(p)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
TypeOK == /\ now \in 0..MaxTime /\ epoch \in 0..MaxEpoch
          /\ holder \in Procs \cup {None}
          /\ pc \in [Procs -> {"idle", "commit"}]

\* No commit is accepted under a claim whose epoch is not the key's current
\* epoch, or whose owner is not the current holder (the zombie write).
NoStaleEpochCommit ==
    \A i \in 1..Len(log) : log[i].kind = "claim" => /\ log[i].cep = log[i].kep
                                                   /\ log[i].hold = log[i].by

\* No commit is accepted under a claim whose lease has expired.
NoExpiredLeaseCommit == \A i \in 1..Len(log) : log[i].kind = "claim" => log[i].live

\* A claimless put never lands while someone else holds a live claim.
NoPutUnderLiveClaim == \A i \in 1..Len(log) : log[i].kind = "put" => ~log[i].live

\* Epochs never decrease: every grant/reclaim creates a strictly larger epoch,
\* and commits are stamped with non-decreasing epochs.
EpochMonotonic == /\ \A i, j \in 1..Len(grants) : i < j => grants[i] < grants[j]
                  /\ \A i, j \in 1..Len(log) : i < j => log[i].kep <= log[j].kep

\* At most one process holds a claim that is live by its own lease and has
\* not been revoked by a reclaim.
LiveHolders == {p \in Procs : my[p].ep # 0 /\ now < my[p].dl /\ my[p].ep \notin revoked}
AtMostOneLiveHolder == Cardinality(LiveHolders) <= 1

\* The version grows by exactly one per accepted commit (no ABA).
VersionContiguous == \A i \in 1..Len(log) : log[i].ver = i

\* Action property: the key's epoch never goes back.
EpochNeverDecreases == [][epoch' >= epoch]_epoch
=============================================================================
