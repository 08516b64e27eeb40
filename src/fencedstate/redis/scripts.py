"""The Lua scripts that make each Redis step atomic (loaded once, called by SHA with EVALSHA).

Every key a script touches is passed in ``KEYS`` and shares the store's hash tag, so a script
never crosses a cluster slot. Scripts start with a ``#!lua`` line: Redis then refuses a writing
script *before* it runs when the server is out of memory, and every check below runs before the
first write, so a refused or failing script writes nothing.

Per-key fields of the record hash: ``gen`` (bumped by every write and by a fence: what a commit
compares), ``seq`` (journal events so far), ``ver``, ``ep``, ``hold`` (the current version, epoch
and holder), ``lb``/``ld`` (lease boot and deadline on the server clock), ``cid`` (the commit that
wrote it) and ``rec`` (the record text).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["COMMIT", "FENCE", "JOURNAL_AFTER", "LOAD", "READ", "Script"]


@dataclass(frozen=True)
class Script:
    """A Lua script and the SHA1 Redis knows it by."""

    name: str
    text: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()


READ = Script(
    "read",
    """#!lua flags=no-writes
-- The server clock and every record of KEYS, as one atomic reading.
local t = redis.call('TIME')
local out = {t[1], t[2]}
for i = 1, #KEYS do
  out[#out + 1] = redis.call('HMGET', KEYS[i], 'gen', 'seq', 'ver', 'ep', 'hold', 'rec')
end
return out
""",
)

# KEYS: live, all, events, then (record hash, journal list) per key.
# ARGV: commit_id, decided_at, boot, history_limit, n, events_maxlen, then 15 per key:
#   name, write, gen, seq, ver, ep, hold,  new: ver, ep, hold, lease_boot, lease_deadline,
#   exists, op, record text.
COMMIT = Script(
    "commit",
    """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cid, used, boot = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local limit, n, maxlen = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local W = 15
local function kind(k) return redis.call('TYPE', k)['ok'] end
if kind(KEYS[1]) ~= 'zset' and kind(KEYS[1]) ~= 'none' then return {'type', KEYS[1]} end
if kind(KEYS[2]) ~= 'zset' and kind(KEYS[2]) ~= 'none' then return {'type', KEYS[2]} end
if kind(KEYS[3]) ~= 'stream' and kind(KEYS[3]) ~= 'none' then return {'type', KEYS[3]} end
-- Checks first: nothing is written unless every key is exactly as the client read it.
for i = 0, n - 1 do
  local a = 7 + i * W
  local h, j = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  if kind(h) ~= 'hash' and kind(h) ~= 'none' then return {'type', h} end
  if kind(j) ~= 'list' and kind(j) ~= 'none' then return {'type', j} end
  local c = redis.call('HMGET', h, 'gen', 'seq', 'ver', 'ep', 'hold', 'lb', 'ld')
  -- the writes below do arithmetic on these: refuse now rather than fail half-way
  if not tonumber(c[1] or '0') or not tonumber(c[2] or '0') then return {'type', h} end
  -- version, epoch and holder (and gen/seq: nothing at all changed since the read)
  if (c[1] or '0') ~= ARGV[a + 2] or (c[2] or '0') ~= ARGV[a + 3]
     or (c[3] or '0') ~= ARGV[a + 4] or (c[4] or '0') ~= ARGV[a + 5]
     or (c[5] or '') ~= ARGV[a + 6] then
    return {'stale', ARGV[a]}
  end
  -- the lease: live now exactly when it was live at the instant the client decided
  if c[6] == boot and c[7] and c[7] ~= '' then
    local d = tonumber(c[7])
    if (used < d) ~= (now < d) then return {'lease', ARGV[a]} end
  end
  if ARGV[a + 1] == '1' then
    if tonumber(ARGV[a + 7]) < tonumber(c[3] or '0')
       or tonumber(ARGV[a + 8]) < tonumber(c[4] or '0') then
      return {'regress', ARGV[a]}
    end
  end
end
-- Writes: record, journal entry, indexes and a change notification per changed key.
for i = 0, n - 1 do
  local a = 7 + i * W
  if ARGV[a + 1] == '1' then
    local h, j, name = KEYS[4 + 2 * i], KEYS[5 + 2 * i], ARGV[a]
    local seq = tostring(tonumber(ARGV[a + 3]) + 1)
    redis.call('HINCRBY', h, 'gen', 1)
    redis.call('HSET', h, 'seq', seq, 'ver', ARGV[a + 7], 'ep', ARGV[a + 8], 'hold', ARGV[a + 9],
               'lb', ARGV[a + 10], 'ld', ARGV[a + 11], 'cid', cid, 'rec', ARGV[a + 14])
    if redis.call('RPUSH', j, ARGV[a + 14]) > limit then
      redis.call('LTRIM', j, -limit, -1)
    end
    redis.call('ZADD', KEYS[2], 0, name)
    if ARGV[a + 12] == '1' then
      redis.call('ZADD', KEYS[1], 0, name)
    else
      redis.call('ZREM', KEYS[1], name)
    end
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', 'key', name, 'op', ARGV[a + 13],
               'version', ARGV[a + 7], 'epoch', ARGV[a + 8], 'seq', seq)
  end
