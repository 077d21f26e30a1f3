--[[
Revocation, bans and every rate-limit window of a batch of requests, checked and counted
atomically in one round trip, in order (two requests of one consumer in a batch count as two).
Windows are fixed and aligned on Redis' own clock (TIME), so any number of sidecars share one
clock and one count.

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
          per window, in KEYS order: size in seconds, limit

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

  local keys, sizes, limits, counts, resets = {}, {}, {}, {}, {}
  local blocked, blocked_reset = 0, 0
  for i = 1, windows do
    local size, limit = tonumber(A[a + 1 + 2 * i]), tonumber(A[a + 2 + 2 * i])
    local index = math.floor(now / size)
    keys[i], sizes[i], limits[i] = K[k + i - 1] .. ':' .. index, size, limit
    counts[i] = tonumber(redis.call('GET', keys[i]) or '0')
    resets[i] = math.max(1, math.ceil((index + 1) * size - now))
    if counts[i] >= limit and resets[i] > blocked_reset then blocked, blocked_reset = i, resets[i] end
  end
  if blocked > 0 then return 5, blocked, limits[blocked], 0, blocked_reset end

  local tightest, tightest_remaining = 1, nil
  for i = 1, windows do
    local count = counts[i]
    if A[a + 1] == '1' then
      count = redis.call('INCR', keys[i])
      if count == 1 then redis.call('EXPIRE', keys[i], sizes[i] + 1) end
    end
    local remaining = limits[i] - count
    if tightest_remaining == nil or remaining < tightest_remaining then tightest, tightest_remaining = i, remaining end
  end
  return 0, tightest, limits[tightest], tightest_remaining, resets[tightest]
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
  a = a + 5 + 2 * windows
end
return out
