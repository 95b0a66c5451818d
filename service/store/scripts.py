"""Lua scripts for the multi-key changes that must be atomic.

Every key a script touches arrives in KEYS (so the scripts stay valid on Redis Cluster); no key
name is built inside Lua, except by the insert's campaign part (see there), from prefixes Keys
gives: valid only while the tags they carry (Keys.tag_for_comment, tag_for_campaign,
tag_for_bucket) are every other key's, ``{<prefix>}`` (docs/sharding-plan.md §2.1 moves them).
Scripts only use commands Redis 6.2 has.

A comment is one JSON string (see keys.py and models.StoredComment). Lua's cjson rewrites it on
a change; it writes an empty array as {} and escapes "/", which the Python side reads the same.

Index groups: a comment's indexes come as groups of one key per status (in the order given in
ARGV); a comment is in exactly the key of its status in each group, and in no other.
"""

import json

from ..moderation import campaigns as _campaigns
from ..moderation.policy import CAMPAIGN_DETAIL, campaign_reason
from ..states import Status
from .keys import BUCKETS
from .steps import STEP_MEMO_MS, Fragment, SplitSource

# Append one event to the log (service/events.py) and trim the log by length and by age
# (both approximately: whole macro nodes, cheap). Prefixed to every script that changes state.
_APPEND_EVENT = """
local function append_event(stream, maxlen, minid, fields)
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))
  redis.call('XTRIM', stream, 'MINID', '~', minid)
  return id
end
"""

# An article's bucket, as keys.article_bucket computes it: CRC-32 (zlib's) of its id, mod
# BUCKETS (a power of two: the CRC's low bits). For the rare key a script must build from a
# record it reads (a campaign's earlier member); Python gives every other key.
_BUCKET_OF = f"""
local function bucket_of(text)
  local crc = -1
  for i = 1, #text do
    crc = bit.bxor(crc, string.byte(text, i))
    for _ = 1, 8 do
      if bit.band(crc, 1) == 1 then
        crc = bit.bxor(bit.rshift(crc, 1), 0xEDB88320)
      else
        crc = bit.rshift(crc, 1)
      end
    end
  end
  return bit.band(bit.bnot(crc), {BUCKETS - 1})
end
"""


