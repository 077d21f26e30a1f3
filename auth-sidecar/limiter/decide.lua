--[[
Revocation, bans and every rate-limit window of one request, checked and counted atomically
in one round trip. Windows are fixed and aligned on Redis' own clock (TIME), so any number
of sidecars share one clock and one count.

KEYS[1]     revoked token id key            ('' when the token has no jti, or no token)
KEYS[2]     consumer revocation key         ('' when anonymous): holds unix seconds
KEYS[3]     ip ban key
KEYS[4]     consumer ban key                ('' when anonymous)
KEYS[5..]   counter base keys, one per window; the window index is appended
ARGV[1]     token iat in unix seconds       (0 when unknown: revoked by any consumer revocation)
ARGV[2]     1 to count the request, 0 to check only (the ACL already refused it)
ARGV[3..]   per window, in KEYS order: size in seconds, limit

Returns { status, window (1-based; 0 none), max, remaining, reset seconds }
  status 0 allowed, 1 token revoked, 2 consumer revoked, 3 ip banned, 4 consumer banned, 5 rate limited
]]
if KEYS[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then return { 1, 0, 0, 0, 0 } end
if KEYS[2] ~= '' then
  local since = redis.call('GET', KEYS[2])
  if since and tonumber(ARGV[1]) <= tonumber(since) then return { 2, 0, 0, 0, 0 } end
end
if redis.call('EXISTS', KEYS[3]) == 1 then return { 3, 0, 0, 0, 0 } end
if KEYS[4] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then return { 4, 0, 0, 0, 0 } end

local windows = #KEYS - 4
if windows == 0 then return { 0, 0, 0, 0, 0 } end

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local keys, sizes, limits, counts, resets = {}, {}, {}, {}, {}
local blocked, blocked_reset = 0, 0
for i = 1, windows do
  local size, limit = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local index = math.floor(now / size)
  keys[i], sizes[i], limits[i] = KEYS[4 + i] .. ':' .. index, size, limit
  counts[i] = tonumber(redis.call('GET', keys[i]) or '0')
  resets[i] = math.max(1, math.ceil((index + 1) * size - now))
  if counts[i] >= limit and resets[i] > blocked_reset then blocked, blocked_reset = i, resets[i] end
end
if blocked > 0 then return { 5, blocked, limits[blocked], 0, blocked_reset } end

local tightest, tightest_remaining = 1, nil
for i = 1, windows do
  local count = counts[i]
  if ARGV[2] == '1' then
    count = redis.call('INCR', keys[i])
    if count == 1 then redis.call('EXPIRE', keys[i], sizes[i] + 1) end
  end
  local remaining = limits[i] - count
  if tightest_remaining == nil or remaining < tightest_remaining then tightest, tightest_remaining = i, remaining end
end
return { 0, tightest, limits[tightest], tightest_remaining, resets[tightest] }
