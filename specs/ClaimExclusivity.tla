-------------------------- MODULE ClaimExclusivity --------------------------
(***************************************************************************)
(* Phantom acceptance: several agents race to accept ONE task stored      *)
(* under one key.  Each agent claims the task key, reads it, and if the    *)
(* task is still "open" commits "accepted" under its claim               *)
(* (Claim.commit WITHOUT expected_version: the claim alone must make the   *)
(* acceptance exclusive), then releases.  Agents may crash at any point    *)
(* (kill -9: the claim stays in the store until its lease expires) and a   *)
(* live agent may stall past its lease (its lease expires under it; it     *)
(* later resumes and commits as a zombie).                                 *)
(*                                                                         *)
(* Actions: Claim, GiveUp, Read, Commit, Release, Expire, Crash (Commit is *)
(* Lock..Ack as one step; vocabulary and implementing functions:           *)
(* specs/README.md).  Guards (mutants override them): GrantAllowed,        *)
(* ClaimFenced.                                                            *)
(*                                                                         *)
(* Bounds: Agents = {a1,a2,a3}, MaxCrashes = 2, MaxStalls = 2 (leases of   *)
(* live holders that run out under them): covers a crash while holding the *)
(* claim at every step, a stalled acceptor overtaken by a later claimant,  *)
(* two of the three agents crashing, and all of these together.  Grants are*)
(* bounded by crashes + stalls, so no epoch bound is needed.               *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS Agents, MaxCrashes, MaxStalls, None

VARIABLES epoch, holder, expired,   \* the task key's claim state
          status,                   \* "open" or "accepted"
          pc, my, rs,               \* per agent: step, claim epoch held (0 = none), status read
          crashes, stalls,          \* bounds
          accepts                   \* ghost: sequence of acknowledged acceptances

vars == <<epoch, holder, expired, status, pc, my, rs, crashes, stalls, accepts>>

LeaseLive == holder # None /\ ~expired

\* GUARD: Store.claim grants only when no live claim exists (an expired
\* lease does not block).
GrantAllowed == ~LeaseLive
\* GUARD: Claim.commit's fence: the agent's epoch is the key's, it is the
\* holder and its lease is live (rules.check_fence).
ClaimFenced(a) == my[a] = epoch /\ holder = a /\ ~expired

Init == /\ epoch = 0 /\ holder = None /\ expired = FALSE
        /\ status = "open"
        /\ pc = [a \in Agents |-> "idle"]
        /\ my = [a \in Agents |-> 0]
        /\ rs = [a \in Agents |-> "open"]
        /\ crashes = 0 /\ stalls = 0
        /\ accepts = <<>>

Claim(a) == /\ pc[a] = "idle" /\ status = "open"
            /\ GrantAllowed
            /\ epoch' = epoch + 1 /\ holder' = a /\ expired' = FALSE
            /\ my' = [my EXCEPT ![a] = epoch + 1]
            /\ pc' = [pc EXCEPT ![a] = "claimed"]
            /\ UNCHANGED <<status, rs, crashes, stalls, accepts>>

\* The task was taken by someone else: nothing to do.
GiveUp(a) == /\ pc[a] = "idle" /\ status = "accepted"
             /\ pc' = [pc EXCEPT ![a] = "finished"]
             /\ UNCHANGED <<epoch, holder, expired, status, my, rs, crashes, stalls, accepts>>

Read(a) == /\ pc[a] = "claimed"
           /\ rs' = [rs EXCEPT ![a] = status]
           /\ pc' = [pc EXCEPT ![a] = "read"]
           /\ UNCHANGED <<epoch, holder, expired, status, my, crashes, stalls, accepts>>

Commit(a) == /\ pc[a] = "read"
             /\ IF rs[a] = "open"
                  THEN IF ClaimFenced(a)
                         THEN /\ status' = "accepted"
                              /\ accepts' = Append(accepts, [by |-> a, ep |-> my[a]])
                              /\ pc' = [pc EXCEPT ![a] = "working"]
                              /\ UNCHANGED <<holder, my>>
                         ELSE \* FencedError: drop the claim, start over
                              /\ pc' = [pc EXCEPT ![a] = "idle"]
                              /\ my' = [my EXCEPT ![a] = 0]
                              /\ UNCHANGED <<status, accepts, holder>>
                  ELSE \* already accepted by another: release and stop
                       /\ holder' = IF holder = a /\ my[a] = epoch THEN None ELSE holder
                       /\ pc' = [pc EXCEPT ![a] = "finished"]
                       /\ my' = [my EXCEPT ![a] = 0]
                       /\ UNCHANGED <<status, accepts>>
             /\ UNCHANGED <<epoch, expired, rs, crashes, stalls>>

Release(a) == /\ pc[a] = "working"
              /\ holder' = IF holder = a /\ my[a] = epoch THEN None ELSE holder
              /\ my' = [my EXCEPT ![a] = 0]
              /\ pc' = [pc EXCEPT ![a] = "finished"]
              /\ UNCHANGED <<epoch, expired, status, rs, crashes, stalls, accepts>>

\* A lease runs out.  A crashed holder's lease always eventually does; a live
\* holder's lease runs out under it at most MaxStalls times (it stalled).
Expire == /\ holder # None /\ ~expired
          /\ pc[holder] = "crashed" \/ stalls < MaxStalls
          /\ expired' = TRUE
          /\ stalls' = IF pc[holder] = "crashed" THEN stalls ELSE stalls + 1
          /\ UNCHANGED <<epoch, holder, status, pc, my, rs, crashes, accepts>>

Crash(a) == /\ pc[a] \notin {"finished", "crashed"}
            /\ crashes < MaxCrashes
            /\ crashes' = crashes + 1
            /\ pc' = [pc EXCEPT ![a] = "crashed"]
            /\ UNCHANGED <<epoch, holder, expired, status, my, rs, stalls, accepts>>

Done == /\ \A a \in Agents : pc[a] \in {"finished", "crashed"}
        /\ UNCHANGED vars

Step(a) == Claim(a) \/ GiveUp(a) \/ Read(a) \/ Commit(a) \/ Release(a)

Next == \/ \E a \in Agents : Step(a) \/ Crash(a)
        \/ Expire
        \/ Done

Spec == /\ Init /\ [][Next]_vars
        /\ \A a \in Agents : WF_vars(Step(a))
        /\ WF_vars(Expire)

-----------------------------------------------------------------------------
TypeOK == /\ status \in {"open", "accepted"}
          /\ holder \in Agents \cup {None}
          /\ pc \in [Agents -> {"idle","claimed","read","working","finished","crashed"}]

\* At most one acceptance of the task is ever recorded and acknowledged.
AtMostOneAcceptance == Len(accepts) <= 1

\* Liveness: a crashed acceptor does not block the task forever: its claim
\* becomes claimable again ...
CrashedTaskClaimable == \A a \in Agents : (pc[a] = "crashed" /\ LeaseLive /\ holder = a) ~> ~LeaseLive

\* ... and the task is eventually accepted by someone (at most one agent crashes).
EventuallyAccepted == <>(status = "accepted")
=============================================================================