def _lua_string(text: str) -> str:
    """A Lua long-bracket string literal of ``text`` (no escapes to get wrong)."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


# Whether the sketches' components at k are the same: CODE_WIDTH byte comparisons written out
# (a loop over them cost a Lua comparison half again as much).
_SAME_COMPONENT = " and ".join(
    f"theirs[k + {w}] == mine[k + {w}]" for w in range(_campaigns.CODE_WIDTH)
)

# Campaign detection's constants (service/moderation/campaigns.py, policy.py), as locals of
# the insert script: arguments it need not be sent with every submission.
_CAMPAIGN_CONSTANTS = f"""
local CAMPAIGN_BANDS, CAMPAIGN_BAND_WIDTH = {_campaigns.BANDS}, {_campaigns.BAND_WIDTH}
local CAMPAIGN_CODE_WIDTH = {_campaigns.CODE_WIDTH}
local CAMPAIGN_PER_BAND = {_campaigns.CANDIDATES_PER_BAND}
local CAMPAIGN_MIN_EQUAL = {_campaigns.MIN_EQUAL}
local CAMPAIGN_TTL = {_campaigns.CAMPAIGN_TTL_SECONDS}
local CAMPAIGN_MARK = {_lua_string(_campaigns.BUCKET_MARK)}
local CAMPAIGN_BAND_NAMES = {{{", ".join(repr(f"{b}:") for b in range(_campaigns.BANDS))}}}
local CAMPAIGN_DETAIL = {_lua_string(CAMPAIGN_DETAIL)}
local CAMPAIGN_REASON = {_lua_string(json.dumps(campaign_reason("", 0, 0).as_dict()))}
local CAMPAIGN_HELD_FROM = {_lua_string(Status.PENDING.value)}
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
# then, with campaign detection, the current and the previous time bucket's hash (bands and
# sketches)
# then the spam checker's stream (service/store/spamchecks.py)
# then the event stream and the comment's event text (service/events.py)
# last two: the new commenter record, the author's set of commenter records
# ARGV[1] id   ARGV[2] now (ms)   ARGV[3] duplicate window (ms, 0 = off)   ARGV[4] flood
# interval (ms, 0 = off)   ARGV[5] hourly cap (0 = off)   ARGV[6] ms until the hour ends
# ARGV[7] parent id ("" = none)   ARGV[8] trusted since (ms; "" = one variant, no standing)
# ARGV[9], ARGV[10] the author's fields the standing reads: its approvals, its rejections
# ARGV[11] L   ARGV[12 .. 11+2L] each counter's limit and window (s)
# then per variant: number of indexes, the comment's JSON, public JSON ("" unless published at
# once), author field to stamp ("" = none), "1" if it waits for the retention purge; with
# campaign detection, per standing its variant held for a campaign: number of indexes, its
# status, author field to stamp, "1" if it waits for the purge (its record is the standing's
# with that status, the campaign reason appended to its reasons and to its history entry's
# note, and, when the standing's is published, the content its public JSON shows)
# then campaign detection's nine: "1" ("" = off), the author's tag, the encoded sketch (the
# script cuts its band fields from it: campaigns.band_fields), the window's first id, the
# threshold, when the bucket keys expire (ms since the epoch), the comment key's prefix, the
# campaign key's prefix, the campaign reason's pending index's name without its article
# bucket (the rest, campaigns.py's constants, are in the script: _CAMPAIGN_CONSTANTS)
# then the spam check's entry: its S field names and values, MAXLEN, S (0 = none)
# then the event's twelve: type, at, actor, comment JSON, text JSON, MAXLEN, MINID, text TTL
# (ms), then each variant's status and reasons JSON (the second pair repeats the first when
# there is one variant)
# last seven: email hash, presented secret hash ("" = none), new secret hash ("" = hand out
# none), new commenter id, record TTL (ms), grace of a replaced secret (ms), "1" if the
# comment's JSON records the presented commenter id (else the new one)
# Campaign detection follows service/moderation/campaigns.detect, its oracle, which a property
# test (tests/test_campaign_property.py) holds this Lua to; change both together. Only here are
# key names built in Lua (an earlier member's comment, the campaign's set: ids read from the
# buckets), from prefixes Keys gives, under the hash tag every other key has (one slot: while
# Keys.tag_for_* all give {<prefix>}).
# Returns {1, variant, rotated} stored, {2, variant, rotated} a duplicate dropped (rotated: 1
# when the presented key was valid and rotated, 0 when a new record was created), and stored as
# part of a campaign {1, held variant, rotated, campaign id, comments, authors, then each
# earlier member it held and its article's bucket}; {0} already
# stored, {-2, ms} too soon, {-3, ms} hourly cap, {-4, ms, counter} rate limited, {-5} parent
# not published.
INSERT_COMMENT = (
    _APPEND_EVENT
    + _BUCKET_OF
    + _CAMPAIGN_CONSTANTS
    + """
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
local ev = ck - 12
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
local standings = ARGV[8] == '' and 1 or 2
-- The chosen variant's arguments and its first index key (past the standings' variants: the
-- first held one's).
local function variant_at(v)
  local arg, key = 12 + 2 * limits, 11 + limits
  for _ = 2, v do
    key = key + tonumber(ARGV[arg])
    arg = arg + 5
  end
  return arg, key
end
local arg, key = variant_at(variant)
local stamp = ARGV[arg + 3]
if interval > 0 then redis.call('SET', KEYS[5], '1', 'PX', interval) end
if cap > 0 then
  if redis.call('INCR', KEYS[7]) == 1 then redis.call('PEXPIRE', KEYS[7], ARGV[6]) end
end
-- The commenter key the answer hands out: the presented one's record rotated to the new
-- secret, or a new record.
local commenter, ttl = KEYS[6], ARGV[ck + 4]
local recorded_commenter = nil
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
  if ARGV[ck + 6] == '1' then recorded_commenter = ARGV[ck + 3] end
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
-- Campaign detection (the rule: service/moderation/campaigns.detect, its oracle): the new
-- sketch meets the most recent members of its bands within the window; those similar
-- enough (equal components) from other authors, counted by author, against the threshold.
local sp_n = tonumber(ARGV[ev - 1])
local cg = ev - 2 - sp_n - 9
local detect = ARGV[cg] ~= ''
local band_key = #KEYS - 5 - (detect and 2 or 0)
local bands, band_fields = CAMPAIGN_BANDS, {}
local campaign, similar, authors, current = nil, {}, 0, nil
if detect then
  local author, sketch, width = ARGV[cg + 1], ARGV[cg + 2], CAMPAIGN_CODE_WIDTH
  local since, per_band = ARGV[cg + 3], CAMPAIGN_PER_BAND
  local threshold, min_equal = tonumber(ARGV[cg + 4]), CAMPAIGN_MIN_EQUAL
  -- Each band's field: its position, a colon, its components (campaigns.band_fields; the
  -- positions as constant strings: making them from numbers cost most of this loop).
  for b = 1, bands do
    band_fields[b] = CAMPAIGN_BAND_NAMES[b] ..
      string.sub(sketch, (b - 1) * CAMPAIGN_BAND_WIDTH + 1, b * CAMPAIGN_BAND_WIDTH)
  end
  -- A bucket's hash keeps, under each band value, the ids of its most recent comments with
  -- that value, oldest first, each as long as this one; under each id, its sketch; under
  -- CAMPAIGN_MARK, "1" from its first write on (what tells this script to give it its TTL,
  -- without a PTTL per submission). All bands are read in one HMGET: the current bucket's,
  -- then the one before's for the bands the current one cannot fill (whose older ids may be
  -- out of the window).
  local size = #id
  band_fields[bands + 1] = CAMPAIGN_MARK
  current = redis.call('HMGET', KEYS[band_key + 1], unpack(band_fields))
  band_fields[bands + 1] = nil
  local counts, wanted, older = {}, {}, {}
  for b = 1, bands do
    counts[b] = math.min(current[b] and #current[b] / size or 0, per_band)
    if counts[b] < per_band then wanted[#wanted + 1] = b end
  end
  if #wanted > 0 then
    local fields = {}
    for i, b in ipairs(wanted) do fields[i] = band_fields[b] end
    local read = redis.call('HMGET', KEYS[band_key + 2], unpack(fields))
    for i, b in ipairs(wanted) do older[b] = read[i] end
  end
  -- Each band's most recent ids, newest first: the current bucket's, then as many more as are
  -- missing from the bucket before; the distinct other ids, by the bucket that has their
  -- sketch.
  local seen, met = {}, {{}, {}}
  for b = 1, bands do
    for which, value in ipairs({current[b], older[b]}) do
      if value then
        local last = #value / size
        local take = which == 1 and counts[b] or per_band - counts[b]
        for j = last, math.max(last - take + 1, 1), -1 do
          local other = string.sub(value, (j - 1) * size + 1, j * size)
          if other >= since and other ~= id and not seen[other] then
            seen[other] = true
            table.insert(met[which], other)
          end
        end
      end
    end
  end
  local by_author, mine = {}, nil
  if #met[1] + #met[2] > 0 then mine = {string.byte(sketch, 1, -1)} end
  -- A sketch is no longer similar once more components differ than SLOTS - MIN_EQUAL.
  local max_unequal = #sketch / width - min_equal
  for which = 1, 2 do
    local ids = met[which]
    if #ids > 0 then
      local entries = redis.call('HMGET', KEYS[band_key + which], unpack(ids))
      for i, other in ipairs(ids) do
        local entry = entries[i]
        if entry then
          local bar = string.find(entry, '|', 1, true)
          local other_author = string.sub(entry, 1, bar - 1)
          if other_author ~= author then
            -- Components compared byte by byte (no substring made per component; the
            -- comparison of a component's bytes written out: CAMPAIGN_SAME_COMPONENT).
            local theirs = {string.byte(entry, bar + 1, bar + #sketch)}
            local equal, unequal = 0, 0
            for k = 1, #mine, width do
              if CAMPAIGN_SAME_COMPONENT then
                equal = equal + 1
              else
                unequal = unequal + 1
                if unequal > max_unequal then break end
              end
            end
            if equal >= min_equal then
              similar[#similar + 1] = other
              if not by_author[other_author] then
                by_author[other_author] = true
                authors = authors + 1
              end
            end
          end
        end
      end
    end
  end
  if #similar > 0 and authors + 1 >= threshold then
    table.sort(similar)
    campaign = similar[1]
  end
end
local indexes, record, public, purge = tonumber(ARGV[arg]), ARGV[arg + 1], ARGV[arg + 2],
  ARGV[arg + 4]
local campaign_reason, event_status, event_reasons, held_status = nil, nil, nil, nil
if campaign then
  -- The variant that holds it: the same standing's record, held with the campaign reason;
  -- only its indexes and what its status implies come as arguments.
  arg, key = variant_at(standings + 1)
  for _ = 2, variant do
    key = key + tonumber(ARGV[arg])
    arg = arg + 4
  end
  indexes, held_status, stamp, purge = tonumber(ARGV[arg]), ARGV[arg + 1], ARGV[arg + 2],
    ARGV[arg + 3]
  variant = variant + standings
end
if campaign or recorded_commenter then
  local patched = cjson.decode(record)
  if recorded_commenter then patched['commenter'] = recorded_commenter end
  if campaign then
    if public ~= '' then
      -- Its standing's is published (its record has no content): the content its public
      -- document shows, as a decision taking a comment back from publication restores it.
      local doc = cjson.decode(public)
      patched['content'] = {name = doc['name'], comment = doc['comment'],
        website = doc['website'], parent_id = doc['parent_id'], created_at = doc['created_at']}
      public = ''
    end
    patched['status'] = held_status
    campaign_reason = cjson.decode(CAMPAIGN_REASON)
    campaign_reason['detail'] = string.format(CAMPAIGN_DETAIL, campaign, #similar + 1, authors + 1)
    local reasons = patched['reasons']
    if type(reasons) ~= 'table' then reasons = {} end
    reasons[#reasons + 1] = campaign_reason
    patched['reasons'] = reasons
    -- The verdict's history entry: to the held status, the reason's code in its note (as
    -- the policy writes it: the reasons' codes, comma-separated).
    local entry = patched['history'][#patched['history']]
    entry['to'] = held_status
    local note = entry['note']
    if type(note) == 'string' and note ~= '' then
      entry['note'] = note .. ', ' .. campaign_reason['code']
    else
      entry['note'] = campaign_reason['code']
    end
    event_status, event_reasons = held_status, cjson.encode(reasons)
  end
  record = cjson.encode(patched)
end
if commenter and stamp ~= '' then redis.call('HSET', commenter, stamp, now) end
if window > 0 then redis.call('SET', KEYS[4], '1', 'PX', window) end
redis.call('SET', KEYS[1], record)
for i = key, key + indexes - 1 do redis.call('ZADD', KEYS[i], 0, id) end
if public ~= '' then redis.call('HSET', KEYS[2], id, public) end
-- Never moves a stamp back: an imported comment is stored at the time it was decided, and an
-- import need not come in time order.
if stamp ~= '' and tonumber(redis.call('HGET', KEYS[3], stamp) or '0') < tonumber(now) then
  redis.call('HSET', KEYS[3], stamp, now)
end
if purge == '1' then redis.call('ZADD', KEYS[9], now, id) end
redis.call('SADD', KEYS[8], id)
-- The comment joins the current bucket: each band's ids with its own, trimmed to the most
-- recent a sketch reads, and its sketch, in one HSET; the mark and a TTL only on the bucket's
-- first write (the append-only file, which a submission waits for, gets little).
if detect then
  local size, keep, fields = #id, CAMPAIGN_PER_BAND * #id, {}
  for b = 1, bands do
    local value = current[b]
    if not value then
      value = id
    elseif id > string.sub(value, -size) then
      value = value .. id
    else
      -- Out of time order (ids are made in each worker): in its place.
      local ids = {id}
      for at = 1, #value, size do
        local other = string.sub(value, at, at + size - 1)
        if other ~= id then ids[#ids + 1] = other end
      end
      table.sort(ids)
      value = table.concat(ids)
    end
    if #value > keep then value = string.sub(value, -keep) end
    fields[2 * b - 1] = band_fields[b]
    fields[2 * b] = value
  end
  fields[2 * bands + 1] = id
  fields[2 * bands + 2] = ARGV[cg + 1] .. '|' .. ARGV[cg + 2]
  local first = not current[bands + 1]
  if first then
    fields[2 * bands + 3] = CAMPAIGN_MARK
    fields[2 * bands + 4] = '1'
  end
  redis.call('HSET', KEYS[band_key + 1], unpack(fields))
  if first then redis.call('PEXPIREAT', KEYS[band_key + 1], ARGV[cg + 5]) end
end
-- The campaign's set gets its new members; the earlier ones still pending get the reason
-- (approved ones stay published; one already in a campaign keeps its reason). Their keys are
-- built here from prefixes Keys gives (their ids are only known now), under the same hash tag;
-- the campaign reason's index is their own article's bucket's (the record names the article).
local held = {}
if campaign then
  local members = redis.call('SMISMEMBER', ARGV[cg + 7] .. campaign, unpack(similar))
  local fresh = {id}
  for i, other in ipairs(similar) do
    if members[i] == 0 then
      fresh[#fresh + 1] = other
      local other_key = ARGV[cg + 6] .. other
      local raw = redis.call('GET', other_key)
      local other_record = raw and cjson.decode(raw)
      if other_record and other_record['status'] == CAMPAIGN_HELD_FROM
          and type(other_record['article_id']) == 'string' then
        local reasons = type(other_record['reasons']) == 'table' and other_record['reasons'] or {}
        local has = false
        for _, r in ipairs(reasons) do
          if r['code'] == 'campaign' then has = true end
        end
        if not has then
          table.insert(reasons, campaign_reason)
          other_record['reasons'] = reasons
          other_record['version'] = (tonumber(other_record['version']) or 1) + 1
          redis.call('SET', other_key, cjson.encode(other_record))
          local other_bucket = bucket_of(other_record['article_id'])
          redis.call('ZADD', ARGV[cg + 8] .. other_bucket, 0, other)
          held[#held + 1] = other
          held[#held + 1] = other_bucket
        end
      end
    end
  end
  redis.call('SADD', ARGV[cg + 7] .. campaign, unpack(fresh))
  redis.call('EXPIRE', ARGV[cg + 7] .. campaign, CAMPAIGN_TTL)
end
-- The outside spam services' check of it (service/spam_worker.py), queued with it.
if sp_n > 0 then
  redis.call('XADD', KEYS[#KEYS - 4], 'MAXLEN', '~', ARGV[ev - 2], '*',
    unpack(ARGV, ev - 2 - sp_n, ev - 3))
end
redis.call('SET', KEYS[#KEYS - 2], ARGV[ev + 4], 'PX', ARGV[ev + 7])
append_event(KEYS[#KEYS - 3], ARGV[ev + 5], ARGV[ev + 6], {'type', ARGV[ev], 'at', ARGV[ev + 1],
  'actor', ARGV[ev + 2], 'comment', ARGV[ev + 3],
  'status', event_status or ARGV[ev + 6 + 2 * variant],
  'reasons', event_reasons or ARGV[ev + 7 + 2 * variant]})
if campaign then
  return {1, variant, holder and 1 or 0, campaign, #similar + 1, authors + 1, unpack(held)}
end
return {1, variant, holder and 1 or 0}
"""
).replace("CAMPAIGN_SAME_COMPONENT", _SAME_COMPONENT)

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
#
# Split in three steps (store/steps.py; docs/sharding-plan.md §2.2), one script on a single
# server, one script a step on a cluster:
# 1. bucket: the comment, its indexes, public document, retention, history and event; when
#    the decision stamps or undoes (the author's record, the commenter key's), it hands on
#    what step 2 needs, and (stepped) keeps it in the record's "undo" as "owed", with an
#    outbox entry "d:<id>:<new version>";
# 2. author: the author hash's stamp; the commenter record's count of decisions, its stamps
#    (what they were before kept for an undo), or for a move back to pending the restore of
#    those; (stepped) its carry kept under the memo, so a second run changes nothing;
# 3. bucket: the record's "undo" from step 2, while the record is still at step 1's version;
#    (stepped) the outbox entry removed.
#
# Step 1: KEYS[1] comment   KEYS[2] article public hash   KEYS[3] retention index
# KEYS[4] event stream   KEYS[5] the comment's event text (service/events.py)   KEYS[6] outbox
# KEYS[7 ..] index groups, n keys each
# ARGV[1] id   ARGV[2] target status   ARGV[3] now (ms)   ARGV[4] history entry JSON (its
# "from" is filled in here)   ARGV[5] public JSON   ARGV[6] the content JSON it was rendered
# from   ARGV[7] n   then per status (the index groups' order): its name, "1" if public, "1" if
# it waits for the retention purge, the author's field it stamps ("" = none)
# ARGV[8+4n] 2 when the comment was sent with a commenter key (the record of that key earns
# trust by an approval and loses it by a rejection or spam), else 0
# ARGV[9+4n] the versions the caller's If-Match accepts, comma-separated ("" or absent: any)
# ARGV[10+4n] a reason JSON to add on a change (replacing one of the same code; "" or absent:
# none); its index group must be among the groups in KEYS
# ARGV[11+4n] a field of the commenter record to delete as the decision stamps it ("" = none):
# an approval that also trusts the author forgives its earlier rejections this way
# ARGV[12+4n ..] the event's: at, actor, comment JSON, MAXLEN, MINID, text TTL (ms)
# Step 2: KEYS[1] author hash   KEYS[2] the commenter record   KEYS[3] the author's set of
# commenter records   KEYS[4] the author's comment set   KEYS[5] (stepped) the step's memo
# Step 3: KEYS[1] comment   KEYS[2] outbox
# A decision that stamps the commenter record counts it there ("decisions") and keeps in the
# comment's "undo" what its first decision replaced; a move back to pending restores that when
# no other comment of the key was decided since.
# Returns false when the comment does not exist, {0} when the content to publish is no longer
# the stored one, {-1, the comment's JSON, its public JSON or false} when its version is not
# one the caller accepts, else {1 (unchanged) or 2 (changed), the comment's JSON, its public
# JSON or false}: the comment as this call left it (stepped: as step 1 left it, the undo still
# pending). Every change increments its version.
_TRANSITION_BUCKET = """
local raw = redis.call('GET', KEYS[1])
if not raw then
  return false
end
local id, target, now, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[7])
local record = cjson.decode(raw)
local current = record['status']
local version = tonumber(record['version']) or 1
local accepted = ARGV[9 + 4 * n]
if accepted and accepted ~= '' then
  local matched = false
  for v in string.gmatch(accepted, '[^,]+') do
    if tonumber(v) == version then matched = true end
  end
  if not matched then return {-1, raw, redis.call('HGET', KEYS[2], id)} end
end
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
for first = 7, #KEYS, n do
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
-- What step 2 owes: the author's stamp while the stored comment still has an author; the
-- commenter key's record while the stored comment is still tied to it (anonymising cuts the
-- tie; whether the record still lives, step 2 sees).
local email = record['email_hash'] or ''
local keyed = ARGV[8 + 4 * n] == '2' and (record['commenter'] or '') ~= ''
-- (An undo still owed is an earlier decision's whose step 3 never came: what it replaced.)
local undo = record['undo']
if undo and undo['owed'] then undo = undo['owed']['prior'] or nil end
record['undo'] = undo
local post = nil
if (to.stamp ~= '' and (email ~= '' or keyed)) or (keyed and from.stamp ~= '' and undo) then
  local fields, seen = {}, {}
  for _, r in pairs(rules) do
    if r.stamp ~= '' and not seen[r.stamp] then
      seen[r.stamp] = true
      fields[#fields + 1] = r.stamp
    end
  end
  post = {id = id, version = version + 1, email = email, keyed = keyed, stamp = to.stamp,
          from_stamp = from.stamp, fields = fields, forgive = ARGV[11 + 4 * n], now = now,
          prior = undo or false}
end
if to.stamp == '' then record['undo'] = nil end
if to.purge then
  redis.call('ZADD', KEYS[3], now, id)
else
  redis.call('ZREM', KEYS[3], id)
end
record['status'] = target
record['version'] = version + 1
local added = ARGV[10 + 4 * n]
if added and added ~= '' then
  added = cjson.decode(added)
  local reasons = {}
  for _, r in ipairs(type(record['reasons']) == 'table' and record['reasons'] or {}) do
    if r['code'] ~= added['code'] then table.insert(reasons, r) end
  end
  table.insert(reasons, added)
  record['reasons'] = reasons
end
local entry = cjson.decode(ARGV[4])
entry['from'] = current
table.insert(record['history'], entry)
-- The event, and the text it shows as the comment now stands.
local ev, shown = 12 + 4 * n, record['content']
if public then shown = cjson.decode(public) end
redis.call('SET', KEYS[5], cjson.encode({name = shown['name'], comment = shown['comment'],
  website = shown['website']}), 'PX', ARGV[ev + 5])
local kind = 'comment.' .. target
if from.public and not to.public then kind = 'comment.unpublished' end
append_event(KEYS[4], ARGV[ev + 3], ARGV[ev + 4], {'type', kind, 'at', ARGV[ev],
  'actor', ARGV[ev + 1], 'comment', ARGV[ev + 2], 'status', target, 'from', current,
  'reasons', cjson.encode(record['reasons'] or {})})
if not post then
  raw = cjson.encode(record)
  redis.call('SET', KEYS[1], raw)
  return {2, raw, public}
end
if not STEPPED then
  -- Step 3 stores the record, with its undo.
  return nil, {post = post, record = record, public = public}
end
-- Until step 3 the record keeps what step 2 needs, and the bucket's outbox names it: a
-- request that dies between the steps leaves its work where the sweep finds it.
record['undo'] = {owed = post}
raw = cjson.encode(record)
redis.call('SET', KEYS[1], raw)
redis.call('ZADD', KEYS[6], now, 'd:' .. id .. ':' .. post.version)
return {2, raw, public}, {post = post}
"""

