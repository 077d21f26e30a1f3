--[[
volume_spike: counts each consumer's requests per fixed window against its own moving
baseline, atomically, so several workers sharing one Redis see one count per consumer.

KEYS: per consumer and window: the consumer's state hash, the rule+consumer's open-alert key.
ARGV: [1] floor (threshold), [2] factor, [3] alpha of the moving mean, [4] state ttl (s),
      [5] cooldown (s), then per consumer and window: window index, requests n, id for a new
      alert.
State hash: w (window index), c (requests counted in w), avg (mean requests per window; absent
until one full window was seen), full (1 once a window was folded: a consumer's first window is
partial, so it is dropped rather than taken as its baseline).
A window's count crossing max(floor, factor × avg), or factor × floor while there is no avg,
is a spike (once per window); it opens the
rule+consumer's alert unless one is open. Returns per consumer {alert id or '', opened 0|1,
crossings 0|1, count}: count is what the batch adds to the alert (the crossing, the window's
count; later batches, their requests).
]]
local floor, factor, alpha = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 0, #KEYS / 2 - 1 do
  local state, alert = KEYS[i * 2 + 1], KEYS[i * 2 + 2]
  local window, n, newId = tonumber(ARGV[6 + i * 3]), tonumber(ARGV[7 + i * 3]), ARGV[8 + i * 3]
  local s = redis.call('HMGET', state, 'w', 'c', 'avg', 'full')
  local w, c, avg, full = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]), s[4]
  if w == nil then
    w = window
  elseif window > w then
    if full then
      avg = avg and avg + alpha * (c - avg) or c
      -- Windows without requests pull the mean down.
      avg = avg * (1 - alpha) ^ math.min(window - w - 1, 1000)
    end
    full, w, c = '1', window, 0
  end
  -- Without a baseline yet (a new consumer), only a burst over factor × floor is a spike.
  local limit = avg and math.max(floor, factor * avg) or factor * floor
  local crossings = (c < limit and c + n >= limit) and 1 or 0
  c = c + n
  local fields = { 'w', w, 'c', c }
  if avg then fields[#fields + 1] = 'avg'; fields[#fields + 1] = avg end
  if full then fields[#fields + 1] = 'full'; fields[#fields + 1] = full end
  redis.call('HSET', state, unpack(fields))
  redis.call('EXPIRE', state, ARGV[4])
  local open, opened, count = redis.call('GET', alert), 0, n
  if not open and crossings == 1 then open, opened, count = newId, 1, c end
  if open then redis.call('SET', alert, open, 'EX', ARGV[5]) end
  out[i + 1] = { open or '', opened, crossings, count }
end
return out
