--------------------------- MODULE CommitRecovery ---------------------------
(***************************************************************************)
(* The on-disk commit protocol of FileStore for ONE key (docs/design.md,   *)
(* "On-disk format"): the key's append-only log data/<key>.jsonl, each     *)
(* line the key's full state; a commit takes the key lock, reads the last  *)
(* complete line, writes the new line after it with one write that also   *)
(* blanks whatever torn bytes lie past it (format 4: the file is grown in  *)
(* steps of blank padding, which no line ever is, so a write overwrites    *)
(* written blocks), fdatasyncs it (and fsyncs the directory unless this    *)
(* process has itself seen the log's entry synced), then acknowledges.     *)
(* Padding is not modelled: it reads as nothing, as the space past a file's *)
(* end does.  Compaction                                                   *)
(* keeps the newest Keep lines: temp file, fsync, rename over the log,     *)
(* fsync the directory, all under the lock.                                *)
(*                                                                         *)
(* Files are modelled per inode, in two copies: `cache` (the page cache,   *)
(* what every process sees) and `disk` (what survives power loss); the     *)
(* directory likewise (`dcache`, `ddisk`).  A line is full, torn (a prefix *)
(* with no newline) or mixed (torn bytes glued to a later line: a newline- *)
(* terminated line that fails its CRC).  Faults: the lock holder is        *)
(* killed between any two steps or in the middle of its write (Crash,      *)
(* TornWrite: page cache intact, lock released by the kernel); power loss  *)
(* (PowerLoss: each file keeps its synced bytes plus any prefix of its     *)
(* unsynced bytes, possibly ending in a torn line; the directory keeps its *)
(* synced or its current entries).                                         *)
(*                                                                         *)
(* Actions: Lock, ReadTail, Write, TornWrite, Sync, Ack, CompactWrite,     *)
(* CompactSync, CompactRename, CompactDirSync, Crash, PowerLoss            *)
(* (vocabulary and implementing functions: specs/README.md).  Guards and   *)
(* durability steps (mutants override them): WriteAfterTail, DirSyncNeeded,*)
(* SyncTemp, SyncDir.                                                      *)
(*                                                                         *)
(* Bounds: MaxVer = 3 commits, Keep = 1, MaxCompactions = 1, MaxCrashes = 2 *)
(* (any mix of process kills, torn writes and power losses): a crash or a *)
(* power loss at every step of a commit and of a compaction, two in a row, *)
(* and commits after a compaction.                                         *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS MaxVer, Keep, MaxCompactions, MaxCrashes

MaxIno == 1 + MaxCompactions + MaxCrashes   \* a power loss can orphan a just-created file
Inodes == 1..MaxIno
Names == {"log", "tmp"}

VARIABLES cache, disk,      \* [Inodes -> Seq(Line)]
          dcache, ddisk,    \* [Names -> 0..MaxIno]  (0 = no such entry)
          nextIno,          \* next free inode
          pc,               \* the lock holder's step, "idle" = lock free
          ino,              \* inode the lock holder opened
          validLen,         \* number of complete lines it read
          nextv,            \* the version it is committing
          created,          \* it created the log file
          known,            \* inodes whose directory entry the lock holder itself fsynced
          acked,            \* versions acknowledged to callers
          crashes, compactions

vars == <<cache, disk, dcache, ddisk, nextIno, pc, ino, validLen, nextv,
          created, known, acked, crashes, compactions>>

Full(v) == [v |-> v, k |-> "full"]
Torn(l) == [v |-> l.v, k |-> "torn"]

\* The newline-terminated lines of a file (a torn tail is not a line).
Complete(f) == IF f # <<>> /\ f[Len(f)].k = "torn" THEN SubSeq(f, 1, Len(f) - 1) ELSE f
Corrupt(f) == Complete(f) # <<>> /\ Complete(f)[Len(Complete(f))].k = "mixed"
\* The key's state as a reader sees it: version of the last complete line.
StateVer(f) == IF Complete(f) = <<>> THEN 0 ELSE Complete(f)[Len(Complete(f))].v

LogFile == IF dcache.log = 0 THEN <<>> ELSE cache[dcache.log]
CanCompact == Len(Complete(LogFile)) > Keep /\ compactions < MaxCompactions /\ ~Corrupt(LogFile)
CanCommit == StateVer(LogFile) < MaxVer

Init == /\ cache = [i \in Inodes |-> <<>>]
        /\ disk = [i \in Inodes |-> <<>>]
        /\ dcache = [n \in Names |-> 0]
        /\ ddisk = [n \in Names |-> 0]
        /\ nextIno = 1
        /\ pc = "idle" /\ ino = 0 /\ validLen = 0 /\ nextv = 0 /\ created = FALSE
        /\ known = {}
        /\ acked = {} /\ crashes = 0 /\ compactions = 0

Lock == /\ pc = "idle"
        /\ CanCommit \/ CanCompact
        /\ pc' = "locked"
        /\ known' \in {known, {}}          \* the same process again, or another one
        /\ UNCHANGED <<cache, disk, dcache, ddisk, nextIno, ino, validLen, nextv, created, acked, crashes, compactions>>

ReadTail == /\ pc = "locked"
            /\ CanCommit
            /\ ino' = dcache.log
            /\ IF Corrupt(LogFile)
                 THEN /\ pc' = "idle"              \* CorruptStateError: nothing overwritten
                      /\ UNCHANGED <<validLen, nextv>>
                 ELSE /\ validLen' = Len(Complete(LogFile))
                      /\ nextv' = StateVer(LogFile) + 1
                      /\ pc' = "checked"
            /\ UNCHANGED <<known, cache, disk, dcache, ddisk, nextIno, created, acked, crashes, compactions>>

\* The file content after writing line `l` (opening the file, creating it if needed).
Base == IF ino = 0 THEN <<>> ELSE SubSeq(cache[ino], 1, validLen)   \* up to the last complete line
\* What writing at the end of the file (O_APPEND) without dropping the torn
\* tail would make: the torn bytes and the new line become one bad line.
Glue(f, l) == IF f # <<>> /\ f[Len(f)].k = "torn"
                THEN Append(SubSeq(f, 1, Len(f) - 1), [v |-> l.v, k |-> "mixed"])
                ELSE Append(f, l)
\* What writing the new line over a torn tail without blanking the rest of it
\* would make: the new line, then (if the torn bytes were the longer) their
\* remainder, bytes after the last complete line that are no torn record.
Remnants(f, l) == IF f # <<>> /\ f[Len(f)].k = "torn"
                    THEN {Append(Base, l), Append(Append(Base, l), [v |-> l.v, k |-> "mixed"])}
                    ELSE {Append(Base, l)}
\* GUARD: the write goes after the last complete line, over a torn tail, and
\* blanks what is left of it (one pwrite of the line and padding).
WriteAfterTail(l) == cache' = [cache EXCEPT ![ino] = Append(Base, l)]
WriteLine(l) ==
    IF ino = 0
      THEN /\ cache' = [cache EXCEPT ![nextIno] = <<l>>]
           /\ dcache' = [dcache EXCEPT !.log = nextIno]
           /\ ino' = nextIno /\ nextIno' = nextIno + 1 /\ created' = TRUE
      ELSE /\ WriteAfterTail(l)
           /\ UNCHANGED <<dcache, ino, nextIno, created>>

Write == /\ pc = "checked"
         /\ WriteLine(Full(nextv))
         /\ pc' = "written"
         /\ UNCHANGED <<known, disk, ddisk, validLen, nextv, acked, crashes, compactions>>

TornWrite == /\ pc = "checked" /\ crashes < MaxCrashes
             /\ WriteLine(Torn(Full(nextv)))
             /\ pc' = "idle" /\ crashes' = crashes + 1 /\ known' = {}
             /\ UNCHANGED <<disk, ddisk, validLen, nextv, acked, compactions>>

\* fdatasync; then fsync the directory unless this process has itself fsynced
\* it while the log was this inode (a creator or compactor may have died
\* before its directory fsync: its entry is not durable yet).
\* GUARD: this process must fsync the directory unless it has itself seen
\* the log's entry synced (for this inode).
DirSyncNeeded == created \/ ino \notin known

Sync == /\ pc = "written"
        /\ disk' = [disk EXCEPT ![ino] = cache[ino]]
        /\ IF DirSyncNeeded
             THEN ddisk' = dcache /\ known' = known \cup {ino}
             ELSE UNCHANGED <<ddisk, known>>
        /\ pc' = "synced"
        /\ UNCHANGED <<cache, dcache, nextIno, ino, validLen, nextv, created, acked, crashes, compactions>>

Ack == /\ pc = "synced"
       /\ acked' = acked \cup {nextv}
       /\ pc' = "idle" /\ created' = FALSE
       /\ UNCHANGED <<known, cache, disk, dcache, ddisk, nextIno, ino, validLen, nextv, crashes, compactions>>

CompactWrite == /\ pc = "locked" /\ CanCompact
                /\ LET c == Complete(LogFile) IN
                     cache' = [cache EXCEPT ![nextIno] = SubSeq(c, Len(c) - Keep + 1, Len(c))]
                /\ dcache' = [dcache EXCEPT !.tmp = nextIno]
                /\ nextIno' = nextIno + 1 /\ compactions' = compactions + 1
                /\ pc' = "ctmp"
                /\ UNCHANGED <<known, disk, ddisk, ino, validLen, nextv, created, acked, crashes>>

\* GUARD: compaction fsyncs the temp file before the rename.
SyncTemp == disk' = [disk EXCEPT ![dcache.tmp] = cache[dcache.tmp]]
\* GUARD: compaction fsyncs the directory after the rename.
SyncDir == ddisk' = dcache

CompactSync == /\ pc = "ctmp"
               /\ SyncTemp
               /\ pc' = "csynced"
               /\ UNCHANGED <<known, cache, dcache, ddisk, nextIno, ino, validLen, nextv, created, acked, crashes, compactions>>

CompactRename == /\ pc = "csynced"
                 /\ dcache' = [log |-> dcache.tmp, tmp |-> 0]
                 /\ pc' = "renamed"
                 /\ UNCHANGED <<known, cache, disk, ddisk, nextIno, ino, validLen, nextv, created, acked, crashes, compactions>>

CompactDirSync == /\ pc = "renamed"
                  /\ SyncDir
                  /\ known' = known \cup {dcache.log}
                  /\ pc' = "idle"
                  /\ UNCHANGED <<cache, disk, dcache, nextIno, ino, validLen, nextv, created, acked, crashes, compactions>>

Crash == /\ pc # "idle" /\ crashes < MaxCrashes
         /\ pc' = "idle" /\ created' = FALSE /\ crashes' = crashes + 1 /\ known' = {}
         /\ UNCHANGED <<cache, disk, dcache, ddisk, nextIno, ino, validLen, nextv, acked, compactions>>

\* What a file can hold after power loss: its synced lines plus any prefix of
\* the unsynced ones, the last possibly torn.
CommonPrefix(d, c) == LET n == {i \in 0..Len(c) : i <= Len(d) /\ SubSeq(d, 1, i) = SubSeq(c, 1, i)}
                      IN CHOOSE m \in n : \A j \in n : j <= m
Survive(i) == LET d == disk[i]  c == cache[i]  p == CommonPrefix(d, c) IN
              {d} \cup {SubSeq(c, 1, k) : k \in p..Len(c)}
                  \cup {Append(SubSeq(c, 1, k), Torn(c[k + 1])) : k \in p..(Len(c) - 1)}
RECURSIVE Outcomes(_)
Outcomes(n) == IF n = 0 THEN {<<>>} ELSE {Append(o, s) : o \in Outcomes(n - 1), s \in Survive(n)}

PowerLoss == /\ crashes < MaxCrashes
             /\ \E files \in Outcomes(MaxIno), dir \in {ddisk, dcache} :
                  /\ cache' = [i \in Inodes |-> files[i]] /\ disk' = cache'
                  /\ dcache' = dir /\ ddisk' = dir
             /\ pc' = "idle" /\ created' = FALSE /\ crashes' = crashes + 1 /\ known' = {}
             /\ UNCHANGED <<nextIno, ino, validLen, nextv, acked, compactions>>

\* All commits are in and nothing is left to compact: stutter (so that TLC's
\* deadlock check reports any other state where nothing can move).
Done == /\ pc = "idle" /\ ~CanCommit /\ ~CanCompact
        /\ UNCHANGED vars

Steps == Lock \/ ReadTail \/ Write \/ Sync \/ Ack \/ CompactWrite \/ CompactSync \/ CompactRename \/ CompactDirSync
Next == Steps \/ TornWrite \/ Crash \/ PowerLoss \/ Done

Spec == Init /\ [][Next]_vars /\ WF_vars(Steps)

-----------------------------------------------------------------------------
TypeOK == /\ pc \in {"idle","locked","checked","written","synced","ctmp","csynced","renamed"}
          /\ dcache \in [Names -> 0..MaxIno] /\ ddisk \in [Names -> 0..MaxIno]
          /\ crashes \in 0..MaxCrashes

\* A crash leaves the old or the new state, never a mix: every newline-
\* terminated line of the log is one whole line written by one commit (no
\* torn bytes glued to a later line), and a torn line only ever at the end.
OldOrNewNeverMixed ==
    /\ \A i \in 1..Len(LogFile) : LogFile[i].k # "mixed"
    /\ \A i \in 1..(Len(LogFile) - 1) : LogFile[i].k = "full"

\* No acknowledged commit is lost, whatever crashed or lost power: the key's
\* state is readable and at least as new as every acknowledged version.
NoLostAck == \A v \in acked : ~Corrupt(LogFile) /\ StateVer(LogFile) >= v

\* Complete lines carry consecutive versions (one per accepted commit).
VersionContiguous == LET c == Complete(LogFile) IN
                     \A i \in 1..(Len(c) - 1) : c[i + 1].v = c[i].v + 1

\* Liveness: crashes never leave a lock or a file that blocks the key: all
\* MaxVer commits eventually land.
AllCommitsLand == <>(StateVer(LogFile) = MaxVer /\ ~Corrupt(LogFile))
=============================================================================