_TRANSITION_AUTHOR = """
if STEPPED then
  -- The memo keeps only this step's own result (no id, no email hash: a deleted comment's
  -- memo names nothing of it for its last two minutes).
  local memo = redis.call('GET', KEYS[5])
  if memo then
    carry['undo'] = cjson.decode(memo)['undo'] or nil
    return nil, carry
  end
end
local post = carry['post']
local author, commenter, commenters = KEYS[1], KEYS[2], KEYS[3]
-- (Stepped, an erasure may have come between the steps: the author is stamped only while
-- the comment is still listed as theirs, so no decision brings an erased author back.)
if post.stamp ~= '' and post.email ~= ''
    and (not STEPPED or redis.call('SISMEMBER', KEYS[4], post.id) == 1) then
  redis.call('HSET', author, post.stamp, post.now)
end
-- The commenter key's record, while it lives (an expired or revoked one stays gone); the
-- email's set of records outlives it, so an erasure finds it.
local keyed = post.keyed and redis.call('EXISTS', commenter) == 1
local prior = post.prior
if keyed and post.stamp ~= '' then
  local ttl = tonumber(redis.call('HGET', commenter, 'ttl'))
  -- The comment keeps what its first decision replaced in the key's record, and the record's
  -- count of decisions, so that moving it back to pending (an undo) puts the key's standing
  -- back as it was: an approval undone leaves no trust behind.
  local seq = redis.call('HINCRBY', commenter, 'decisions', 1)
  local before = prior and prior['before']
  if not before then
    local values = redis.call('HMGET', commenter, unpack(post.fields))
    before = {}
    for i, field in ipairs(post.fields) do before[field] = values[i] or '' end
  end
  carry['undo'] = {seq = seq, before = before}
  redis.call('HSET', commenter, post.stamp, post.now)
  if post.forgive ~= '' then redis.call('HDEL', commenter, post.forgive) end
  redis.call('PEXPIRE', commenter, ttl)
  if redis.call('PTTL', commenters) < ttl then redis.call('PEXPIRE', commenters, ttl) end
elseif keyed and post.from_stamp ~= '' and prior then
  -- Back to a status that stamps nothing (pending): take back the stamps of this comment's
  -- decisions, unless a decision on another comment of the key came since.
  if tonumber(redis.call('HGET', commenter, 'decisions')) == tonumber(prior['seq']) then
    for field, value in pairs(prior['before']) do
      if value == '' then
        redis.call('HDEL', commenter, field)
      else
        redis.call('HSET', commenter, field, value)
      end
    end
  end
end
if STEPPED then
  redis.call('SET', KEYS[5], cjson.encode({undo = carry['undo'] or false}), 'PX', STEP_MEMO_MS)
end
return nil, carry
"""

