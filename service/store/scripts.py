"""Lua scripts for the multi-key changes that must be atomic.

Every key a script touches arrives in KEYS (so the scripts stay valid on Redis Cluster); no key
name is built inside Lua. Scripts only use commands Redis 6.2 has.

A comment is one JSON string (see keys.py and models.StoredComment). Lua's cjson rewrites it on
a change; it writes an empty array as {} and escapes "/", which the Python side reads the same.

Index groups: a comment's indexes come as groups of one key per status (in the order given in
ARGV); a comment is in exactly the key of its status in each group, and in no other.
"""

# Insert a new comment with its indexes, once, unless a limit, a guard or its parent forbids
# it; the whole of a submission's Redis work in one round trip. A retried call (same id)
# changes nothing, which makes the client's retry after a lost reply safe.
#
# What the client learns depends only on what it sent itself (issue 11): its own rate limits,
# flood interval and hourly cap (per client IP) are checked first; then a duplicate (the same
# text from the same email to the same article, whoever sent it) is answered like any accepted
# comment and dropped, with the same client-side effects (flood marker, hourly count, key).
#
# The author's standing is read here, not before: the caller sends one variant of the comment
# per standing (untrusted, then trusted, when the policy trusts known commenters) and the
# script stores the one that applies, from the record of the commenter key the submission
# presented (never from the email: see service/commenter_keys.py). A valid key is rotated;
# otherwise a new record is created. The rule is policy.is_trusted, its oracle: an approval at
# or after "trusted since" and no rejection or spam at or after it. A property test
# (tests/test_trust_property.py) holds this Lua to that function; change both together.
#
# KEYS[1] comment   KEYS[2] article public hash   KEYS[3] author hash   KEYS[4] duplicate marker
# KEYS[5] flood marker (ip)   KEYS[6] presented key's commenter record (or the new one's)
# KEYS[7] hourly counter (ip)
# KEYS[8] author's comment set   KEYS[9] retention index   KEYS[10] article's approved index
# KEYS[11 .. 10+L] rate-limit counters (fixed windows, as the `limits` library keeps them)
# then each variant's indexes (one per group, for its status)
# last two: the new commenter record, the author's set of commenter records
# ARGV[1] id   ARGV[2] now (ms)   ARGV[3] duplicate window (ms, 0 = off)   ARGV[4] flood
# interval (ms, 0 = off)   ARGV[5] hourly cap (0 = off)   ARGV[6] ms until the hour ends
# ARGV[7] parent id ("" = none)   ARGV[8] trusted since (ms; "" = one variant, no standing)
# ARGV[9], ARGV[10] the author's fields the standing reads: its approvals, its rejections
# ARGV[11] L   ARGV[12 .. 11+2L] each counter's limit and window (s)
# then per variant: number of indexes, the comment's JSON, public JSON ("" unless published at
# once), author field to stamp ("" = none), "1" if it waits for the retention purge
# last seven: email hash, presented secret hash ("" = none), new secret hash ("" = hand out
# none), new commenter id, record TTL (ms), grace of a replaced secret (ms), "1" if the
# comment's JSON records the presented commenter id (else the new one)
# Returns {1, variant, rotated} stored, {2, variant, rotated} a duplicate dropped (rotated: 1
# when the presented key was valid and rotated, 0 when a new record was created), {0} already
# stored, {-2, ms} too soon, {-3, ms} hourly cap, {-4, ms, counter} rate limited, {-5} parent
# not published.
INSERT_COMMENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0}
end
local id, now = ARGV[1], ARGV[2]
local window, interval, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
-- Rate limits count every attempt that gets this far, refused or not (as `limits` does).
local limits = tonumber(ARGV[11])
for i = 1, limits do
  local key = KEYS[10 + i]
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[11 + 2 * i]) end
  if count > tonumber(ARGV[10 + 2 * i]) then
    return {-4, math.max(redis.call('PTTL', key), 1), i}
  end
end
if ARGV[7] ~= '' and not redis.call('ZSCORE', KEYS[10], ARGV[7]) then
  return {-5}
end
if interval > 0 then
  local wait = redis.call('PTTL', KEYS[5])
  if wait > 0 then return {-2, wait} end
end
if cap > 0 then
  local used = tonumber(redis.call('GET', KEYS[7]) or '0')
  if used >= cap then return {-3, math.max(redis.call('PTTL', KEYS[7]), 1)} end
