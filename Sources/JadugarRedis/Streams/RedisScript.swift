/// The adapter's server side: one Redis Function library (Redis 7 `FUNCTION LOAD`, called with
/// `FCALL`) that does every multi-key step atomically inside Redis, so that several processes
/// agree on topology and no message is half-routed, half-settled or lost between two commands.
///
/// A function library rather than an `EVALSHA` script because its helpers are defined once when
/// the library loads instead of on every call (about a third of the cost of a small call), and
/// because Redis keeps libraries in its RDB/AOF files, so they survive a restart.
///
/// Every call is `FCALL <name> 0 <operation> <key prefix> <stream cap> <arguments...>`; the key
/// layout is documented in `docs/redis.md`. Keys are not declared (they depend on stored
/// topology), so the adapter needs a standalone Redis, not a Cluster. The library's name carries
/// a hash of its code, so clients of different versions can share one Redis.
enum RedisScript {
    /// The consumer group every queue's streams carry.
    static let group = "jadugar"
    /// The consumer that holds released (requeued) entries until a consumer claims them.
    static let parkedConsumer = "jadugar.parked"

    /// The library's and its one function's name: `jadugar_` and 12 hex digits of the code's SHA-1.
    static let name: String = "jadugar_" + SHA1.hex(body).prefix(12)

    /// The library as `FUNCTION LOAD` takes it.
    static let source: String = "#!lua name=\(name)\n" + body + "\nredis.register_function('\(name)', dispatch)\n"

    /// Builds `FCALL <name> 0 <operation> <prefix> <trim> <arguments...>`.
    static func command(_ operation: String, prefix: String, trim: Int?, capacity: Int = 128) -> RedisCommand {
        var command = RedisCommand(capacity: capacity)
        command.append("FCALL")
        command.append(name)
        command.append("0")
        command.append(operation)
        command.append(prefix)
        command.append(trim ?? 0)
        return command
    }

    /// `FUNCTION LOAD` of the library.
    static var load: RedisCommand { RedisCommand("FUNCTION", "LOAD", source) }

    /// Whether an error reply means Redis does not know the library (never loaded, or `FUNCTION FLUSH`).
    static func isMissing(_ text: String) -> Bool {
        text.hasPrefix("ERR Function not found") || text.hasPrefix("NOSCRIPT")
    }

    /// Whether a `FUNCTION LOAD` error just says the library is there already.
    static func isAlreadyLoaded(_ text: String) -> Bool {
        text.contains("already exists")
    }