_TRANSITION_UNDO = """
local post = carry['post']
local record = carry['record']
if STEPPED then
  local raw = redis.call('GET', KEYS[1])
  record = raw and cjson.decode(raw)
  if not record or tonumber(record['version']) ~= tonumber(post.version) then
    -- Gone, or decided again since: the later decision's undo is its own.
    redis.call('ZREM', KEYS[2], 'd:' .. post.id .. ':' .. post.version)
    return 0
  end
end
if post.stamp == '' then
  record['undo'] = nil
elseif carry['undo'] then
  record['undo'] = carry['undo']
elseif post.prior then
  record['undo'] = post.prior
else
  record['undo'] = nil
end
local raw = cjson.encode(record)
redis.call('SET', KEYS[1], raw)
if STEPPED then
  redis.call('ZREM', KEYS[2], 'd:' .. post.id .. ':' .. post.version)
  return 1
end
return {2, raw, carry['public']}
"""

TRANSITION_STEPS = (
    Fragment("bucket", _TRANSITION_BUCKET),
    Fragment("author", _TRANSITION_AUTHOR),
    Fragment("undo", _TRANSITION_UNDO),
)
TRANSITION_COMMENT = SplitSource.of(
    _APPEND_EVENT + f"local STEP_MEMO_MS = {STEP_MEMO_MS}\n", TRANSITION_STEPS
)

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
# KEYS[4 ..] every index the comment can be in   then the event stream, the comment's event
# text (removed: no retained event shows it any more)   ARGV[1] id   ARGV[2 ..] the event's:
# type, at, actor, comment JSON, MAXLEN, MINID
# Returns 1 if the comment existed.
DELETE_COMMENT = (
    _APPEND_EVENT
    + """
local raw = redis.call('GET', KEYS[1])
local existed = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
for i = 4, #KEYS - 2 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[#KEYS])
if raw then
  local record = cjson.decode(raw)
  append_event(KEYS[#KEYS - 1], ARGV[6], ARGV[7], {'type', ARGV[2], 'at', ARGV[3],
    'actor', ARGV[4], 'comment', ARGV[5], 'status', record['status'],
    'reasons', cjson.encode(record['reasons'] or {})})
end
return existed
"""
)