end
local duplicate = window > 0 and redis.call('PTTL', KEYS[4]) > 0
-- The presented commenter key: valid when its secret is the record's current one (or the one
-- that secret replaced, within the grace) and the record is bound to this email. A replaced
-- secret used after its grace was copied by someone: the record is revoked.
local ck = #ARGV - 6
local email, presented, fresh = ARGV[ck], ARGV[ck + 1], ARGV[ck + 2]
local holder, replayed = nil, false
if presented ~= '' then
  local r = redis.call('HMGET', KEYS[6], 'email', 'secret', 'previous', 'previous_until',
    ARGV[9], ARGV[10])
  local in_grace = r[3] == presented and r[4] and tonumber(r[4]) > tonumber(now)
  if r[2] == presented or in_grace then
    if r[1] == email then holder = r end
  elseif r[3] == presented then
    replayed = true
  end
end
local variant = 1
if ARGV[8] ~= '' and holder then
  local since = tonumber(ARGV[8])
  local approved = holder[5] and tonumber(holder[5]) >= since
  local negative = holder[6] and tonumber(holder[6]) >= since
  if approved and not negative then variant = 2 end
end
-- Find the chosen variant's arguments and its first index key.
local arg, key = 12 + 2 * limits, 11 + limits
for _ = 2, variant do
  key = key + tonumber(ARGV[arg])
  arg = arg + 5
end
local indexes, record, public, stamp, purge = tonumber(ARGV[arg]), ARGV[arg + 1],
  ARGV[arg + 2], ARGV[arg + 3], ARGV[arg + 4]
if interval > 0 then redis.call('SET', KEYS[5], '1', 'PX', interval) end
if cap > 0 then
  if redis.call('INCR', KEYS[7]) == 1 then redis.call('PEXPIRE', KEYS[7], ARGV[6]) end
end
-- The commenter key the answer hands out: the presented one's record rotated to the new
-- secret, or a new record.
local commenter, ttl = KEYS[6], ARGV[ck + 4]
if holder then
  if holder[2] == presented then
    redis.call('HSET', commenter, 'secret', fresh, 'previous', presented, 'previous_until',
      tonumber(now) + tonumber(ARGV[ck + 5]), 'ttl', ttl)
  else
    redis.call('HSET', commenter, 'secret', fresh, 'ttl', ttl)
  end