end
return {'ok', t[1], t[2]}
""",
)

# KEYS: (record hash, journal list) per key; ARGV: commit_id, n, then gen per key, then the
# probe key's index (1-based) and the journal seq our commit would have taken on it.
FENCE = Script(
    "fence",
    """#!lua
-- After a lost reply: make the lost commit unable to land, then tell whether it had landed.
local cid, n = ARGV[1], tonumber(ARGV[2])
local moved = false
for i = 1, n do
  if (redis.call('HGET', KEYS[2 * i - 1], 'gen') or '0') ~= ARGV[2 + i] then moved = true end
end
for i = 1, n do redis.call('HINCRBY', KEYS[2 * i - 1], 'gen', 1) end
if not moved then return 'fenced' end
local p, slot = tonumber(ARGV[3 + n]), tonumber(ARGV[4 + n])
local cur = tonumber(redis.call('HGET', KEYS[2 * p - 1], 'seq') or '0')
if cur < slot then return 'absent' end
local e = redis.call('LINDEX', KEYS[2 * p], slot - cur - 1)
if not e then return 'trimmed' end
if string.find(e, '"commit_id":"' .. cid .. '"', 1, true) then return 'landed' end
return 'absent'
""",
)

# KEYS: record hash, journal list, live, all; ARGV: name, ver, ep, hold, lease_boot,
# lease_deadline, exists, commit_id, then the record texts oldest first.
LOAD = Script(
    "load",
    """#!lua
-- A copied key's whole retained past, written only if the key has no state here yet.
if redis.call('HEXISTS', KEYS[1], 'rec') == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 'exists'
end
for i = 9, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('HSET', KEYS[1], 'seq', tostring(#ARGV - 8), 'ver', ARGV[2], 'ep', ARGV[3],
           'hold', ARGV[4], 'lb', ARGV[5], 'ld', ARGV[6], 'cid', ARGV[8], 'rec', ARGV[#ARGV])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
if ARGV[7] == '1' then redis.call('ZADD', KEYS[3], 0, ARGV[1]) end
return 'ok'
""",
)

# KEYS: record hash, journal list; ARGV: the last journal seq a watcher reported.
JOURNAL_AFTER = Script(
    "journal_after",
    """#!lua flags=no-writes
-- A key's journal events after seq ARGV[1], atomically with its current seq; cut = 1 when
-- some of them were already trimmed (history_limit): the watcher reports a gap.
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local pos = tonumber(ARGV[1])
if cur <= pos then return {cur, 0, {}} end
local n = redis.call('LLEN', KEYS[2])
local take, cut = cur - pos, 0
if take > n then take, cut = n, 1 end
if take == 0 then return {cur, cut, {}} end
return {cur, cut, redis.call('LRANGE', KEYS[2], -take, -1)}
""",
)
