--[[
Revocation, bans and every rate-limit window of a batch of requests, checked and counted
atomically in one round trip, in order (two requests of one consumer in a batch count as two).
Every window is counted on Redis' own clock (TIME), so any number of sidecars share one clock
and one count, by one of three algorithms:
  f fixed:   one counter per aligned window (`<key>:<window index>`); up to 2x the limit across a
             window edge; memory O(1) per key
  s sliding: a log of the last `size` seconds (sorted set `<key>:s`, one member per request);
             never more than the limit in any `size`-second span; memory O(limit) per key
  g gcra:    the generic cell rate algorithm (`<key>:g` holds the theoretical arrival time):
             `limit` per `size` evenly, `burst` at once; memory O(1) per key

ARGV[1]   number of decisions in the batch
Then, per decision, in order, its KEYS and ARGV follow those of the one before:
  KEYS    one key per check letter (see below), in the letters' order
          counter base keys, one per window; the window index is appended
  ARGV    checks: the letters of the checks to make, in this order of precedence, each with its
            key: J revoked token id, C consumer revocation (holds unix seconds), I ip ban,
            B consumer ban. One Redis has them all ('JCIB', or 'I' when anonymous); on a
            cluster a call holds only the keys of one slot (e.g. 'CB'), the rest is checked
            elsewhere (auth-sidecar/limiter/decision-plan.ts)
          number of windows
          token iat in unix seconds (0 when unknown: revoked by any consumer revocation)
          1 to count the request, 0 to check only (the ACL already refused it)
          give-up time in unix milliseconds by Redis' clock (0: none): a decision that runs
            later (Redis was frozen or slow) is answered 7 and checks and counts nothing, since
            its caller has already answered without it
          cost: what the request counts as in every window (a route's `cost`, 1 by default)
          per window, in KEYS order: size in seconds, limit, algorithm (f fixed, s sliding, g gcra),
            burst (gcra: requests that may come at once; ignored by the others), flags (the sum
            of 1 count refused: a request this decision refuses still counts in this window;
            2 shadow: this window never refuses, it only reports that it would have)

A refused request counted (flag 1) keeps a hammering client refused, with bounded memory: fixed
adds to the window's count; sliding logs it and keeps only the newest `limit` entries; gcra moves
the arrival time to the end of the burst, so the next request passes one interval after the
last attempt. A full shadow window is not counted (as if it had refused) unless flag 1 is set.

Returns, per decision, 5 numbers and one per window: status; window (1-based; 0 none): the
refusing one (the one free again last), else the tightest enforced one; its reset in seconds;
the shadow window that would have refused (0 none) and its reset; then each window's remaining
  status 0 allowed, 1 token revoked, 2 consumer revoked, 3 ip banned, 4 consumer banned, 5 rate limited,
         6 undecidable (a key of that decision holds something unexpected; the others still count),
         7 too late (past its give-up time; nothing counted),
         8 not here (cluster, one batch over several slots: this node no longer serves that
           decision's slot; nothing counted, since a decision's keys share one slot and the
           first read failed)

On a cluster, a batch over several slots of one node runs as the cross-slot variant
(redis-decider.ts): declared keys must share one slot even with allow-cross-slot-keys, so it
gets one routing key and all of the above in ARGV, `ARGV[1]` being the number of keys. K and A
are the keys and arguments either way.
]]
local K, A = KEYS, ARGV
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local DENIED_BY = { J = 1, I = 3, B = 4 }
local COUNT_REFUSED, SHADOW = 1, 2
-- Argument slots per decision before its windows, and per window.
local DECISION_ARGS, WINDOW_ARGS = 6, 5

local function has(flags, flag) return math.floor(flags / flag) % 2 == 1 end

-- One window's state before this request: whether `cost` more would exceed it, and when it is free again.
local function look(x, key, cost)
  if x.algorithm == 'f' then
    local index = math.floor(now / x.size)
    x.key = key .. ':' .. index
    x.count = tonumber(redis.call('GET', x.key) or '0')
    x.full = x.count + cost > x.limit
    x.reset = math.max(1, math.ceil((index + 1) * x.size - now))
  elseif x.algorithm == 's' then
    -- Sliding log: one member per counted request of the last `size` seconds (exact; memory per key ~ limit).
    x.key = key .. ':s'
    redis.call('ZREMRANGEBYSCORE', x.key, '-inf', now - x.size)
    x.count = redis.call('ZCARD', x.key)
    x.full = x.count + cost > x.limit
    -- Free for `cost` more once the entry at this rank (oldest first) leaves; the oldest when not full.
    local at = x.full and (x.count + cost - x.limit - 1) or 0
    local entry = redis.call('ZRANGE', x.key, at, at, 'WITHSCORES')
    x.reset = entry[2] and math.max(1, math.ceil(tonumber(entry[2]) + x.size - now)) or x.size
  else
    -- GCRA: `base` the theoretical arrival time (TAT) now, `tat` after this request; `burst` may come at once.
    x.key = key .. ':g'
    x.interval = x.size / x.limit
    x.base = math.max(tonumber(redis.call('GET', x.key) or '0'), now)
    x.tat = x.base + x.interval * cost
    local ahead = x.tat - now
    x.full = ahead > x.burst * x.interval + 1e-9
    x.reset = math.max(1, math.ceil(x.full and (ahead - x.burst * x.interval) or (ahead - x.interval * cost)))
  end
end

-- Counts the request (`cost` units) in the window, a refused one (full) with bounded memory; gcra's `base`
-- becomes the TAT stored. Returns what remains.
local function count(x, cost)
  if x.algorithm == 'f' then
    local n = redis.call('INCRBY', x.key, cost)
    if n == cost then redis.call('EXPIRE', x.key, x.size + 1) end
    return x.limit - n
  elseif x.algorithm == 's' then
    local member = t[1] .. t[2]
    for _ = 1, cost do
      while redis.call('ZADD', x.key, 'NX', now, member) == 0 do member = member .. '+' end
    end
    if x.full then redis.call('ZREMRANGEBYRANK', x.key, 0, -(x.limit + 1)) end
    redis.call('PEXPIRE', x.key, math.ceil(x.size * 1000) + 1000)
    return math.max(0, x.limit - x.count - cost)
  else
    x.base = x.full and (now + x.burst * x.interval) or x.tat
    redis.call('SET', x.key, string.format('%.6f', x.base), 'PX', math.ceil((x.base - now) * 1000) + 1000)
    return x.full and 0 or math.floor((x.burst * x.interval - (x.base - now)) / x.interval + 1e-9)
  end
end

-- What remains of a window not counted.
local function remaining_of(x)
  if x.algorithm == 'g' then return math.floor((x.burst * x.interval - (x.base - now)) / x.interval + 1e-9) end
  return x.limit - x.count
end

-- k: index of the decision's first key; a: index of its iat argument.
local function decide(k, a, checks, windows)
  local give_up = tonumber(A[a + 2])
  if give_up > 0 and now_ms > give_up then return { 7 } end
  for i = 1, #checks do
    local check, key = string.sub(checks, i, i), K[k + i - 1]
    if check == 'C' then
      local since = redis.call('GET', key)
      if since and tonumber(A[a]) <= assert(tonumber(since), 'consumer revocation is not a number') then return { 2 } end
    elseif redis.call('EXISTS', key) == 1 then
      return { assert(DENIED_BY[check], 'unknown check') }
    end
  end
  k = k + #checks
  local counted, cost = A[a + 1] == '1', tonumber(A[a + 3])

  -- Phase 1: each window's state; the enforced window that refuses and the shadow one that would (the one free again last).
  local w = {}
  local blocked, shadowed = 0, 0
  for i = 1, windows do
    local at = a + 4 + WINDOW_ARGS * (i - 1)
    local x = { size = tonumber(A[at]), limit = tonumber(A[at + 1]), algorithm = A[at + 2], burst = tonumber(A[at + 3]), flags = tonumber(A[at + 4]) }
    look(x, K[k + i - 1], cost)
    w[i] = x
    if x.full then
      if has(x.flags, SHADOW) then
        if shadowed == 0 or x.reset > w[shadowed].reset then shadowed = i end
      elseif blocked == 0 or x.reset > w[blocked].reset then
        blocked = i
      end
    end
  end

  -- Phase 2: count the request where it counts (not at all when the ACL already refused it).
  local out = { blocked > 0 and 5 or 0, 0, 0, shadowed, shadowed > 0 and w[shadowed].reset or 0 }
  local tightest
  for i = 1, windows do
    local x = w[i]
    local refused = blocked > 0 or x.full
    local remaining
    if counted and (not refused or has(x.flags, COUNT_REFUSED)) then remaining = count(x, cost) else remaining = remaining_of(x) end
    if x.full then remaining = 0 end
    out[5 + i] = remaining
    if not has(x.flags, SHADOW) and (tightest == nil or remaining < out[5 + tightest]) then tightest = i end
  end
  local named = blocked > 0 and blocked or tightest
  if named then
    out[2] = named
    -- gcra, allowed: free again (its whole burst) when the arrival time after this request is reached.
    out[3] = (blocked == 0 and w[named].algorithm == 'g') and math.max(1, math.ceil(w[named].base - now)) or w[named].reset
  end
  return out
end

local out = {}
local k, a = 1, 2
for d = 1, tonumber(A[1]) do
  local checks, windows = A[a], tonumber(A[a + 1])
  local ok, answer = pcall(decide, k, a + 2, checks, windows)
  if not ok then answer = { string.find(tostring(answer), 'non local key', 1, true) and 8 or 6 } end
  for i = 1, 5 + windows do out[#out + 1] = answer[i] or 0 end
  k = k + #checks + windows
  a = a + DECISION_ARGS + WINDOW_ARGS * windows
end
return out
