--[[
Counts a batch of rule hits and opens alerts, atomically, so several workers sharing one
Redis count every event once and open one alert per incident.

KEYS: nSeen `seen` keys (first the batch's: the hits of the reason rules count when it is new;
      then one per new (jti, ip) sighting of token_many_ips), then three keys per group (the hits of one rule,
      subject and window): current window counter, previous window counter, the rule+subject's
      open-alert key.
ARGV: [1] nSeen, then the ttl (s) of each seen key, then per group: threshold, counter ttl (s),
      cooldown (s), id for a new alert, number of hits n, and n pairs: seen-key index (1-based)
      and weight of the previous window at that hit (1 - elapsed part of the current window).
A batch whose key is there was claimed before: nothing is counted and the reply is that key's
value ('1', or incidents a worker failed to act on and held there, which this call takes). Otherwise each
seen key is set (its ttl restarted); a hit whose key was not there yet is counted: the sliding-window estimate (current count + previous count × weight, rounded up, so
a burst across a window boundary is not undercounted) reaching the threshold is a crossing,
which restarts both counters (the next crossing needs a full threshold of new events) and
opens the alert unless one is open. Returns 1 (the batch is new), then per group {alert id or '', opened 0|1, crossings, count, indices}: `count` is what the hits add to
the alert (the opening hit its estimate, each later one 1), `indices` the hits (1-based, in the
group's order) that added to it.
]]
local nSeen = tonumber(ARGV[1])
local claimed = redis.call('GET', KEYS[1])
if claimed then
  -- Held incidents go to this call alone: the key says "counted" again (the worker holds them
  -- anew should acting on them fail again).
  if claimed ~= '1' then redis.call('SET', KEYS[1], '1', 'KEEPTTL') end
  return { claimed }
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
local fresh = { true }
for i = 2, nSeen do
  fresh[i] = redis.call('SET', KEYS[i], '1', 'EX', ARGV[1 + i], 'GET') == false
end
local out = { 1 }
local group = 0
local a = 2 + nSeen
while a <= #ARGV do
  local base = nSeen + group * 3
  group = group + 1
  local cur, prev, alert = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local threshold, ttl, cooldown, newId, n = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local open = redis.call('GET', alert)
  local opened, crossings, count, indices = 0, 0, 0, {}
  for h = 0, n - 1 do
    if fresh[tonumber(ARGV[a + 5 + h * 2])] then
      local current = redis.call('INCR', cur)
      if current == 1 then redis.call('EXPIRE', cur, ttl) end
      local previous = tonumber(redis.call('GET', prev) or '0')
      local estimate = current + math.ceil(previous * tonumber(ARGV[a + 6 + h * 2]))
      local crossed = estimate >= threshold
      if crossed then
        crossings = crossings + 1
        redis.call('DEL', cur, prev)
      end
      if open then
        count = count + 1
        indices[#indices + 1] = h + 1
      elseif crossed then
        open = newId
        opened = 1
        count = count + estimate
        indices[#indices + 1] = h + 1
      end
    end
  end
  -- The cooldown restarts with each counted event (a redelivered batch does not extend it).
  if open and count > 0 then redis.call('SET', alert, open, 'EX', cooldown) end
  out[group + 1] = { open or '', opened, crossings, count, indices }
  a = a + 5 + n * 2
end
return out
