--[[
volume_spike: counts each consumer's requests per fixed window against its own moving
baseline, atomically, so several workers sharing one Redis see one count per consumer.

KEYS: per consumer of the batch: the batch's seen key (against redelivery), the consumer's
      state hash, the rule+consumer's open-alert key.
ARGV: [1] window index, [2] floor (threshold), [3] factor, [4] alpha of the moving mean,
      [5] state ttl (s), [6] seen ttl (s), [7] cooldown (s), then per consumer: id for a new
      alert, requests n.
State hash: w (window index), c (requests counted in w), avg (mean requests per window; absent
until one full window was seen), full (1 once a window was folded: a consumer's first window is
partial, so it is dropped rather than taken as its baseline).
A window's count crossing max(floor, factor × avg) is a spike (once per window); it opens the
rule+consumer's alert unless one is open. Returns per consumer {alert id or '', opened 0|1,
crossings 0|1, count}: count is what the batch adds to the alert (the crossing, the window's
count; later batches, their requests).
]]
local window, floor, factor, alpha = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local seen, state, alert = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local newId, n = ARGV[8 + i * 2], tonumber(ARGV[9 + i * 2])
  local opened, crossings, count = 0, 0, 0
  local open = redis.call('GET', alert)
  if redis.call('SET', seen, '1', 'NX', 'EX', ARGV[6]) then
    local s = redis.call('HMGET', state, 'w', 'c', 'avg', 'full')
    local w, c, avg, full = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]), s[4]
    if w == nil then
      w = window
    elseif window > w then
      if full then
        avg = avg and avg + alpha * (c - avg) or c
        -- Windows without requests pull the mean down.
        if avg then avg = avg * (1 - alpha) ^ math.min(window - w - 1, 1000) end
      end
      full, w, c = '1', window, 0
    end
    local limit = math.max(floor, factor * (avg or 0))
    local before = c
    c = c + n
    if before < limit and c >= limit then crossings = 1 end
    redis.call('HSET', state, 'w', w, 'c', c)
    if avg then redis.call('HSET', state, 'avg', avg) end
    if full then redis.call('HSET', state, 'full', full) end
    redis.call('EXPIRE', state, ARGV[5])
    if open then
      count = n
    elseif crossings == 1 then
      open, opened, count = newId, 1, c
    end
    if open and count > 0 then redis.call('SET', alert, open, 'EX', ARGV[7]) end
  end
  out[i + 1] = { open or '', opened, crossings, count }
end
return out