# One page of an article's published comments, and their total, in one round trip.
# KEYS[1] article approved index   KEYS[2] article public hash
# ARGV[1] lex range start ("-" or "(<cursor id>")   ARGV[2] how many ids to fetch
# Returns {total, id1, json1, id2, json2, ...}; ids whose JSON is missing are skipped.
# What both answer after choosing their ids: the index's total, then each id with its public
# document (KEYS[1] the approved index, KEYS[2] the public hash, ``ids`` the chosen ids).
_WITH_DOCUMENTS = """
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
PUBLIC_PAGE = (
    """
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
"""
    + _WITH_DOCUMENTS
)

# Keep a published comment's text readable in its thread but cut every tie to its author.
# KEYS[1] comment   KEYS[2] article public hash   KEYS[3] author's comment set
# ARGV[1] id   ARGV[2] the name shown instead   ARGV[3] the re-rendered public JSON
# KEYS[4] event stream   KEYS[5] the comment's event text   ARGV[4 ..] the event's: at, actor,
# comment JSON, MAXLEN, MINID, the anonymised text JSON (replaces the retained one)
# Returns 1 if the comment existed.
ANONYMISE_COMMENT = (
    _APPEND_EVENT
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record['email'] = ''
record['email_hash'] = ''
record['commenter'] = nil
record['anonymised'] = true
record['version'] = (tonumber(record['version']) or 1) + 1
if type(record['content']) == 'table' then
  record['content']['name'] = ARGV[2]
  record['content']['website'] = cjson.null
end
redis.call('SET', KEYS[1], cjson.encode(record))
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[5], ARGV[9], 'XX', 'KEEPTTL')
append_event(KEYS[4], ARGV[7], ARGV[8], {'type', 'comment.erased', 'at', ARGV[4],
  'actor', ARGV[5], 'comment', ARGV[6], 'status', record['status'],
  'reasons', cjson.encode(record['reasons'] or {})})
return 1
"""
)

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

