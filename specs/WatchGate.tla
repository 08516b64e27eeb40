------------------------------ MODULE WatchGate ------------------------------
(***************************************************************************)
(* PostgreSQL watch (issue 25): a commit sends its NOTIFY only while some  *)
(* watcher exists, and a watcher that starts while commits are in flight  *)
(* must still learn of every commit: each one is either in the watcher's  *)
(* first read or notified to it.  Two advisory locks of the store decide  *)
(* it: a watcher holds the presence lock shared for its life; a commit    *)
(* holds the gate shared from its first statement to its end and checks   *)
(* presence (an exclusive try) before it commits; a starting watcher      *)
(* listens, takes presence, waits for the gate to be free (an exclusive   *)
(* lock it lets go at once), then reads where every key is.  A notify is  *)
(* delivered to the sessions listening when its transaction commits.      *)
(*                                                                         *)
(* Actions: Gate, Notify, Commit, Listen, Present, GateWait, Read.         *)
(* Guards (mutants override them): CommitHoldsGate, GateFree.              *)
(*                                                                         *)
(* Bounds: Committers = {c1,c2}, Watchers = {w1,w2}: two commits and two  *)
(* watchers starting at any point of them, every interleaving.           *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS Committers, Watchers

VARIABLES cpc,        \* cpc[c] \in {"gate","notify","commit","done"}
          wpc,        \* wpc[w] \in {"listen","present","gatewait","read","done"}
          gate,       \* committers holding the gate (shared)
          present,    \* watchers holding the presence lock
          listening,  \* watchers that LISTEN
          notifies,   \* notifies[c]: the commit decided to notify
          committed,  \* commits that are durable and visible
          delivered,  \* delivered[c]: watchers the commit's notify reached
          seen        \* seen[w]: commits in watcher w's first read

vars == <<cpc, wpc, gate, present, listening, notifies, committed, delivered, seen>>

Init == /\ cpc = [c \in Committers |-> "gate"]
        /\ wpc = [w \in Watchers |-> "listen"]
        /\ gate = {}
        /\ present = {}
        /\ listening = {}
        /\ notifies = [c \in Committers |-> FALSE]
        /\ committed = {}
        /\ delivered = [c \in Committers |-> {}]
        /\ seen = [w \in Watchers |-> {}]

\* GUARD: the commit holds the gate shared from its start (pg_advisory_xact_lock_shared).
CommitHoldsGate(c) == gate \cup {c}

\* GUARD: a starting watcher waits until no commit holds the gate (pg_advisory_lock).
GateFree == gate = {}

Gate(c) == /\ cpc[c] = "gate"
           /\ gate' = CommitHoldsGate(c)
           /\ cpc' = [cpc EXCEPT ![c] = "notify"]
           /\ UNCHANGED <<wpc, present, listening, notifies, committed, delivered, seen>>

\* The exclusive try of the presence lock fails iff some watcher holds it.
Notify(c) == /\ cpc[c] = "notify"
             /\ notifies' = [notifies EXCEPT ![c] = present # {}]
             /\ cpc' = [cpc EXCEPT ![c] = "commit"]
             /\ UNCHANGED <<wpc, gate, present, listening, committed, delivered, seen>>

\* COMMIT: visible, the notify delivered to the sessions listening now, the gate let go.
Commit(c) == /\ cpc[c] = "commit"
             /\ committed' = committed \cup {c}
             /\ delivered' = [delivered EXCEPT ![c] = IF notifies[c] THEN listening ELSE {}]
             /\ gate' = gate \ {c}
             /\ cpc' = [cpc EXCEPT ![c] = "done"]
             /\ UNCHANGED <<wpc, present, listening, notifies, seen>>

Listen(w) == /\ wpc[w] = "listen"
             /\ listening' = listening \cup {w}
             /\ wpc' = [wpc EXCEPT ![w] = "present"]
             /\ UNCHANGED <<cpc, gate, present, notifies, committed, delivered, seen>>

Present(w) == /\ wpc[w] = "present"
              /\ present' = present \cup {w}
              /\ wpc' = [wpc EXCEPT ![w] = "gatewait"]
              /\ UNCHANGED <<cpc, gate, listening, notifies, committed, delivered, seen>>

GateWait(w) == /\ wpc[w] = "gatewait"
               /\ GateFree
               /\ wpc' = [wpc EXCEPT ![w] = "read"]
               /\ UNCHANGED <<cpc, gate, present, listening, notifies, committed, delivered, seen>>

Read(w) == /\ wpc[w] = "read"
           /\ seen' = [seen EXCEPT ![w] = committed]
           /\ wpc' = [wpc EXCEPT ![w] = "done"]
           /\ UNCHANGED <<cpc, gate, present, listening, notifies, committed, delivered>>

Terminated == /\ \A c \in Committers : cpc[c] = "done"
              /\ \A w \in Watchers : wpc[w] = "done"
              /\ UNCHANGED vars

Next == \/ \E c \in Committers : Gate(c) \/ Notify(c) \/ Commit(c)
        \/ \E w \in Watchers : Listen(w) \/ Present(w) \/ GateWait(w) \/ Read(w)
        \/ Terminated

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
TypeOK == /\ cpc \in [Committers -> {"gate", "notify", "commit", "done"}]
          /\ wpc \in [Watchers -> {"listen", "present", "gatewait", "read", "done"}]
          /\ gate \subseteq Committers
          /\ present \subseteq Watchers
          /\ committed \subseteq Committers

\* A started watcher misses no commit: each is in its first read or was notified to it.
NoMissedCommit == \A w \in Watchers : wpc[w] = "done" =>
                     \A c \in committed : c \in seen[w] \/ w \in delivered[c]
=============================================================================
