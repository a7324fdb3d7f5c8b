-- One script carries everything a trip to Redis brings. KEYS: none (the minute's keys are named
-- from Redis's own clock, so instances whose clocks differ still share one window). ARGV: slot
-- ms, budget keep seconds; the number of token corrections, then three each: subject, window,
-- tokens to add; the number of budget settlements, then four each: budget, ticket, the amount
-- held, the cost to spend; then operations, each "a" (an admission: ticket, number of checks,
-- number of holds, the amount to hold, then five per check: subject, rpm, parallel, tpm,
-- estimate, -1 for not limited, then three per hold: budget, max_budget, the database's spend)
-- or "r" (a release of a call's slots: ticket, number of subjects, the subjects). Returns
-- {window, seconds left in the minute}, then for each admission in order {refused check or
-- hold (1-based) or 0, limit, a refusing budget's spend and the sum of its holds, or '', ''}.
--
-- A budget is a hash (spend: its counter, held: the sum of the holds in flight) beside a sorted
-- set of its holds ("ticket|amount", scored by when they expire). Amounts go in and out of
-- Redis as the strings Teamgate sent (Lua would print numbers to 14 digits).
local t = redis.call('TIME')
local seconds = tonumber(t[1])
local now = seconds * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(seconds / 60)
local left = 60 - seconds % 60
local slot_ms = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  local minute = 'teamgate:minute:' .. ARGV[i] .. ':' .. ARGV[i + 1]
  if redis.call('EXISTS', minute) == 1 then
    redis.call('HINCRBY', minute, 'tokens', tonumber(ARGV[i + 2]))
  end
  i = i + 3
end
local settlements = tonumber(ARGV[i])
i = i + 1
for _ = 1, settlements do
  local budget = 'teamgate:budgets:' .. ARGV[i]
  local holds = budget .. ':holds'
  -- the hold is there unless it expired and was taken off; the budget then is too (they
  -- expire together), else it may be gone and must not be started again from this cost alone
  local there = redis.call('ZREM', holds, ARGV[i + 1] .. '|' .. ARGV[i + 2]) == 1
  if there then
    if redis.call('ZCARD', holds) == 0 then
      redis.call('HSET', budget, 'held', '0')  -- nothing in flight: no rounding left over
    else
      redis.call('HINCRBYFLOAT', budget, 'held', '-' .. ARGV[i + 2])
    end
  end
  if ARGV[i + 3] ~= '0' and (there or redis.call('EXISTS', budget) == 1) then
    redis.call('HINCRBYFLOAT', budget, 'spend', ARGV[i + 3])
  end
  i = i + 4
end
local out = {window, left}
while i <= #ARGV do
  local op, ticket, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if op == 'r' then
    for k = i, i + n - 1 do redis.call('ZREM', 'teamgate:slots:' .. ARGV[k], ticket) end
    i = i + n
  else
    local holds, amount = tonumber(ARGV[i]), ARGV[i + 1]
    i = i + 2
    local first_hold = i + n * 5
    local refused, limit, spent, in_flight = 0, '', '', ''
    for k = 0, n - 1 do
      local b = i + k * 5
      local subject = ARGV[b]
      local rpm, par, tpm = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
      if rpm >= 0 or tpm >= 0 then
        local counts = redis.call('HMGET', 'teamgate:minute:' .. subject .. ':' .. window,
                                  'requests', 'tokens')
        if rpm >= 0 and tonumber(counts[1] or 0) >= rpm then
          refused, limit = k + 1, 'rpm'
        elseif tpm >= 0 and tonumber(counts[2] or 0) + tonumber(ARGV[b + 4]) > tpm then
          refused, limit = k + 1, 'tpm'
        end
      end
      if refused == 0 and par >= 0 then
        local slots = 'teamgate:slots:' .. subject
        redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
        if redis.call('ZCARD', slots) >= par then refused, limit = k + 1, 'parallel' end
      end
      if refused ~= 0 then break end
    end
    for h = 0, (refused == 0 and holds or 0) - 1 do
      local b = first_hold + h * 3
      local budget = 'teamgate:budgets:' .. ARGV[b]
      local held_by = budget .. ':holds'
      local counts = redis.call('HMGET', budget, 'spend', 'held')
      local counted, held = counts[1], tonumber(counts[2] or '0')
      if not counted then  -- not seen yet, or dropped: start from the database's spend
        counted, held = ARGV[b + 2], 0
        redis.call('ZREMRANGEBYSCORE', held_by, '-inf', now)
        for _, member in ipairs(redis.call('ZRANGE', held_by, 0, -1)) do
          held = held + tonumber(string.match(member, '|(.*)$'))
        end
        redis.call('HSET', budget, 'spend', counted, 'held', string.format('%.17g', held))
      else
        -- the holds of calls that never settled (a crashed worker's) stop counting
        for _, member in ipairs(redis.call('ZRANGEBYSCORE', held_by, '-inf', now,
                                           'LIMIT', 0, 100)) do
          redis.call('ZREM', held_by, member)
          held = tonumber(redis.call('HINCRBYFLOAT', budget, 'held',
                                     '-' .. string.match(member, '|(.*)$')))
        end
      end
      local total = tonumber(counted) + held
      if total >= tonumber(ARGV[b + 1]) then
        refused, limit = h + 1, 'budget'
        spent, in_flight = counted, string.format('%.17g', held)
        break
      end
    end
    if refused == 0 then
      for k = 0, n - 1 do
        local b = i + k * 5
        local subject = ARGV[b]
        if tonumber(ARGV[b + 1]) >= 0 or tonumber(ARGV[b + 3]) >= 0 then
          local minute = 'teamgate:minute:' .. subject .. ':' .. window
          if redis.call('HINCRBY', minute, 'requests', 1) == 1 then
            redis.call('EXPIRE', minute, 120)  -- the minute's first call
          end
          redis.call('HINCRBY', minute, 'tokens', tonumber(ARGV[b + 4]))
        end
        if tonumber(ARGV[b + 2]) >= 0 then
          local slots = 'teamgate:slots:' .. subject
          redis.call('ZADD', slots, now + slot_ms, ticket)
          redis.call('PEXPIRE', slots, slot_ms)
        end
      end
      for h = 0, holds - 1 do
        local budget = 'teamgate:budgets:' .. ARGV[first_hold + h * 3]
        redis.call('HINCRBYFLOAT', budget, 'held', amount)
        redis.call('ZADD', budget .. ':holds', now + slot_ms, ticket .. '|' .. amount)
        redis.call('EXPIRE', budget, keep)
        redis.call('EXPIRE', budget .. ':holds', keep)
      end
    end
    out[#out + 1] = refused
    out[#out + 1] = limit
    out[#out + 1] = spent
    out[#out + 1] = in_flight
    i = first_hold + holds * 3
  end
end
return out