# One page of the ids in any of KEYS (sorted sets of ids, score 0, an id in one of them at
# most), in id order (ARGV[3] = "1": newest first), from ARGV[1] ("-" or "+" for the start, or
# "(<id>" past a cursor): the first ARGV[2] of their union, and (ARGV[4] = "1") the sum of
# their sizes. Each index gives its first few ids (the page spread over the indexes); those
# whose few all come before the page's provisional end (the ARGV[2]-th of them all) are read
# again up to that end: any id of the page is among its own index's first ARGV[2] and comes
# no later than that end, so the page is then whole (store/reads.py, merged_page). With
# ARGV[5] (a cluster's call per slot) that is the probe, and only the first phase runs: the
# caller reads again, after merging every slot's ids.
# Returns {total (0 without ARGV[4]), id1, id2, ...}. Reads only.
MERGED_PAGE = """
local start, want = ARGV[1], tonumber(ARGV[2])
local newest_first, with_total = ARGV[3] == '1', ARGV[4] == '1'
local last = newest_first and '-' or '+'
local from_start = start == (newest_first and '+' or '-')
local given = tonumber(ARGV[5])
local probe = given or (#KEYS == 1 and want or math.max(1, math.ceil(want / #KEYS)))
local function range(key, from, to, count)
  if newest_first then
    return redis.call('ZREVRANGEBYLEX', key, from, to, 'LIMIT', 0, count)
  end
  return redis.call('ZRANGEBYLEX', key, from, to, 'LIMIT', 0, count)
end
local function before(a, b)
  if newest_first then return a > b end
  return a < b
end
local total, found, all = 0, {}, {}
for i, key in ipairs(KEYS) do
  local ids = range(key, start, last, probe)
  found[i] = ids
  for _, id in ipairs(ids) do all[#all + 1] = id end
  -- From the very start an index that gave nothing is empty: no ZCARD (most buckets of a
  -- small site's queue).
  if with_total and (#ids > 0 or not from_start) then
    total = total + redis.call('ZCARD', key)
  end
end
table.sort(all, before)
local boundary = all[want]
local again = false
for i, key in ipairs(KEYS) do
  local ids = found[i]
  if not given and #ids == probe and (boundary == nil or before(ids[#ids], boundary)) then
    local more = range(key, '(' .. ids[#ids], boundary and ('[' .. boundary) or last, want)
    for _, id in ipairs(more) do all[#all + 1] = id end
    again = true
  end
end
if again then table.sort(all, before) end
local out = {total}
for i = 1, math.min(want, #all) do out[i + 1] = all[i] end
return out
"""