elseif fresh ~= '' then
  if replayed then redis.call('DEL', KEYS[6]) end
  commenter = KEYS[#KEYS - 1]
  redis.call('HSET', commenter, 'email', email, 'secret', fresh, 'ttl', ttl)
  redis.call('SADD', KEYS[#KEYS], ARGV[ck + 3])
  if ARGV[ck + 6] == '1' then
    local patched = cjson.decode(record)
    patched['commenter'] = ARGV[ck + 3]
    record = cjson.encode(patched)
  end
else
  commenter = nil
end
if commenter then
  redis.call('PEXPIRE', commenter, ttl)
  -- The email's set of records outlives each of them, so an erasure finds them all.
  if redis.call('PTTL', KEYS[#KEYS]) < tonumber(ttl) then
    redis.call('PEXPIRE', KEYS[#KEYS], ttl)
  end
end
if duplicate then
  return {2, variant, holder and 1 or 0}
end
if commenter and stamp ~= '' then redis.call('HSET', commenter, stamp, now) end
if window > 0 then redis.call('SET', KEYS[4], '1', 'PX', window) end
redis.call('SET', KEYS[1], record)
for i = key, key + indexes - 1 do redis.call('ZADD', KEYS[i], 0, id) end
if public ~= '' then redis.call('HSET', KEYS[2], id, public) end
if stamp ~= '' then redis.call('HSET', KEYS[3], stamp, now) end
if purge == '1' then redis.call('ZADD', KEYS[9], now, id) end
redis.call('SADD', KEYS[8], id)
return {1, variant, holder and 1 or 0}
"""

# Move a comment to another status: into the target's key of every index group, out of the
# others; into the article's public hash (its content moving there) or out of it (its content
# moving back into the comment); stamp the author's record; append to the history. Repeating
# the current status changes nothing.
#
# What each status implies arrives in ARGV (from service/states.py); so does the public JSON
# a publication stores, rendered by the caller (the one owner of that format) from the comment
# as it read it, with the content it rendered it from. It is stored only if that content is
# still the stored one: a comment erased or anonymised since the read refuses it, and the
# caller reads again. Everything else comes from what is stored at the moment of the change:
# the content an unpublished comment gets back is its public document's, and the author's
# record is stamped only while the stored comment still has an author.
# KEYS[1] comment   KEYS[2] article public hash   KEYS[3] author hash   KEYS[4] retention index
# KEYS[5 ..] index groups, n keys each; then, when the last ARGV is 2, the record of the
# commenter key that sent the comment (it earns trust by an approval and loses it by a rejection
# or spam) and the author's set of commenter records
# ARGV[1] id   ARGV[2] target status   ARGV[3] now (ms)   ARGV[4] history entry JSON (its
# "from" is filled in here)   ARGV[5] public JSON   ARGV[6] the content JSON it was rendered
# from   ARGV[7] n   then per status (the index groups' order): its name, "1" if public, "1" if
# it waits for the retention purge, the author's field it stamps ("" = none)
# ARGV[8+4n] 2 when the commenter keys were given, else 0
# ARGV[9+4n] a field of the commenter record to delete as the decision stamps it ("" = none):
# an approval that also trusts the author forgives its earlier rejections this way
# A decision that stamps the commenter record counts it there ("decisions") and keeps in the
# comment's "undo" what its first decision replaced; a move back to pending restores that when
# no other comment of the key was decided since.
# Returns false when the comment does not exist, {0} when the content to publish is no longer
# the stored one, else {1 (unchanged) or 2 (changed), the comment's JSON, its public JSON or
# false}: the comment as this call left it.
TRANSITION_COMMENT = """
local raw = redis.call('GET', KEYS[1])
if not raw then
  return false
end
local id, target, now, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[7])
local record = cjson.decode(raw)
local current = record['status']
if current == target then
  return {1, raw, redis.call('HGET', KEYS[2], id)}
end
local rules = {}
for i = 0, n - 1 do
  local at = 8 + 4 * i
  rules[ARGV[at]] = {public = ARGV[at + 1] == '1', purge = ARGV[at + 2] == '1',
                     stamp = ARGV[at + 3]}
end
local from, to = rules[current], rules[target]
if to.public and not from.public then
  -- Absent, null and '' all mean "none" to the reader (models.StoredComment.from_record).
  local function value(v)
    if v == nil or v == cjson.null then return '' end
    return v
  end
  local stored, rendered = record['content'], cjson.decode(ARGV[6])
  for field, v in pairs(stored) do
    if value(v) ~= value(rendered[field]) then return {0} end
  end
  for field, v in pairs(rendered) do
    if value(v) ~= value(stored[field]) then return {0} end
  end
end
for first = 5, #KEYS - tonumber(ARGV[8 + 4 * n]), n do
  for i = 0, n - 1 do
    if ARGV[8 + 4 * i] == target then
      redis.call('ZADD', KEYS[first + i], 0, id)
    else
      redis.call('ZREM', KEYS[first + i], id)
    end
  end
end
local public = false
if to.public and from.public then
  public = redis.call('HGET', KEYS[2], id)
elseif to.public then
  public = ARGV[5]
  redis.call('HSET', KEYS[2], id, public)
  record['content'] = nil
elseif from.public then
  local doc = redis.call('HGET', KEYS[2], id)
  if not doc then
    return redis.error_reply('comment ' .. id .. ' is published without a public document')
  end
  doc = cjson.decode(doc)
  record['content'] = {name = doc['name'], comment = doc['comment'], website = doc['website'],
                       parent_id = doc['parent_id'], created_at = doc['created_at']}
  redis.call('HDEL', KEYS[2], id)
end
if to.stamp ~= '' and (record['email_hash'] or '') ~= '' then
  redis.call('HSET', KEYS[3], to.stamp, now)
end
-- The commenter key's record, while it lives (an expired or revoked one stays gone) and while
-- the stored comment is still tied to it (anonymising cuts the tie); the email's set of
-- records outlives it, so an erasure finds it.
local commenter, commenters = KEYS[#KEYS - 1], KEYS[#KEYS]
local keyed = ARGV[8 + 4 * n] == '2' and (record['commenter'] or '') ~= ''
    and redis.call('EXISTS', commenter) == 1
if keyed and to.stamp ~= '' then
  local ttl = tonumber(redis.call('HGET', commenter, 'ttl'))
  -- The comment keeps what its first decision replaced in the key's record, and the record's
  -- count of decisions, so that moving it back to pending (an undo) puts the key's standing
  -- back as it was: an approval undone leaves no trust behind.
  local seq = redis.call('HINCRBY', commenter, 'decisions', 1)
  local before = record['undo'] and record['undo']['before']
  if not before then
    local fields, seen = {}, {}
    for _, r in pairs(rules) do
      if r.stamp ~= '' and not seen[r.stamp] then
        seen[r.stamp] = true
        fields[#fields + 1] = r.stamp
      end
    end
    local values = redis.call('HMGET', commenter, unpack(fields))
    before = {}
    for i, field in ipairs(fields) do before[field] = values[i] or '' end
  end
  record['undo'] = {seq = seq, before = before}
  redis.call('HSET', commenter, to.stamp, now)
  if ARGV[9 + 4 * n] ~= '' then redis.call('HDEL', commenter, ARGV[9 + 4 * n]) end
  redis.call('PEXPIRE', commenter, ttl)
  if redis.call('PTTL', commenters) < ttl then redis.call('PEXPIRE', commenters, ttl) end
elseif keyed and from.stamp ~= '' and record['undo'] then
  -- Back to a status that stamps nothing (pending): take back the stamps of this comment's
  -- decisions, unless a decision on another comment of the key came since.
  local undo = record['undo']
  if tonumber(redis.call('HGET', commenter, 'decisions')) == tonumber(undo['seq']) then
    for field, value in pairs(undo['before']) do
      if value == '' then
        redis.call('HDEL', commenter, field)
      else
        redis.call('HSET', commenter, field, value)
      end
    end
  end
end
if to.stamp == '' then record['undo'] = nil end
if to.purge then
  redis.call('ZADD', KEYS[4], now, id)
else
  redis.call('ZREM', KEYS[4], id)
end
record['status'] = target
local entry = cjson.decode(ARGV[4])
entry['from'] = current
table.insert(record['history'], entry)
raw = cjson.encode(record)
redis.call('SET', KEYS[1], raw)
return {2, raw, public}
"""

# Comments as stored, each with its public document, in one atomic step: a comment's record
# and its published content are always of the same version (a reader never sees one comment
# half approved, or half erased).
# KEYS[1 .. n] comments   KEYS[n+1 .. 2n] each one's article public hash   ARGV[1 .. n] ids
# Returns {record JSON or false, public JSON or false} per comment, in order.
READ_COMMENTS = """
local n = #ARGV
local out = {}
for i = 1, n do
  local raw = redis.call('GET', KEYS[i])
  out[2 * i - 1] = raw
  out[2 * i] = raw and redis.call('HGET', KEYS[n + i], ARGV[i])
end
return out
"""

# Remove a comment and everything that holds its personal data.
# KEYS[1] comment   KEYS[2] article public hash   KEYS[3] author's comment set
# KEYS[4 ..] every index the comment can be in   ARGV[1] id
# Returns 1 if the comment existed.
DELETE_COMMENT = """
local existed = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
for i = 4, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return existed
"""

# One page of an article's published comments, and their total, in one round trip.
# KEYS[1] article approved index   KEYS[2] article public hash
# ARGV[1] lex range start ("-" or "(<cursor id>")   ARGV[2] how many ids to fetch
# Returns {total, id1, json1, id2, json2, ...}; ids whose JSON is missing are skipped.
PUBLIC_PAGE = """
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {redis.call('ZCARD', KEYS[1])}
if #ids == 0 then return out end
local docs = redis.call('HMGET', KEYS[2], unpack(ids))
for i = 1, #ids do
  if docs[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = docs[i]
  end
end
return out
"""

# Keep a published comment's text readable in its thread but cut every tie to its author.
# KEYS[1] comment   KEYS[2] article public hash   KEYS[3] author's comment set
# ARGV[1] id   ARGV[2] the name shown instead   ARGV[3] the re-rendered public JSON
# Returns 1 if the comment existed.
ANONYMISE_COMMENT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record['email'] = ''
record['email_hash'] = ''
record['commenter'] = nil
record['anonymised'] = true
if type(record['content']) == 'table' then
  record['content']['name'] = ARGV[2]
  record['content']['website'] = cjson.null
end
redis.call('SET', KEYS[1], cjson.encode(record))
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# Finish an erasure: forget the author (trust record and comment set) only once no comment of
# theirs is listed. A submission stored while the erasure ran has joined the set since the
# caller read it; forgetting the set then would leave that comment unlisted, found by no later
# export or erasure. So the check and the forgetting are one step, and what is still listed
# goes back to the caller to erase. Ids the caller saw listed whose comment no longer exists
# are dropped from the set first (nothing else would ever remove them).
# KEYS[1] author hash   KEYS[2] author's comment set   KEYS[3 ..] the comments of ARGV's ids
# ARGV the ids the caller saw listed
# Returns the ids still listed (none: the author is forgotten).
FORGET_AUTHOR = """
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[2 + i]) == 0 then redis.call('SREM', KEYS[2], ARGV[i]) end
end
local listed = redis.call('SMEMBERS', KEYS[2])
if #listed == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return listed
"""
