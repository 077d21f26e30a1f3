--[[
Counts a batch of rule hits and opens alerts, atomically, so several workers sharing one
Redis count every event once and open one alert per incident.

KEYS: one `seen` key per event of the batch (nEvents of them), then three keys per hit:
      current window counter, previous window counter, the rule+subject's open-alert key.
ARGV: [1] nEvents, [2] ttl of the seen keys (s), then six values per hit:
      event index (1-based, into the seen keys), threshold, weight of the previous window
      (1 - elapsed part of the current one), counter ttl (s), cooldown (s), id for a new alert.
Returns one {state, crossed, estimate, alert id} per hit:
  state 0: not counted (a redelivered event) or counted with no alert open;
  state 1: counted, an alert was open (its cooldown restarts);
  state 2: counted, crossed the threshold and opened the alert (id = the given one).
  crossed 1: the sliding-window estimate (current count + previous count × weight, rounded up,
             so a burst across a window boundary is not undercounted) reached the threshold;
             the counters restart at 0, so the next crossing needs a full threshold of new events.
]]
local nEvents = tonumber(ARGV[1])
local fresh = {}
for i = 1, nEvents do
  fresh[i] = redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) ~= false
end
local out = {}
local hit = 0
for a = 3, #ARGV, 6 do
  local base = nEvents + hit * 3
  hit = hit + 1
  if not fresh[tonumber(ARGV[a])] then
    out[hit] = { 0, 0, 0, '' }
  else
    local cur, prev, alert = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
    local count = redis.call('INCR', cur)
    if count == 1 then redis.call('EXPIRE', cur, ARGV[a + 3]) end
    local previous = tonumber(redis.call('GET', prev) or '0')
    local estimate = count + math.ceil(previous * tonumber(ARGV[a + 2]))
    local crossed = 0
    if estimate >= tonumber(ARGV[a + 1]) then
      crossed = 1
      redis.call('DEL', cur, prev)
    end
    local open = redis.call('GET', alert)
    local state = 0
    if open then
      state = 1
      redis.call('EXPIRE', alert, ARGV[a + 4])
    elseif crossed == 1 then
      open = ARGV[a + 5]
      redis.call('SET', alert, open, 'EX', ARGV[a + 4])
      state = 2
    end
    out[hit] = { state, crossed, estimate, open or '' }
  end
end
return out