# An article's newest published comments (its feed), newest first, in one round trip.
# KEYS[1] article approved index   KEYS[2] article public hash   ARGV[1] how many
# Returns {total, id1, json1, id2, json2, ...}; ids whose JSON is missing are skipped.
LATEST_PUBLIC = (
    """
local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], '+', '-', 'LIMIT', 0, tonumber(ARGV[1]))
"""
    + _WITH_DOCUMENTS
)

# A moderator claims a comment for review: granted when nobody holds it, renewed (the TTL
# starts again, "since" stays) when the same moderator holds it, refused when another does.
# KEYS[1] the claim   KEYS[2] the comment   ARGV[1] moderator   ARGV[2] now (ms)   ARGV[3] TTL
# (ms)
# Returns {-1} when the comment does not exist, else {1 granted or 0 held by another, the
# claim's JSON: {moderator, since, until} (ms)}.
CLAIM_COMMENT = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('GET', KEYS[1])
local claim = {moderator = ARGV[1], since = now}
if held then
  claim = cjson.decode(held)
  if claim['moderator'] ~= ARGV[1] then return {0, held} end
end
claim['until'] = now + ttl
local raw = cjson.encode(claim)
redis.call('SET', KEYS[1], raw, 'PX', ttl)
return {1, raw}
"""

# Release a claim, only by its holder ("" = whoever holds it: a decision releases it).
# KEYS[1] the claim   ARGV[1] moderator or ""
# Returns 1 released, 0 nothing held, {claim JSON} held by another (left alone).
RELEASE_CLAIM = """
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
if ARGV[1] ~= '' and cjson.decode(held)['moderator'] ~= ARGV[1] then return {held} end
redis.call('DEL', KEYS[1])
return 1
"""

# Start an idempotent request: take the key's lease unless the key is already known.
# KEYS[1] the key's record   ARGV[1] the in-flight record JSON   ARGV[2] lease (ms)
# Returns false when the lease was taken (go ahead), else the record as stored.
BEGIN_IDEMPOTENT = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# A reader reports a published comment, once per client: the report is stored under the
# client's IP hash unless that client reported it already. When the active (not dismissed)
# reports reach the threshold and the comment is not in the Reported queue yet, it joins it:
# that happens exactly once per review, whatever the concurrency.
# KEYS[1] the article's approved index   KEYS[2] the comment's reports   KEYS[3] the Reported
# queue (score 0, like every index: ids sort by time)   ARGV[1] id   ARGV[2] reporter's IP hash
# ARGV[3] report JSON   ARGV[4] threshold
# Returns {-1} not published, {0} already reported by this client, {1, active} stored, {2,
# active, counts JSON} stored and the threshold reached now (counts: active ones by reason).
REPORT_COMMENT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {-1} end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then return {0} end
local active, counts = 0, {}
for _, raw in ipairs(redis.call('HVALS', KEYS[2])) do
  local report = cjson.decode(raw)
  if not report['dismissed'] then
    active = active + 1
    counts[report['reason']] = (counts[report['reason']] or 0) + 1
  end
end
if active >= tonumber(ARGV[4]) and not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  return {2, active, cjson.encode(counts)}
end
return {1, active}
"""

# A review is over (a decision, or a moderator dismissed the reports): the active reports stop
# counting (kept, so that their clients cannot report the comment again), the comment leaves
# the Reported queue, and with a decision its claim is released.
# KEYS[1] the comment's reports   KEYS[2] the Reported queue   KEYS[3] its claim (or none)
# ARGV[1] id
# Returns how many reports were dismissed.
FINISH_REVIEW = """
local dismissed = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local report = cjson.decode(all[i + 1])
  if not report['dismissed'] then
    report['dismissed'] = true
    redis.call('HSET', KEYS[1], all[i], cjson.encode(report))
    dismissed = dismissed + 1
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
return dismissed
"""

