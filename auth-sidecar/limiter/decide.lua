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
          per window, in KEYS order: size in seconds, limit, algorithm (f fixed, s sliding, g gcra),
            burst (gcra: requests that may come at once; ignored by the others)

Returns, per decision, 5 numbers: status, window (1-based; 0 none), max, remaining, reset seconds
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

-- k: index of the decision's first key; a: index of its iat argument.
local function decide(k, a, checks, windows)
  local give_up = tonumber(A[a + 2])
  if give_up > 0 and now_ms > give_up then return 7, 0, 0, 0, 0 end
  for i = 1, #checks do
    local check, key = string.sub(checks, i, i), K[k + i - 1]
    if check == 'C' then
      local since = redis.call('GET', key)
      if since and tonumber(A[a]) <= assert(tonumber(since), 'consumer revocation is not a number') then return 2, 0, 0, 0, 0 end
    elseif redis.call('EXISTS', key) == 1 then
      return assert(DENIED_BY[check], 'unknown check'), 0, 0, 0, 0
    end
  end
  k = k + #checks
  if windows == 0 then return 0, 0, 0, 0, 0 end

  -- Phase 1: each window's state, and the window that refuses (the one free again last).
  local w = {}
  local blocked, blocked_reset = 0, 0
  for i = 1, windows do
    local size, limit, algorithm = tonumber(A[a - 1 + 4 * i]), tonumber(A[a + 4 * i]), A[a + 1 + 4 * i]
    local x = { size = size, limit = limit, algorithm = algorithm, burst = tonumber(A[a + 2 + 4 * i]) }
    if algorithm == 'f' then
      local index = math.floor(now / size)
      x.key = K[k + i - 1] .. ':' .. index
      x.count = tonumber(redis.call('GET', x.key) or '0')
      x.reset = math.max(1, math.ceil((index + 1) * size - now))
      x.full = x.count >= limit
    elseif algorithm == 's' then
      -- Sliding log: one member per counted request of the last `size` seconds (exact; memory per key ~ limit).
      x.key = K[k + i - 1] .. ':s'
      redis.call('ZREMRANGEBYSCORE', x.key, '-inf', now - size)
      x.count = redis.call('ZCARD', x.key)
      x.full = x.count >= limit
      -- Free again when the entry that makes it full leaves; else when the oldest leaves.
      local at = x.full and (x.count - limit) or 0
      local entry = redis.call('ZRANGE', x.key, at, at, 'WITHSCORES')
      x.reset = entry[2] and math.max(1, math.ceil(tonumber(entry[2]) + size - now)) or size
    else
      -- GCRA: the theoretical arrival time of the next request; `burst` may come at once.
      x.key = K[k + i - 1] .. ':g'
      x.interval = size / limit
      x.tat = math.max(tonumber(redis.call('GET', x.key) or '0'), now) + x.interval
      local ahead = x.tat - now
      x.full = ahead > x.burst * x.interval + 1e-9
      x.reset = math.max(1, math.ceil(x.full and (ahead - x.burst * x.interval) or (ahead - x.interval)))
    end
    w[i] = x
    if x.full and x.reset > blocked_reset then blocked, blocked_reset = i, x.reset end
  end
  if blocked > 0 then return 5, blocked, w[blocked].limit, 0, blocked_reset end

  -- Phase 2: count the request in every window (unless the ACL already refused it).
  local counted = A[a + 1] == '1'
  local tightest, tightest_remaining = 1, nil
  for i = 1, windows do
    local x = w[i]
    local remaining
    if x.algorithm == 'f' then
      local count = x.count
      if counted then
        count = redis.call('INCR', x.key)
        if count == 1 then redis.call('EXPIRE', x.key, x.size + 1) end
      end
      remaining = x.limit - count
    elseif x.algorithm == 's' then
      local count = x.count
      if counted then
        local member = t[1] .. t[2]
        while redis.call('ZADD', x.key, 'NX', now, member) == 0 do member = member .. '+' end
        redis.call('PEXPIRE', x.key, math.ceil(x.size * 1000) + 1000)
        count = count + 1
      end
      remaining = x.limit - count
    else
      local tat = counted and x.tat or (x.tat - x.interval)
      if counted then redis.call('SET', x.key, string.format('%.6f', x.tat), 'PX', math.ceil((x.tat - now) * 1000) + 1000) end
      remaining = math.floor((x.burst * x.interval - (tat - now)) / x.interval + 1e-9)
      x.reset = math.max(1, math.ceil(tat - now))
    end
    if tightest_remaining == nil or remaining < tightest_remaining then tightest, tightest_remaining = i, remaining end
  end
  return 0, tightest, w[tightest].limit, tightest_remaining, w[tightest].reset
end

local out = {}
local k, a = 1, 2
for d = 1, tonumber(A[1]) do
  local checks, windows = A[a], tonumber(A[a + 1])
  local base = 5 * (d - 1)
  local ok, status, window, max, remaining, reset = pcall(decide, k, a + 2, checks, windows)
  if not ok then
    status = string.find(tostring(status), 'non local key', 1, true) and 8 or 6
    window, max, remaining, reset = 0, 0, 0, 0
  end
  out[base + 1], out[base + 2], out[base + 3], out[base + 4], out[base + 5] = status, window, max, remaining, reset
  k = k + #checks + windows
  a = a + 5 + 4 * windows
end
return out