    static let body = #"""
-- Jadugar Redis adapter (envelope v1), a Redis Function library. Every call is
-- FCALL <name> 0 <operation> <key prefix> <stream length cap, 0: none> <arguments...>.
-- The call's arguments live in these library-level locals for the duration of one call
-- (Redis runs one function at a time).
local ARGV = {}
local P = ''
local TRIM = 0
local CACHE = nil
local function A(i) return ARGV[3 + i] end
local G = 'jadugar'
local PARKED = 'jadugar.parked'
local MAXDEPTH = 4

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(x) return string.format('%.0f', x) end

-- Key layout ------------------------------------------------------------------------------
local function skey(q, level) if level == 0 then return P .. 'q:' .. q end return P .. 'q' .. level .. ':' .. q end
local function rqkey(q, level) if level == 0 then return P .. 'rq:' .. q end return P .. 'rq' .. level .. ':' .. q end
local function mkey(q) return P .. 'queue:' .. q end

-- Requeued entries sit in a sorted set with score 0; members are zero-padded ids, so that the
-- lexical order is the stream order and the oldest comes back first (at the head, as in AMQP).
local function pad(id)
  local dash = string.find(id, '-', 1, true)
  local ms, seq = string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function unpad(member)
  local dash = string.find(member, '-', 1, true)
  local ms = string.gsub(string.sub(member, 1, dash - 1), '^0+', '')
  local seq = string.gsub(string.sub(member, dash + 1), '^0+', '')
  if ms == '' then ms = '0' end
  if seq == '' then seq = '0' end
  return ms .. '-' .. seq
end

-- Entry fields: a flat list name, value, name, value ... ------------------------------------
local function get(fields, name)
  for i = 1, #fields, 2 do if fields[i] == name then return fields[i + 1] end end
  return nil
end
local function set(fields, name, value)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      if value == nil then table.remove(fields, i); table.remove(fields, i) else fields[i + 1] = value end
      return
    end
  end
  if value ~= nil then fields[#fields + 1] = name; fields[#fields + 1] = value end
end
local function copy(fields) local c = {} for i = 1, #fields do c[i] = fields[i] end return c end
local function base(fields) return tonumber(get(fields, 'redeliveries') or '0') or 0 end
local function expired(fields, now)
  local d = tonumber(get(fields, 'deadline') or '')
  return d ~= nil and d <= now
end

local function meta(q)
  if CACHE and CACHE.meta[q] ~= nil then return CACHE.meta[q] or nil end
  local flat = redis.call('HGETALL', mkey(q))
  if CACHE then CACHE.meta[q] = false end
  if #flat == 0 then return nil end
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  m.maxp = tonumber(m.maxPriority or '0') or 0
  if CACHE then CACHE.meta[q] = m end
  return m
end

local function last_delivered(s)
  local groups = redis.pcall('XINFO', 'GROUPS', s)
  if type(groups) ~= 'table' or groups.err then return '0-0' end
  for _, g in ipairs(groups) do
    local name, last = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == G then return last or '0-0' end
  end
  return '0-0'
end
local function pending_count(s)
  local r = redis.pcall('XPENDING', s, G)
  if type(r) ~= 'table' or r.err then return 0 end
  return tonumber(r[1]) or 0
end
local function owner_of(s, id)
  local info = redis.pcall('XPENDING', s, G, id, id, 1)
  if type(info) ~= 'table' or info.err or #info == 0 then return nil, 0 end
  return info[1][2], tonumber(info[1][4]) or 1
end
local function ready_count(q, m)
  local n = 0
  for level = 0, m.maxp do
    local s = skey(q, level)
    n = n + redis.call('XLEN', s) - pending_count(s) + redis.call('ZCARD', rqkey(q, level))
  end
  return n
end

local function iso8601(ms)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local secs = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local mo = mp < 10 and mp + 3 or mp - 9
  if mo <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', y, mo, d, math.floor(secs / 3600), math.floor((secs % 3600) / 60), secs % 60)
end

-- Topic patterns: '*' one word, '#' zero or more -------------------------------------------
local function words(s) local t = {} for w in string.gmatch(s, '[^.]+') do t[#t + 1] = w end return t end
local function topic_match(pattern, topic)
  local p, t = {}, words(topic)
  for _, w in ipairs(words(pattern)) do
    if not (w == '#' and p[#p] == '#') then p[#p + 1] = w end
  end
  local pi, ti, bp, bt = 1, 1, nil, nil
  while ti <= #t or pi <= #p do
    local advanced = false
    if pi <= #p then
      local w = p[pi]
      if w == '#' then bp = pi; bt = ti; pi = pi + 1; advanced = true
      elseif ti <= #t and (w == '*' or w == t[ti]) then pi = pi + 1; ti = ti + 1; advanced = true end
    end
    if not advanced then
      if bp == nil or bt > #t then return false end
      bt = bt + 1; pi = bp + 1; ti = bt
    end
  end
  return true
end
local function is_wild(key)
  local k = '.' .. key .. '.'
  return string.find(k, '.*.', 1, true) ~= nil or string.find(k, '.#.', 1, true) ~= nil
end
local function headers_match(key, fields)
  for pair in string.gmatch(key, '[^,]+') do
    local eq = string.find(pair, '=', 1, true)
    if not eq then return false end
    local k = string.gsub(string.gsub(string.sub(pair, 1, eq - 1), '^%s+', ''), '%s+$', '')
    local v = string.gsub(string.gsub(string.sub(pair, eq + 1), '^%s+', ''), '%s+$', '')
    if get(fields, 'h:' .. k) ~= v then return false end
  end
  return true
end

-- Bindings ----------------------------------------------------------------------------------
-- bind:<ex> set of "queue\nkey"; qbind:<queue> set of "exchange\nkey"; wild:<ex> the wildcard
-- subset of a topic exchange; lit:<ex> hash key -> "queue\nqueue..." for exact keys.
local function split2(s)
  local nl = string.find(s, '\n', 1, true)
  return string.sub(s, 1, nl - 1), string.sub(s, nl + 1)
end
local function lit_add(ex, key, q)
  local h = P .. 'lit:' .. ex
  local v = redis.call('HGET', h, key)
  if not v then redis.call('HSET', h, key, q); return end
  for x in string.gmatch(v, '[^\n]+') do if x == q then return end end
  redis.call('HSET', h, key, v .. '\n' .. q)
end
local function lit_remove(ex, key, q)
  local h = P .. 'lit:' .. ex
  local v = redis.call('HGET', h, key)
  if not v then return end
  local keep = {}
  for x in string.gmatch(v, '[^\n]+') do if x ~= q then keep[#keep + 1] = x end end
  if #keep == 0 then redis.call('HDEL', h, key) else redis.call('HSET', h, key, table.concat(keep, '\n')) end
end
local function bind_internal(q, ex, key, etype)
  local member = q .. '\n' .. key
  if redis.call('SADD', P .. 'bind:' .. ex, member) == 0 then return 0 end
  redis.call('SADD', P .. 'qbind:' .. q, ex .. '\n' .. key)
  if etype == 'topic' and is_wild(key) then
    redis.call('SADD', P .. 'wild:' .. ex, member)
  elseif etype == 'topic' or etype == 'direct' then
    lit_add(ex, key, q)
  end
  return 1
end
local function unbind_internal(q, ex, key)
  local member = q .. '\n' .. key
  if redis.call('SREM', P .. 'bind:' .. ex, member) == 0 then return 0 end
  redis.call('SREM', P .. 'qbind:' .. q, ex .. '\n' .. key)
  redis.call('SREM', P .. 'wild:' .. ex, member)
  lit_remove(ex, key, q)
  return 1
end

local function delete_queue(q)
  local m = meta(q)
  local maxp = (m and m.maxp) or 0
  for level = 0, maxp do redis.call('DEL', skey(q, level), rqkey(q, level)) end
  redis.call('DEL', mkey(q), P .. 'consumers:' .. q, P .. 'delayq:' .. q, P .. 'delayed-data:' .. q)
  redis.call('ZREM', P .. 'delayed', q)
  redis.call('ZREM', P .. 'expiry', q)
  redis.call('SREM', P .. 'queues', q)
  redis.call('SREM', P .. 'exclusive', q)
  for _, b in ipairs(redis.call('SMEMBERS', P .. 'qbind:' .. q)) do
    local ex, key = split2(b)
    unbind_internal(q, ex, key)
  end
  redis.call('DEL', P .. 'qbind:' .. q)
end

-- Routing -----------------------------------------------------------------------------------
local targets_uncached
local span_fields
-- The queues a message reaches; `fields` (or ARGV[first..last]) only matter to headers exchanges.
local function targets(ex, key, fields, first, last)
  if not CACHE then return targets_uncached(ex, key, fields, first, last) end
  local id = ex .. '\n' .. key
  local hit = CACHE.targets[id]
  if hit ~= nil then return hit or nil end
  local qs, cacheable = targets_uncached(ex, key, fields, first, last)
  if cacheable then CACHE.targets[id] = qs or false end
  return qs
end
targets_uncached = function(ex, key, fields, first, last)
  if ex == '' then
    if redis.call('SISMEMBER', P .. 'queues', key) == 1 then return {key}, true end
    return {}, true
  end
  local etype = redis.call('HGET', P .. 'exchanges', ex)
  if not etype then return nil, true end
  local out, seen = {}, {}
  local function add(q) if not seen[q] then seen[q] = true; out[#out + 1] = q end end
  if etype == 'topic' or etype == 'direct' then
    local lit = redis.call('HGET', P .. 'lit:' .. ex, key)
    if lit then for q in string.gmatch(lit, '[^\n]+') do add(q) end end
    if etype == 'topic' and redis.call('SCARD', P .. 'wild:' .. ex) > 0 then
      for _, b in ipairs(redis.call('SMEMBERS', P .. 'wild:' .. ex)) do
        local q, pattern = split2(b)
        if topic_match(pattern, key) then add(q) end
      end
    end
  else
    if etype == 'headers' and fields == nil then fields = span_fields(first, last) end
    for _, b in ipairs(redis.call('SMEMBERS', P .. 'bind:' .. ex)) do
      local q, bkey = split2(b)
      if etype == 'fanout' or (etype == 'headers' and headers_match(bkey, fields)) then add(q) end
    end
  end
  return out, etype ~= 'headers'
end

local route
local dead_letter

-- Makes room for one more message in a queue with a length limit: says whether it fits, after
-- dead-lettering the head with reason maxlen when the overflow policy is drop-head.
-- depth < 0: a redelivery, which ignores the limit (the message was counted when it came in).
local function room(q, m, now, depth)
  if not m.maxLength or depth < 0 then return true end
  if ready_count(q, m) < tonumber(m.maxLength) then return true end
  if m.overflow ~= 'drop-head' then return false end
  -- The head: requeued entries first (they are at the head), then the oldest unread, from the
  -- highest priority down, as the embedded broker does.
  for l = m.maxp, 0, -1 do
    local s, rq = skey(q, l), rqkey(q, l)
    local first = redis.call('ZRANGE', rq, 0, 0)
    if #first > 0 then
      local id = unpad(first[1])
      local _, count = owner_of(s, id)
      local e = redis.call('XRANGE', s, id, id)
      redis.call('ZREM', rq, first[1])
      redis.call('XACK', s, G, id)
      redis.call('XDEL', s, id)
      if #e > 0 then dead_letter(q, m, e[1][2], 'maxlen', nil, base(e[1][2]) + count, now, depth) end
      return true
    end
    local e = redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', 1)
    if #e > 0 then
      redis.call('XDEL', s, e[1][1])
      dead_letter(q, m, e[1][2], 'maxlen', nil, base(e[1][2]), now, depth)
      return true
    end
  end
  return false
end

local function xadd(s, e)
  if TRIM > 0 then
    redis.call('XADD', s, 'MAXLEN', '~', TRIM, '*', unpack(e))
  else
    redis.call('XADD', s, '*', unpack(e))
  end
end

-- The absolute expiry of a message entering a queue: its own expiration or the queue's TTL,
-- whichever comes first.
local function deadline_of(m, expiration, now)
  local deadline = nil
  if expiration then deadline = now + expiration end
  if m.ttl then
    local d = now + tonumber(m.ttl)
    if not deadline or d < deadline then deadline = d end
  end
  return deadline
end

-- Adds an entry (a field table) to a queue's stream for its priority level.
local function enqueue(q, m, fields, now, depth)
  local prio = tonumber(get(fields, 'priority') or '0') or 0
  local level = math.min(math.max(math.floor(prio), 0), m.maxp)
  if not room(q, m, now, depth) then return 'full' end
  local e = copy(fields)
  local deadline = tonumber(get(e, 'deadline') or '')
  if not deadline then
    deadline = deadline_of(m, tonumber(get(e, 'expiration') or ''), now)
    if deadline then set(e, 'deadline', num(deadline)) end
  end
  xadd(skey(q, level), e)
  if deadline then redis.call('ZADD', P .. 'expiry', 'LT', deadline, q) end
  return 'ok'
end

-- The publish fast path: the entry's fields are ARGV[first..last], passed to XADD as they are.
local function enqueue_span(q, m, first, last, prio, expiration, now)
  local level = math.min(math.max(math.floor(prio or 0), 0), m.maxp)
  if not room(q, m, now, 0) then return 'full' end
  local s = skey(q, level)
  local deadline = deadline_of(m, expiration, now)
  if deadline then
    local e = {}
    for k = first, last do e[#e + 1] = ARGV[k] end
    e[#e + 1] = 'deadline'
    e[#e + 1] = num(deadline)
    xadd(s, e)
    redis.call('ZADD', P .. 'expiry', 'LT', deadline, q)
  elseif TRIM > 0 then
    redis.call('XADD', s, 'MAXLEN', '~', TRIM, '*', unpack(ARGV, first, last))
  else
    redis.call('XADD', s, '*', unpack(ARGV, first, last))
  end
  return 'ok'
end

span_fields = function(first, last)
  local fields = {}
  for k = first, last do fields[#fields + 1] = ARGV[k] end
  return fields
end

-- Routes one published message (fields ARGV[first..last]) into every bound queue.
local function publish_one(ex, key, first, last, prio, expiration, now)
  local qs = targets(ex, key, nil, first, last)
  if qs == nil then return nil, {} end
  local routed, full = 0, {}
  for _, q in ipairs(qs) do
    local m = meta(q)
    if m then
      if enqueue_span(q, m, first, last, prio, expiration, now) == 'ok' then routed = routed + 1 else full[#full + 1] = q end
    end
  end
  return routed, full
end

route = function(ex, key, fields, now, depth)
  if depth > MAXDEPTH then return 0, {} end
  local qs = targets(ex, key, fields)
  if qs == nil then return nil, {} end
  set(fields, 'exchange', ex)
  local routed, full = 0, {}
  for _, q in ipairs(qs) do
    local m = meta(q)
    if m then
      local r = enqueue(q, m, fields, now, depth)
      if r == 'ok' then routed = routed + 1 elseif r == 'full' then full[#full + 1] = q end
    end
  end
  return routed, full
end

-- Sends an entry to its queue's dead-letter target with the x-jadugar-* headers; returns how
-- many queues took it (0: no target, or the target routes nowhere: the message is dropped).
dead_letter = function(q, m, fields, reason, err, attempts, now, depth)
  if not m.dlx then return 0 end
  local dl = copy(fields)
  local topic = get(fields, 'topic') or q
  set(dl, 'deadline', nil)
  set(dl, 'expiration', nil)
  set(dl, 'redeliveries', nil)
  set(dl, 'h:x-jadugar-dead-letter-reason', reason)
  set(dl, 'h:x-jadugar-attempts', num(attempts))
  set(dl, 'h:x-jadugar-original-queue', q)
  if not get(dl, 'h:x-jadugar-original-topic') then set(dl, 'h:x-jadugar-original-topic', topic) end
  if not get(dl, 'h:x-jadugar-original-exchange') then set(dl, 'h:x-jadugar-original-exchange', get(fields, 'exchange') or '') end
  set(dl, 'h:x-jadugar-dead-lettered-at', iso8601(now))
  set(dl, 'h:x-jadugar-last-error', err)
  local routed = route(m.dlx, m.dlk or topic, dl, now, depth + 1)
  return routed or 0
end

local function claim_args(s, consumer, ids, justid)
  local args = {s, G, consumer, 0}
  for _, id in ipairs(ids) do args[#args + 1] = id end
  if justid then args[#args + 1] = 'JUSTID' end
  return args
end

-- Whether a consumer may settle an entry: it holds it; or the settlement is late (the consumer
-- closed or reconnected and gave its entries back meanwhile) and the entry still waits in the
-- requeue set, which it then leaves. An entry another consumer took since is not touched.
local function may_settle(s, rq, id, consumer, late)
  local owner = owner_of(s, id)
  if owner == consumer then return true end
  if late and owner == PARKED and redis.call('ZREM', rq, pad(id)) == 1 then return true end
  return false
end

-- Moves every entry a consumer holds to the parked consumer and the requeue set.
local function release(q, m, consumer, delconsumer)
  local n = 0
  for level = 0, m.maxp do
    local s, rq = skey(q, level), rqkey(q, level)
    while true do
      local p = redis.pcall('XPENDING', s, G, '-', '+', 1000, consumer)
      if type(p) ~= 'table' or p.err or #p == 0 then break end
      local ids = {}
      for _, x in ipairs(p) do ids[#ids + 1] = x[1] end
      redis.call('XCLAIM', unpack(claim_args(s, PARKED, ids, true)))
      for _, id in ipairs(ids) do redis.call('ZADD', rq, 0, pad(id)) end
      n = n + #ids
      if #p < 1000 then break end
    end
    if delconsumer then redis.pcall('XGROUP', 'DELCONSUMER', s, G, consumer) end
  end
  return n
end

-- The text of an error raised by redis.call (a table with err) or by Lua itself (a string).
local function errtext(e)
  if type(e) == 'table' and e.err then return e.err end
  local text = tostring(e)
  if string.match(text, '^[A-Z][A-Z_]+ ') then return text end
  return 'ERR ' .. text
end

-- Operations ----------------------------------------------------------------------------------
local ops = {}

ops['publish'] = function()
  -- A batch: count, then per message exchange, routing key, mandatory (1/0), priority (or ''),
  -- expiration in ms (or ''), field count, the envelope's fields (exchange included). Each
  -- message is routed on its own (an error fails only that one); the reply holds, per message,
  -- how many queues took it, or the error.
  local count = tonumber(A(1))
  local now = now_ms()
  CACHE = {meta = {}, targets = {}}
  local out = {}
  local i = 5
  for m = 1, count do
    local ex, key, mandatory = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local prio, expiration, nf = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
    local first, last = i + 6, i + 5 + nf
    i = last + 1
    local ok, routed, full = pcall(publish_one, ex, key, first, last, prio, expiration, now)
    if not ok then
      out[m] = {err = errtext(routed)}
    elseif routed == nil then
      out[m] = {err = "NOT_FOUND exchange '" .. ex .. "' does not exist"}
    elseif #full > 0 then
      out[m] = {err = 'REJECT_PUBLISH queue ' .. table.concat(full, ', ') .. ' is full (max length reached, overflow reject-publish); the message was not stored there'}
    elseif routed == 0 and mandatory == '1' then
      out[m] = {err = "NO_ROUTE no queue is bound for topic '" .. key .. "' at exchange '" .. ex .. "'"}
    else
      out[m] = routed
    end
  end
  CACHE = nil
  return out
end

ops['fetch'] = function()
  -- queue, consumer, count, autoack: requeued entries first, then new ones, highest priority first
  local q, consumer, want, autoack = A(1), A(2), tonumber(A(3)), A(4) == '1'
  local m = meta(q)
  if not m then return redis.error_reply("NOT_FOUND queue '" .. q .. "' does not exist") end
  local now = now_ms()
  local out = {}
  local function take(s, e, count)
    if expired(e[2], now) then
      redis.call('XACK', s, G, e[1])
      redis.call('XDEL', s, e[1])
      dead_letter(q, m, e[2], 'expired', nil, base(e[2]) + count - 1, now, 0)
      return
    end
    if autoack then
      redis.call('XACK', s, G, e[1])
      redis.call('XDEL', s, e[1])
    end
    out[#out + 1] = {s, e[1], count, e[2]}
    want = want - 1
  end
  for level = m.maxp, 0, -1 do
    if want <= 0 then break end
    local s, rq = skey(q, level), rqkey(q, level)
    while want > 0 do
      local popped = redis.call('ZPOPMIN', rq, want)
      if #popped == 0 then break end
      local ids = {}
      for i = 1, #popped, 2 do ids[#ids + 1] = unpad(popped[i]) end
      for _, e in ipairs(redis.call('XCLAIM', unpack(claim_args(s, consumer, ids, false)))) do
        if type(e) == 'table' and type(e[2]) == 'table' then
          local _, count = owner_of(s, e[1])
          take(s, e, count)
        end
      end
    end
    if want > 0 then
      local r = redis.pcall('XREADGROUP', 'GROUP', G, consumer, 'COUNT', want, 'STREAMS', s, '>')
      if type(r) == 'table' and r.err then
        if string.find(r.err, 'NOGROUP', 1, true) then return redis.error_reply("NOT_FOUND queue '" .. q .. "' lost its stream " .. s) end
        return r
      end
      if r then for _, e in ipairs(r[1][2]) do take(s, e, 1) end end
    end
  end
  return out

end

ops['register'] = function()
  -- queue, consumer, client id, 1 to count it as a consumer: checks the queue and returns its top priority level
  local q, consumer, client, counted = A(1), A(2), A(3), A(4) == '1'
  local m = meta(q)
  if not m then return redis.error_reply("NOT_FOUND queue '" .. q .. "' does not exist") end
  if m.exclusive == '1' and m.owner ~= client then
    return redis.error_reply("RESOURCE_LOCKED queue '" .. q .. "' is exclusive to another connection")
  end
  if counted then redis.call('HSET', P .. 'consumers:' .. q, consumer, num(now_ms())) end
  return m.maxp

end

ops['ack'] = function()
  -- stream, requeue set, id, consumer, late (1/0): 1 when the consumer may settle it; the entry is deleted
  local s, rq, id, consumer, late = A(1), A(2), A(3), A(4), A(5) == '1'
  if not may_settle(s, rq, id, consumer, late) then return 0 end
  redis.call('XACK', s, G, id)
  redis.call('XDEL', s, id)
  return 1

end

ops['requeue'] = function()
  -- stream, requeue set, id, consumer, late: back to the head of the queue at once
  local s, rq, id, consumer, late = A(1), A(2), A(3), A(4), A(5) == '1'
  if not may_settle(s, rq, id, consumer, late) then return 0 end
  redis.call('XCLAIM', s, G, PARKED, 0, id, 'JUSTID')
  redis.call('ZADD', rq, 0, pad(id))
  return 1

end

ops['delay'] = function()
  -- queue, stream, requeue set, id, consumer, delay ms, deliveries so far, late: back to the tail after the delay
  local q, s, rq, id, consumer, delay, deliveries, late = A(1), A(2), A(3), A(4), A(5), tonumber(A(6)), A(7), A(8) == '1'
  if not may_settle(s, rq, id, consumer, late) then return 0 end
  local e = redis.call('XRANGE', s, id, id)
  redis.call('XACK', s, G, id)
  redis.call('XDEL', s, id)
  if #e == 0 then return 1 end
  local fields = e[1][2]
  set(fields, 'redeliveries', deliveries)
  local uid = redis.call('INCR', P .. 'seq')
  local due = now_ms() + delay
  redis.call('HSET', P .. 'delayed-data:' .. q, uid, cmsgpack.pack(fields))
  redis.call('ZADD', P .. 'delayq:' .. q, due, uid)
  redis.call('ZADD', P .. 'delayed', 'LT', due, q)
  return 1

end

ops['reject'] = function()
  -- queue, stream, requeue set, id, consumer, reason, has error, error, attempts, late: 1 dropped, 2 dead-lettered
  local q, s, rq, id, consumer, reason, haserr, err, attempts, late = A(1), A(2), A(3), A(4), A(5), A(6), A(7), A(8), tonumber(A(9)), A(10) == '1'
  if not may_settle(s, rq, id, consumer, late) then return 0 end
  local e = redis.call('XRANGE', s, id, id)
  redis.call('XACK', s, G, id)
  redis.call('XDEL', s, id)
  local m = meta(q)
  if #e == 0 or not m then return 1 end
  if haserr ~= '1' then err = nil end
  if dead_letter(q, m, e[1][2], reason, err, attempts, now_ms(), 0) > 0 then return 2 end
  return 1

end

ops['expire'] = function()
  -- queue, consumer, then stream/id pairs just read: dead-letters the expired ones, returns their ids
  local q = A(1)
  local m = meta(q)
  if not m then return {} end
  local now = now_ms()
  local out = {}
  for i = 6, #ARGV, 2 do
    local s, id = ARGV[i], ARGV[i + 1]
    local e = redis.call('XRANGE', s, id, id)
    if #e > 0 and expired(e[1][2], now) then
      redis.call('XACK', s, G, id)
      redis.call('XDEL', s, id)
      dead_letter(q, m, e[1][2], 'expired', nil, base(e[1][2]), now, 0)
      out[#out + 1] = id
    end
  end
  return out

end

ops['release'] = function()
  -- queue, consumer, 1 to delete the consumer, 1 to unregister it (and auto-delete the queue)
  local q, consumer, delconsumer, unregister = A(1), A(2), A(3) == '1', A(4) == '1'
  local m = meta(q)
  if not m then return {0, 0} end
  local n = release(q, m, consumer, delconsumer)
  local deleted = 0
  if unregister then
    redis.call('HDEL', P .. 'consumers:' .. q, consumer)
    if m.autoDelete == '1' and redis.call('HLEN', P .. 'consumers:' .. q) == 0 then
      delete_queue(q)
      deleted = 1
    end
  end
  return {n, deleted}

end

ops['touch'] = function()
  -- queue, consumer, 1 if registered: restarts the idle clock of every entry the consumer holds
  local q, consumer, counted = A(1), A(2), A(3) == '1'
  local m = meta(q)
  if not m then return -1 end
  local n = 0
  for level = 0, m.maxp do
    local s = skey(q, level)
    local p = redis.pcall('XPENDING', s, G, '-', '+', 10000, consumer)
    if type(p) == 'table' and not p.err and #p > 0 then
      local ids = {}
      for _, x in ipairs(p) do ids[#ids + 1] = x[1] end
      redis.call('XCLAIM', unpack(claim_args(s, consumer, ids, true)))
      n = n + #ids
    end
  end
  if counted then redis.call('HSET', P .. 'consumers:' .. q, consumer, num(now_ms())) end
  return n

end

ops['reclaim'] = function()
  -- queue, visibility timeout ms: entries idle that long belong to dead consumers; requeue them
  local q, vt = A(1), tonumber(A(2))
  local m = meta(q)
  if not m then return 0 end
  local now = now_ms()
  local n = 0
  for level = 0, m.maxp do
    local s, rq = skey(q, level), rqkey(q, level)
    local p = redis.pcall('XPENDING', s, G, 'IDLE', vt, '-', '+', 1000)
    if type(p) == 'table' and not p.err and #p > 0 then
      local ids = {}
      for _, x in ipairs(p) do ids[#ids + 1] = x[1] end
      redis.call('XCLAIM', unpack(claim_args(s, PARKED, ids, true)))
      for _, id in ipairs(ids) do redis.call('ZADD', rq, 0, pad(id)) end
      n = n + #ids
    end
    local consumers = redis.pcall('XINFO', 'CONSUMERS', s, G)
    if type(consumers) == 'table' and not consumers.err then
      for _, c in ipairs(consumers) do
        local name, pending, idle = nil, 0, 0
        for i = 1, #c, 2 do
          if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
        end
        if name and name ~= PARKED and pending == 0 and idle > 3 * vt then redis.call('XGROUP', 'DELCONSUMER', s, G, name) end
      end
    end
  end
  local registered = redis.call('HGETALL', P .. 'consumers:' .. q)
  local pruned = false
  for i = 1, #registered, 2 do
    if now - (tonumber(registered[i + 1]) or 0) > 3 * vt then
      redis.call('HDEL', P .. 'consumers:' .. q, registered[i])
      pruned = true
    end
  end
  if pruned and m.autoDelete == '1' and redis.call('HLEN', P .. 'consumers:' .. q) == 0 then delete_queue(q) end
  return n

end

ops['maintain'] = function()
  -- promotes due delayed retries and dead-letters expired unread entries; returns the ms until
  -- the next delayed retry and the next expiry (-1: none)
  local now = now_ms()
  for _, q in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 50)) do
    local dq, dd = P .. 'delayq:' .. q, P .. 'delayed-data:' .. q
    local m = meta(q)
    for _, uid in ipairs(redis.call('ZRANGEBYSCORE', dq, '-inf', now, 'LIMIT', 0, 500)) do
      local data = redis.call('HGET', dd, uid)
      if data and m then enqueue(q, m, cmsgpack.unpack(data), now, -1) end
      redis.call('HDEL', dd, uid)
      redis.call('ZREM', dq, uid)
    end
    local first = redis.call('ZRANGE', dq, 0, 0, 'WITHSCORES')
    if #first > 0 then redis.call('ZADD', P .. 'delayed', first[2], q) else redis.call('ZREM', P .. 'delayed', q) end
  end
  for _, q in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now, 'LIMIT', 0, 20)) do
    local m = meta(q)
    local nextd = nil
    if m then
      for level = 0, m.maxp do
        local s = skey(q, level)
        local entries = redis.call('XRANGE', s, '(' .. last_delivered(s), '+', 'COUNT', 200)
        for _, e in ipairs(entries) do
          local d = tonumber(get(e[2], 'deadline') or '')
          if d then
            if d <= now then
              redis.call('XDEL', s, e[1])
              dead_letter(q, m, e[2], 'expired', nil, base(e[2]), now, 0)
            elseif nextd == nil or d < nextd then
              nextd = d
            end
          end
        end
        if #entries == 200 and (nextd == nil or nextd > now + 100) then nextd = now + 100 end
      end
    end
    if nextd then redis.call('ZADD', P .. 'expiry', nextd, q) else redis.call('ZREM', P .. 'expiry', q) end
  end
  local result = {-1, -1}
  local nd = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
  if #nd > 0 then result[1] = math.max(tonumber(nd[2]) - now, 0) end
  local ne = redis.call('ZRANGE', P .. 'expiry', 0, 0, 'WITHSCORES')
  if #ne > 0 then result[2] = math.max(tonumber(ne[2]) - now, 0) end
  return result

end

ops['declare_queue'] = function()
  -- queue, owner, spec, maxPriority, ttl, maxLength, overflow, has dlx, dlx, has dlk, dlk, durable, exclusive, autoDelete, kind
  local q, owner, spec = A(1), A(2), A(3)
  local m = meta(q)
  if m then
    if m.spec ~= spec then
      return redis.error_reply("PRECONDITION_FAILED queue '" .. q .. "' exists with different settings (" .. (m.spec or '?') .. "); delete it first or declare it with the same settings")
    end
    if m.exclusive == '1' and m.owner ~= owner then
      return redis.error_reply("RESOURCE_LOCKED queue '" .. q .. "' is exclusive to another connection")
    end
    return 0
  end
  local maxp = tonumber(A(4))
  local h = {'spec', spec, 'maxPriority', A(4), 'overflow', A(7), 'durable', A(12), 'exclusive', A(13), 'autoDelete', A(14), 'owner', owner}
  if A(5) ~= '' then h[#h + 1] = 'ttl'; h[#h + 1] = A(5) end
  if A(6) ~= '' then h[#h + 1] = 'maxLength'; h[#h + 1] = A(6) end
  if A(8) == '1' then h[#h + 1] = 'dlx'; h[#h + 1] = A(9) end
  if A(10) == '1' then h[#h + 1] = 'dlk'; h[#h + 1] = A(11) end
  if A(15) ~= '' then h[#h + 1] = 'kind'; h[#h + 1] = A(15) end
  redis.call('HSET', mkey(q), unpack(h))
  redis.call('SADD', P .. 'queues', q)
  for level = 0, maxp do redis.pcall('XGROUP', 'CREATE', skey(q, level), G, '0', 'MKSTREAM') end
  if A(13) == '1' then redis.call('SADD', P .. 'exclusive', q) end
  return 1

end

ops['delete_queue'] = function()
  local q = A(1)
  if redis.call('SISMEMBER', P .. 'queues', q) == 0 and redis.call('EXISTS', mkey(q)) == 0 then
    return redis.error_reply("NOT_FOUND queue '" .. q .. "' does not exist")
  end
  delete_queue(q)
  return 1

end

ops['purge'] = function()
  -- removes ready entries (unread and requeued), not those held by consumers
  local q = A(1)
  local m = meta(q)
  if not m then return redis.error_reply("NOT_FOUND queue '" .. q .. "' does not exist") end
  local n = 0
  for level = 0, m.maxp do
    local s, rq = skey(q, level), rqkey(q, level)
    local from = '(' .. last_delivered(s)
    while true do
      local es = redis.call('XRANGE', s, from, '+', 'COUNT', 500)
      if #es == 0 then break end
      local ids = {}
      for _, e in ipairs(es) do ids[#ids + 1] = e[1] end
      n = n + redis.call('XDEL', s, unpack(ids))
      from = '(' .. ids[#ids]
      if #es < 500 then break end
    end
    local members = redis.call('ZRANGE', rq, 0, -1)
    if #members > 0 then
      local ids = {}
      for _, x in ipairs(members) do ids[#ids + 1] = unpad(x) end
      redis.call('XACK', s, G, unpack(ids))
      n = n + redis.call('XDEL', s, unpack(ids))
      redis.call('DEL', rq)
    end
  end
  return n

end

ops['info'] = function()
  -- queue: ready, unacknowledged, delayed, consumers
  local q = A(1)
  local m = meta(q)
  if not m then return redis.error_reply("NOT_FOUND queue '" .. q .. "' does not exist") end
  local ready, unacked = 0, 0
  for level = 0, m.maxp do
    local s = skey(q, level)
    local pending = pending_count(s)
    local requeued = redis.call('ZCARD', rqkey(q, level))
    ready = ready + redis.call('XLEN', s) - pending + requeued
    unacked = unacked + pending - requeued
  end
  return {ready, unacked, redis.call('ZCARD', P .. 'delayq:' .. q), redis.call('HLEN', P .. 'consumers:' .. q)}

end

ops['declare_exchange'] = function()
  local ex, etype = A(1), A(2)
  local existing = redis.call('HGET', P .. 'exchanges', ex)
  if existing and existing ~= etype then
    return redis.error_reply("PRECONDITION_FAILED exchange '" .. ex .. "' exists with type " .. existing .. ', not ' .. etype)
  end
  redis.call('HSET', P .. 'exchanges', ex, etype)
  return 1

end

ops['delete_exchange'] = function()
  local ex, default = A(1), A(2)
  if ex == '' or ex == default then return redis.error_reply("ACCESS_REFUSED the default exchange '" .. ex .. "' cannot be deleted") end
  if redis.call('HEXISTS', P .. 'exchanges', ex) == 0 then return redis.error_reply("NOT_FOUND exchange '" .. ex .. "' does not exist") end
  for _, b in ipairs(redis.call('SMEMBERS', P .. 'bind:' .. ex)) do
    local q, key = split2(b)
    unbind_internal(q, ex, key)
  end
  redis.call('DEL', P .. 'bind:' .. ex, P .. 'lit:' .. ex, P .. 'wild:' .. ex)
  redis.call('HDEL', P .. 'exchanges', ex)
  return 1

end

ops['bind'] = function()
  local q, ex, key = A(1), A(2), A(3)
  if redis.call('SISMEMBER', P .. 'queues', q) == 0 then return redis.error_reply("NOT_FOUND cannot bind queue '" .. q .. "': it does not exist") end
  if ex == '' then return redis.error_reply('ACCESS_REFUSED queues cannot be bound to the default exchange') end
  local etype = redis.call('HGET', P .. 'exchanges', ex)
  if not etype then return redis.error_reply("NOT_FOUND cannot bind to exchange '" .. ex .. "': it does not exist") end
  return bind_internal(q, ex, key, etype)

end

ops['unbind'] = function()
  local q, ex, key = A(1), A(2), A(3)
  if redis.call('HEXISTS', P .. 'exchanges', ex) == 0 then return redis.error_reply("NOT_FOUND exchange '" .. ex .. "' does not exist") end
  return unbind_internal(q, ex, key)

end

ops['topics'] = function()
  local out, seen = {}, {}
  for _, t in ipairs(redis.call('SMEMBERS', P .. 'topics')) do if not seen[t] then seen[t] = true; out[#out + 1] = t end end
  for _, ex in ipairs(redis.call('HKEYS', P .. 'exchanges')) do
    for _, b in ipairs(redis.call('SMEMBERS', P .. 'bind:' .. ex)) do
      local _, key = split2(b)
      if not seen[key] then seen[key] = true; out[#out + 1] = key end
    end
  end
  return out

end

ops['gc'] = function()
  -- deletes exclusive queues whose owning client is gone (its liveness key expired)
  local n = 0
  for _, q in ipairs(redis.call('SMEMBERS', P .. 'exclusive')) do
    local owner = redis.call('HGET', mkey(q), 'owner')
    if not owner or redis.call('EXISTS', P .. 'client:' .. owner) == 0 then
      delete_queue(q)
      n = n + 1
    end
  end
  return n

end

ops['drop_owned'] = function()
  -- client id: deletes the exclusive queues it declared (on disconnect)
  local client = A(1)
  local n = 0
  for _, q in ipairs(redis.call('SMEMBERS', P .. 'exclusive')) do
    if redis.call('HGET', mkey(q), 'owner') == client then
      delete_queue(q)
      n = n + 1
    end
  end
  redis.call('DEL', P .. 'client:' .. client)
  return n
end

local function dispatch(keys, args)
  ARGV = args
  P = args[2]
  TRIM = tonumber(args[3]) or 0
  CACHE = nil
  local handler = ops[args[1]]
  if not handler then return redis.error_reply('ERR unknown jadugar operation ' .. tostring(args[1])) end
  return handler()
end
"""#

}