# An author edits their comment's words (name, text, website). The text the edit replaces is
# read here, from what is stored (the public document of a published comment, else the
# record), and kept in the record's "edits" for moderators; the new words go where the
# comment's status keeps content (policy re-run by the caller: the target status and the
# reasons are its verdict). Only the version the caller read is edited.
# KEYS[1] comment   KEYS[2] article public hash   KEYS[3] retention index   KEYS[4 .. 3+g*n]
# the index groups of the new reasons (one key per status)   KEYS[4+g*n ..] every status key
# of the groups of reasons the comment no longer has
# ARGV[1] id   ARGV[2] the version read   ARGV[3] now (ms)   ARGV[4] now (ISO)   ARGV[5] new
# content JSON   ARGV[6] its public JSON   ARGV[7] target status   ARGV[8] reasons JSON
# ARGV[9] history entry JSON for a change of status (its "from" is filled in here)
# ARGV[10] g   ARGV[11] n   then per status: its name, "1" if public, "1" if purged
# then its event (service/events.py, "comment.edited"): actor, comment JSON, MAXLEN, MINID,
# the text's TTL (ms), the new text JSON; the last two KEYS: the event stream, the comment's
# event text (replaced by the new words)
# Returns false when the comment does not exist, {-1, the comment's JSON, its public JSON or
# false} when it is at another version, else {2, the comment's JSON, its public JSON or false}.
EDIT_COMMENT = (
    _APPEND_EVENT
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local id = ARGV[1]
local record = cjson.decode(raw)
local version = tonumber(record['version']) or 1
if version ~= tonumber(ARGV[2]) then
  return {-1, raw, redis.call('HGET', KEYS[2], id)}
end
local g, n = tonumber(ARGV[10]), tonumber(ARGV[11])
local rules = {}
for i = 0, n - 1 do
  local at = 12 + 3 * i
  rules[ARGV[at]] = {public = ARGV[at + 1] == '1', purge = ARGV[at + 2] == '1'}
end
local current, target = record['status'], ARGV[7]
local from, to = rules[current], rules[target]
local before = record['content']
if from.public then before = cjson.decode(redis.call('HGET', KEYS[2], id)) end
local edits = type(record['edits']) == 'table' and record['edits'] or {}
table.insert(edits, {version = version, at = ARGV[4], name = before['name'],
                     comment = before['comment'], website = before['website']})
record['edits'] = edits
if to.public then
  redis.call('HSET', KEYS[2], id, ARGV[6])
  record['content'] = nil
else
  record['content'] = cjson.decode(ARGV[5])
  if from.public then redis.call('HDEL', KEYS[2], id) end
end
for first = 4, 3 + g * n, n do
  for i = 0, n - 1 do
    if ARGV[12 + 3 * i] == target then
      redis.call('ZADD', KEYS[first + i], 0, id)
    else
      redis.call('ZREM', KEYS[first + i], id)
    end
  end
end
for i = 4 + g * n, #KEYS - 2 do redis.call('ZREM', KEYS[i], id) end
if to.purge then
  redis.call('ZADD', KEYS[3], ARGV[3], id)
else
  redis.call('ZREM', KEYS[3], id)
end
if current ~= target then
  local entry = cjson.decode(ARGV[9])
  entry['from'] = current
  table.insert(record['history'], entry)
  record['status'] = target
end
record['reasons'] = cjson.decode(ARGV[8])
record['version'] = version + 1
raw = cjson.encode(record)
redis.call('SET', KEYS[1], raw)
local ev = 12 + 3 * n
redis.call('SET', KEYS[#KEYS], ARGV[ev + 5], 'PX', ARGV[ev + 4])
append_event(KEYS[#KEYS - 1], ARGV[ev + 2], ARGV[ev + 3], {'type', 'comment.edited',
  'at', ARGV[4], 'actor', ARGV[ev], 'comment', ARGV[ev + 1], 'status', target, 'from', current,
  'reasons', ARGV[8]})
return {2, raw, to.public and ARGV[6] or false}
"""
)

# Site-wide changes, each with its event (service/events.py), only when something changed.
# KEYS[1] the changed key   KEYS[2] event stream
# ARGV[1] at   ARGV[2] actor   ARGV[3] MAXLEN   ARGV[4] MINID   then each script's own.
# Returns 1 when it changed something (and appended the event), else 0.

# The policy document.   ARGV[5] the new document
SAVE_POLICY = (
    _APPEND_EVENT
    + """
if redis.call('GET', KEYS[1]) == ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[5])
append_event(KEYS[2], ARGV[3], ARGV[4], {'type', 'policy.changed', 'at', ARGV[1],
  'actor', ARGV[2]})
return 1
"""
)

# Close or reopen an article.   ARGV[5] article id   ARGV[6] "1" to close, "" to reopen
SET_ARTICLE_CLOSED = (
    _APPEND_EVENT
    + """
local changed
if ARGV[6] == '1' then
  changed = redis.call('HSET', KEYS[1], 'closed', '1')
else
  changed = redis.call('HDEL', KEYS[1], 'closed')
end
if changed == 0 then return 0 end
append_event(KEYS[2], ARGV[3], ARGV[4], {'type', ARGV[6] == '1' and 'article.closed' or
  'article.reopened', 'at', ARGV[1], 'actor', ARGV[2], 'article_id', ARGV[5]})
return 1
"""
)

# Create (or replace) a named moderator token, or revoke it.   ARGV[5] name   ARGV[6] the
# token's hash ("" = revoke)
SAVE_MODERATOR = (
    _APPEND_EVENT
    + """
local kind = 'token.created'
if ARGV[6] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[5]) == 0 then return 0 end
  kind = 'token.revoked'
else
  redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
end
append_event(KEYS[2], ARGV[3], ARGV[4], {'type', kind, 'at', ARGV[1], 'actor', ARGV[2],
  'moderator', ARGV[5]})
return 1
"""
)

# Keep a lease only while holding it: extend it if its value is still ours.
# KEYS[1] the lease   ARGV[1] holder   ARGV[2] milliseconds
# Returns 1 if the lease is (still, or now) ours.
HOLD_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
